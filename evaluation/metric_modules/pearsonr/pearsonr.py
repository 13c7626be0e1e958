"""Pearson correlation (scipy's `pearsonr`, as the Hub's `pearsonr` metric computes it; GLUE's STS-B, ESCI).
A standalone `evaluate` module: `evaluate.load("<this folder>")`, offline."""

import datasets
import evaluate
from scipy.stats import pearsonr

_DESCRIPTION = "Pearson's r: the linear correlation of predictions and references, in [-1, 1]."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted scores.
    references (list of float): true scores.
Returns:
    pearsonr (float): in [-1, 1]; NaN when either side is constant.
"""


class Pearsonr(evaluate.Metric):
    def _info(self):
        # float64, not the Hub module's float32: scores are not rounded before they are correlated
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
            reference_urls=["https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.pearsonr.html"],
        )

    def _compute(self, predictions, references):
        return {"pearsonr": float(pearsonr(references, predictions)[0])}
