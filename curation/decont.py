"""Decontamination against the evaluation sets the project reports on (ESCI products, GLUE sentences).

The index is built once, before the filter job, from local eval files (the bundled samples by default):
`<eval set>.index.hashes` files that datatrove's `NGramsDecontFilter` reads, hashed exactly as it
hashes documents (same normalization, word tokenizer and 64-bit hash). datatrove's own indexer
fetches eval sets through lighteval from the Hub; ours reads files. Eval texts shorter than `n_grams`
words cannot match any document n-gram: they are counted as `too_short` in `summary.json` (and the card).
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter
from datatrove.utils.hashing import HashConfig, create_hash_func
from datatrove.utils.text import ngrams, simplify_text

from rexbert.core.html_text import html_to_text
from rexbert.core.paths import BUNDLED_EVAL_DATA

from .filters.accounting import TokenAccounting
from .filters.quality import RegexWordTokenizer
from .worker_state import LoadedInWorker

# fields that hold evaluation text in ESCI (products, examples) and GLUE-style files
TEXT_FIELDS = ("title", "product_title", "description", "product_description", "bullets", "bullet_points",
               "product_bullet_point", "sentence", "sentence1", "sentence2", "question", "question1", "question2",
               "premise", "hypothesis", "text")


def bundled_eval_sets() -> dict[str, list[str]]:
    """The eval samples shipped in `rexbert/corpus/eval/` (what `rexbert demo` evaluates on)."""
    return {"esci_products": [str(BUNDLED_EVAL_DATA / "esci" / "sample-products.jsonl")],
            "glue_sst2": [str(BUNDLED_EVAL_DATA / "glue_sst2_format" / "validation.jsonl")]}


def _records(path: str):
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def eval_texts(path: str) -> list[str]:
    """Every text field of every record (ESCI products keep theirs under `fields`), HTML removed."""
    texts = []
    for record in _records(path):
        record = {**record, **record.get("fields", {})} if isinstance(record.get("fields"), dict) else record
        for key in TEXT_FIELDS:
            value = record.get(key)
            if isinstance(value, str) and value.strip():
                texts.append(html_to_text(value))
    return texts


def decont_config(n_grams: int) -> NGramsDecontConfig:
    return NGramsDecontConfig(n_grams=n_grams, hash_config=HashConfig(precision=64))


def build_index(eval_sets: dict[str, str | list[str]], folder: str, n_grams: int) -> dict[str, dict]:
    """Writes `<name>.index.hashes` per eval set and `summary.json`; returns the summary
    ({name: {"files", "texts", "too_short", "ngrams"}})."""
    config = decont_config(n_grams)
    hash_func, tokenizer = create_hash_func(config.hash_config), RegexWordTokenizer()
    summary, arrays = {}, {}
    for name, spec in eval_sets.items():
        paths = [p for pattern in ([spec] if isinstance(spec, str) else spec) for p in sorted(glob.glob(pattern))]
        if not paths:
            raise FileNotFoundError(f"filter.decontaminate.eval_sets.{name}: no file matches {spec!r}")
        hashes, texts, too_short = set(), 0, 0
        for path in paths:
            for text in eval_texts(path):
                tokens = tokenizer.word_tokenize(simplify_text(text, config.norm_config))
                texts += 1
                too_short += len(tokens) < n_grams
                hashes.update(hash_func(" ".join(gram)) for gram in ngrams(tokens, n_grams))
        arrays[name] = np.array(sorted(hashes), dtype=config.hash_config.np_descr)
        summary[name] = {"files": paths, "texts": texts, "too_short": too_short, "ngrams": len(hashes)}
    content = {"n_grams": n_grams, "eval_sets": summary}
    if load_summary(folder) == content:
        return summary  # same eval sets, same index: a rerun leaves the files (and their mtimes) alone
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(folder, "*.index.hashes")):
        os.remove(stale)
    for name, array in arrays.items():
        array.tofile(os.path.join(folder, f"{name}.index.hashes"))
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(content, f, indent=1)
    return summary


def load_summary(folder: str) -> dict | None:
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class EvalDecontFilter(LoadedInWorker, TokenAccounting, NGramsDecontFilter):
    """datatrove's n-gram decontamination filter with our word tokenizer and 64-bit hashes; counts
    `contaminated_<eval set>` and drops with reason `contaminated`."""

    name = "🦠 Decontamination (eval n-grams)"
    loaded_in_worker = {"_index_hashes": None}  # datatrove's loaded index

    def __init__(self, index_folder: str, n_grams: int):
        super().__init__(index_folder, config=decont_config(n_grams), language=RegexWordTokenizer())
