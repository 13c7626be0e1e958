"""A trained per-domain fastText relevance classifier: `<domain>.bin` plus `<domain>.json` metadata."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

POSITIVE = "__label__relevant"
NEGATIVE = "__label__irrelevant"
_SPACE = re.compile(r"\s+")


def fasttext_text(text: str, max_chars: int = 4000) -> str:
    """One line, lowercased: fastText reads a line per example and is case-sensitive."""
    return _SPACE.sub(" ", text[:max_chars]).strip().lower()


@dataclass
class Classifier:
    domain: str
    model: object  # fasttext.FastText._FastText
    threshold: float
    metadata: dict

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
