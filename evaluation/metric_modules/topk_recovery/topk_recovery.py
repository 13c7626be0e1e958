"""Top-k masked-token recovery (RexBERT paper §6.1, Table 3): the fraction of masked tokens whose original id is
among the model's k highest-scoring ids. A standalone `evaluate` module: `evaluate.load("<this folder>")`, offline.

Two input forms (evaluate's `config_name`):
- "default": for each masked position the ids the model ranks best first, and the original id;
- "ranks": for each masked position the rank of the original id among all the model's scores (0 = best).
  One integer per position instead of k ids plus a reference: what a scorer of millions of positions should
  send, because evaluate encodes every input value into Arrow one by one.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Top-k accuracy over masked positions: a hit when the reference id is among the first k predictions."
_KWARGS_DESCRIPTION = """
Args (config "default"):
    predictions (list of list of int): for each masked position, token ids ranked best first (at least max(k)).
    references (list of int): the original token id at each masked position.
Args (config "ranks"):
    predictions (list of int): for each masked position, the 0-based rank of the original token id in the
        model's scores (the number of ids scored above it).
Both:
    k (int or list of int): the k values to report, 1 by default.
Returns:
    top{k}_accuracy (float): for each k, in [0, 1].
"""


class TopkRecovery(evaluate.Metric):
    def _info(self):
        if self.config_name == "ranks":
            features = datasets.Features({"predictions": datasets.Value("int64")})
        else:
            features = datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64")),
                                          "references": datasets.Value("int64")})
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
                                   features=features)

    def _compute(self, predictions, references=None, k=1):
        ks = [k] if isinstance(k, int) else list(k)
        if min(ks) < 1:
            raise ValueError(f"k must be >= 1, got {ks}.")
        if self.config_name == "ranks":
            ranks = np.asarray(predictions)
            if ranks.ndim != 1 or (ranks < 0).any():
                raise ValueError("predictions must hold one non-negative rank per masked position.")
            return {f"top{n}_accuracy": float((ranks < n).mean()) for n in ks}
        ranked, truth = np.asarray(predictions), np.asarray(references)
        if ranked.ndim != 2 or len(ranked) != len(truth):
            raise ValueError("predictions must hold one list of ranked ids, all of the same length, per reference.")
        if max(ks) > ranked.shape[1]:  # top-5 from 3 ranked ids would be silently too low
            raise ValueError(f"k must be in 1..{ranked.shape[1]} (the ids ranked per position), got {ks}.")
        hit_rank = ranked == truth[:, None]
        return {f"top{n}_accuracy": float(hit_rank[:, :n].any(axis=1).mean()) for n in ks}
