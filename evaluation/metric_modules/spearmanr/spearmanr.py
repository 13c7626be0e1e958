"""Spearman rank correlation (scipy's `spearmanr`, as the Hub's `spearmanr` metric computes it; GLUE's STS-B,
ESCI). A standalone `evaluate` module: `evaluate.load("<this folder>")`, offline."""

import datasets
import evaluate
from scipy.stats import spearmanr

_DESCRIPTION = "Spearman's rho: Pearson's r of the ranks (ties share their mean rank), in [-1, 1]."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted scores.
    references (list of float): true scores.
Returns:
    spearmanr (float): in [-1, 1]; NaN when either side is constant.
"""


class Spearmanr(evaluate.Metric):
    def _info(self):
        # float64, not the Hub module's float32: near-equal scores are not merged into ties
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
            reference_urls=["https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.spearmanr.html"],
        )

    def _compute(self, predictions, references):
        return {"spearmanr": float(spearmanr(references, predictions)[0])}
