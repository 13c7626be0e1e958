"""A trained per-domain fastText relevance classifier: `<domain>.bin` plus `<domain>.json` metadata."""

from __future__ import annotations

import json
import os
import re

POSITIVE = "__label__relevant"
NEGATIVE = "__label__irrelevant"
_SPACE = re.compile(r"\s+")


def fasttext_text(text: str, max_chars: int = 4000) -> str:
    """One line, lowercased: fastText reads a line per example and is case-sensitive."""
    return _SPACE.sub(" ", text[:max_chars]).strip().lower()


class Classifier:
    """Not a dataclass on purpose: datatrove's executor JSON encoder deep-copies dataclasses, and a
    loaded fastText model cannot be copied."""

    def __init__(self, domain: str, model, threshold: float, metadata: dict):
        self.domain, self.model, self.threshold, self.metadata = domain, model, threshold, metadata

    def __repr__(self) -> str:
        return f"Classifier({self.domain!r}, threshold={self.threshold:.3f})"

    def score(self, text: str) -> float:
        labels, probs = self.model.predict(fasttext_text(text), k=2)
        return float(dict(zip(labels, probs)).get(POSITIVE, 0.0))


def classifier_paths(models_dir: str, domain: str) -> tuple[str, str]:
    return os.path.join(models_dir, f"{domain}.bin"), os.path.join(models_dir, f"{domain}.json")


def load_classifier(models_dir: str, domain: str) -> Classifier:
    import fasttext

    bin_path, meta_path = classifier_paths(models_dir, domain)
    if not os.path.exists(bin_path):
        raise FileNotFoundError(f"no classifier for domain {domain!r}: {bin_path} does not exist")
    with open(meta_path, encoding="utf-8") as f:
        metadata = json.load(f)
    return Classifier(domain, fasttext.load_model(bin_path), float(metadata["threshold"]), metadata)


def _train_and_save(train_file: str, params: dict, model_path: str) -> None:
    import fasttext

    fasttext.train_supervised(train_file, **params).save_model(model_path)


def train_supervised_in_fresh_process(train_file: str, params: dict):
    """`fasttext.train_supervised(train_file, **params)`, run in a freshly spawned process.

    fastText's training reads memory it never initialised: in a process whose heap holds freed
    non-zero bytes (after loading a Hugging Face tokenizer, for one) it stops with "Encountered NaN"
    at any learning rate, while the same call in a fresh process trains. Prediction is unaffected, so
    the model is trained there, saved, and loaded here."""
    import multiprocessing
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    import fasttext

    with tempfile.TemporaryDirectory() as tmp, \
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        model_path = os.path.join(tmp, "model.bin")
        pool.submit(_train_and_save, train_file, params, model_path).result()
        return fasttext.load_model(model_path)
