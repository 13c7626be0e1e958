"""Matthews correlation coefficient (scikit-learn's `matthews_corrcoef`, as the Hub's `matthews_correlation`
metric computes it; GLUE's CoLA score). A standalone `evaluate` module: `evaluate.load("<this folder>")`, offline."""

import datasets
import evaluate
from sklearn.metrics import matthews_corrcoef

_DESCRIPTION = "MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), in [-1, 1]; 0 is chance level."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): true labels.
Returns:
    matthews_correlation (float): in [-1, 1].
"""


class MatthewsCorrelation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
            reference_urls=["https://scikit-learn.org/stable/modules/generated/sklearn.metrics.matthews_corrcoef.html"],
        )

    def _compute(self, predictions, references):
        return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
