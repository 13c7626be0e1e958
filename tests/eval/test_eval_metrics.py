"""The metrics come from `evaluate` modules shipped in the package: hand-computed values, offline, packaged."""

from __future__ import annotations

import socket
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import evaluate
import numpy as np
import pytest

from evaluation.metrics import MODULE_OF, MODULES_DIR, load_metric, score, top_k_from_ranks, top_k_recovery

ROOT = Path(__file__).parents[2]
SHIPPED = ("accuracy", "f1", "matthews_correlation", "pearsonr", "spearmanr", "topk_recovery")


def test_metrics_against_hand_computed_values():
    predictions, references = [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0]
    assert score("accuracy", predictions, references) == pytest.approx(4 / 6)
    # tp=2, fp=1, fn=1: precision = recall = 2/3
    assert score("f1", predictions, references) == pytest.approx(2 / 3)
    # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2*2 - 1*1) / sqrt(3*3*3*3) = 1/3
    assert score("mcc", predictions, references) == pytest.approx(1 / 3)
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 4.0]
    # pearson by hand: mean x 2.5, mean y 3.75; sxy = 3.5, sxx = 5, syy = 4.75
    assert score("pearson", x, y) == pytest.approx(3.5 / (5 * 4.75) ** 0.5)
    # spearman: ranks of y are 1, 2.5, 4, 2.5 -> pearson of ranks: sxy = 3, sxx = 5, syy = 4.5
    assert score("spearman", x, y) == pytest.approx(3 / (5 * 4.5) ** 0.5)


def test_inputs_as_numpy_arrays_of_any_width():
    """Trainer hands over int64 arrays, sentence-transformers float32 cosines: same numbers as plain lists."""
    assert score("accuracy", np.array([1, 0, 1]), np.array([1, 1, 1], dtype=np.int32)) == pytest.approx(2 / 3)
    cosine = np.array([0.1, 0.4, 0.35, 0.8], dtype=np.float32)
    assert score("spearman", cosine, [0.0, 0.33, 0.66, 1.0]) == pytest.approx(0.8)  # one swapped pair: 1 - 6*2/60


def test_top_k_recovery_hand_computed():
    # true ids 5, 6, 7, 8 ranked 1st, 2nd, 3rd and 5th
    ranked = [[5, 1, 2, 3, 4], [1, 6, 2, 3, 4], [1, 2, 7, 3, 4], [1, 2, 3, 4, 8]]
    assert top_k_recovery(ranked, [5, 6, 7, 8], (1, 2, 3, 5)) == {1: 0.25, 2: 0.5, 3: 0.75, 5: 1.0}
    with pytest.raises(ValueError, match=r"k must be in 1\.\.5"):  # top-6 from 5 ranked ids: refused, not too low
        top_k_recovery(ranked, [5, 6, 7, 8], (6,))


def test_top_k_from_ranks_equals_top_k_from_ranked_ids():
    # the same four positions as above: true ids ranked 1st, 2nd, 3rd and 5th, i.e. ranks 0, 1, 2, 4
    assert top_k_from_ranks(np.array([0, 1, 2, 4]), (1, 2, 3, 5)) == {1: 0.25, 2: 0.5, 3: 0.75, 5: 1.0}
    ranks = np.random.default_rng(0).geometric(0.3, 2_000) - 1
    ranked = np.tile(np.arange(1, 11), (len(ranks), 1))  # ids 1..10 best first; the true id sits at its rank or beyond
    truth = np.where(ranks < 10, ranked[np.arange(len(ranks)), np.minimum(ranks, 9)], 99)
    assert top_k_from_ranks(ranks, (1, 3, 5, 10)) == top_k_recovery(ranked, truth, (1, 3, 5, 10))
    with pytest.raises(ValueError, match="non-negative rank"):
        top_k_from_ranks([0, -1], (1,))
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_from_ranks([0, 1], (0,))


def test_each_metric_is_a_shipped_evaluate_module():
    shipped = sorted(p.name for p in MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())
    assert shipped == sorted(SHIPPED)
    assert set(MODULE_OF.values()) | {"topk_recovery"} == set(SHIPPED)
    for name in SHIPPED:
        module = load_metric(name)
        assert isinstance(module, evaluate.Metric) and module.name == name
    with pytest.raises(ValueError, match="no metric module 'bleu'"):  # never falls through to a Hub script
        load_metric("bleu")
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        score("auc", [1], [1])


def test_metrics_load_and_compute_without_network(monkeypatch):
    """No HF_HUB_OFFLINE needed: loading a shipped module by path opens no connection."""
    def refuse(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_EVALUATE_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert score("mcc", [0, 1, 1], [0, 1, 0]) == pytest.approx(0.5)
    assert top_k_recovery([[3, 4]], [4], (1, 2)) == {1: 0.0, 2: 1.0}


def test_wheel_package_data_covers_every_metric_module():
    """The modules are not Python packages: pyproject's package-data must name them, or a wheel lacks them."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["evaluation"]
    files = [p.relative_to(ROOT / "evaluation").as_posix() for p in MODULES_DIR.rglob("*.py")]
    assert len(files) == len(SHIPPED)
    assert all(any(fnmatch(f, pattern) for pattern in patterns) for f in files)
