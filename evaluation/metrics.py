"""The standard metrics, computed locally with scipy / scikit-learn (never Hub-fetched metric scripts)."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def accuracy(predictions, references) -> float:
    return float(accuracy_score(references, predictions))


def f1(predictions, references) -> float:
    return float(f1_score(references, predictions))


def mcc(predictions, references) -> float:
    return float(matthews_corrcoef(references, predictions))


def pearson(predictions, references) -> float:
    return float(pearsonr(np.asarray(predictions, dtype=float), np.asarray(references, dtype=float))[0])


def spearman(predictions, references) -> float:
    return float(spearmanr(np.asarray(predictions, dtype=float), np.asarray(references, dtype=float))[0])


METRICS = {"accuracy": accuracy, "f1": f1, "mcc": mcc, "pearson": pearson, "spearman": spearman}
