"""The standard metrics, computed by `evaluate` metric modules that ship inside this package.

Each folder of `metric_modules/` is a standalone `evaluate` module (`<name>/<name>.py`, an `evaluate.Metric`),
loaded by path with `evaluate.load`: the numbers are the ones the HF ecosystem reports, and nothing is fetched
(the Hub's metric scripts would need the network and run code we have not read).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import evaluate
import numpy as np
from evaluate.utils.file_utils import DownloadConfig

MODULES_DIR = Path(__file__).parent / "metric_modules"
# results-schema metric name -> the module that computes it (its result key is the module's name)
MODULE_OF = {"accuracy": "accuracy", "f1": "f1", "mcc": "matthews_correlation", "pearson": "pearsonr",
             "spearman": "spearmanr"}


def load_metric(name: str, config_name: str | None = None) -> evaluate.EvaluationModule:
    """A fresh instance of the shipped module `name` (its input form `config_name`, if it has several): local files
    only, batches kept in memory (no cache files)."""
    path = MODULES_DIR / name
    if not (path / f"{name}.py").is_file():
        known = sorted(p.name for p in MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no metric module {name!r} in {MODULES_DIR}; available: {known}.")
    return evaluate.load(str(path), config_name, keep_in_memory=True,
                         download_config=DownloadConfig(local_files_only=True))


def _plain(values) -> list:
    """Python numbers for `evaluate`'s Arrow encoding (numpy float32/int64 arrays, tensors, lists alike)."""
    return np.asarray(values).tolist()


def score(metric: str, predictions, references) -> float:
    """`metric` (a name of the results schema: accuracy, f1, mcc, pearson, spearman) of predictions vs references."""
    if metric not in MODULE_OF:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(MODULE_OF)}.")
    module = MODULE_OF[metric]
    result = load_metric(module).compute(predictions=_plain(predictions), references=_plain(references))
    return float(result[module])


def top_k_recovery(ranked_ids, true_ids, ks: Sequence[int]) -> dict[int, float]:
    """{k: fraction of masked positions whose true id is among the first k of its ranked ids}."""
    result = load_metric("topk_recovery").compute(predictions=_plain(ranked_ids), references=_plain(true_ids),
                                                  k=list(ks))
    return {k: result[f"top{k}_accuracy"] for k in ks}


def top_k_from_ranks(ranks, ks: Sequence[int]) -> dict[int, float]:
    """{k: fraction of masked positions whose true id ranks below k}, from each position's rank of its true id
    (0 = the model's best): the same numbers as `top_k_recovery`, one integer per position to encode."""
    result = load_metric("topk_recovery", "ranks").compute(predictions=np.asarray(ranks, dtype=np.int64), k=list(ks))
    return {k: result[f"top{k}_accuracy"] for k in ks}
