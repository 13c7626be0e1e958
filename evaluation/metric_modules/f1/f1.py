"""Binary F1 of the positive class 1 (scikit-learn's `f1_score`, as the Hub's `f1` metric computes it by default).
A standalone `evaluate` module: `evaluate.load("<this folder>")`, offline."""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = "F1 = 2 * (precision * recall) / (precision + recall), for the positive label."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
    pos_label (int): the positive class, 1 by default (GLUE's MRPC and QQP).
Returns:
    f1 (float): in [0, 1].
"""


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"],
        )

    def _compute(self, predictions, references, pos_label=1):
        return {"f1": float(f1_score(references, predictions, pos_label=pos_label, average="binary"))}
