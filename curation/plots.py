"""The curation charts: precision-recall and score histogram per classifier, the domain distribution."""

from __future__ import annotations

from rexbert.core.plotting import pyplot, save_figure


def point_at(precision, recall, thresholds, threshold: float) -> tuple[float, float]:
    """(recall, precision) of the curve's own vertex for `threshold` (one of `thresholds`), so the marked
    point lies on the drawn curve whatever rounding the separately computed scores had."""
    import numpy as np

    i = min(int(np.searchsorted(thresholds, threshold)), len(thresholds) - 1)
    return float(recall[i]), float(precision[i])


def pr_curve_png(path: str, precision, recall, thresholds, threshold: float, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, drawstyle="steps-post")
    x, y = point_at(precision, recall, thresholds, threshold)
    ax.scatter([x], [y], color="red", zorder=3, label=f"chosen threshold {threshold:.2f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)


def score_histogram_png(path: str, scores, labels, threshold: float, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    bins = [i / 20 for i in range(21)]
    ax.hist([s for s, y in zip(scores, labels) if y == 1], bins=bins, alpha=0.6, label="relevant")
    ax.hist([s for s, y in zip(scores, labels) if y == 0], bins=bins, alpha=0.6, label="not relevant")
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="classifier score", ylabel="documents", title=title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def domain_distribution_png(path: str, amount_by_domain: dict[str, int], title: str, unit: str = "words") -> None:
    """Each domain's share of the kept text, counted in `unit` (what the numbers are: words, tokens)."""
    plt = pyplot()
    items = sorted(amount_by_domain.items(), key=lambda kv: kv[1], reverse=True)
    total = sum(v for _, v in items) or 1
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(items) + 1.2))
    ax.barh([k for k, _ in items][::-1], [100 * v / total for _, v in items][::-1])
    ax.set(xlabel=f"share of kept {unit} (%)", title=title)
    fig.tight_layout()
    save_figure(fig, path)
