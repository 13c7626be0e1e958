"""Top-k masked-token recovery (RexBERT paper §6.1, Table 3): the fraction of masked tokens whose original id is
among the model's k highest-scoring ids. A standalone `evaluate` module: `evaluate.load("<this folder>")`, offline."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Top-k accuracy over masked positions: a hit when the reference id is among the first k predictions."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): for each masked position, token ids ranked best first (at least max(k)).
    references (list of int): the original token id at each masked position.
    k (int or list of int): the k values to report, 1 by default.
Returns:
    top{k}_accuracy (float): for each k, in [0, 1].
"""


class TopkRecovery(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64")),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, k=1):
        ks = [k] if isinstance(k, int) else list(k)
        ranked, truth = np.asarray(predictions), np.asarray(references)
        if ranked.ndim != 2 or len(ranked) != len(truth):
            raise ValueError("predictions must hold one list of ranked ids, all of the same length, per reference.")
        if min(ks) < 1 or max(ks) > ranked.shape[1]:  # top-5 from 3 ranked ids would be silently too low
            raise ValueError(f"k must be in 1..{ranked.shape[1]} (the ids ranked per position), got {ks}.")
        hit_rank = ranked == truth[:, None]
        return {f"top{n}_accuracy": float(hit_rank[:, :n].any(axis=1).mean()) for n in ks}
