"""matplotlib for files, never a display: the Agg backend, one figure per file, closed once saved."""

from __future__ import annotations


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (no display needed, safe on servers and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 100) -> None:
    """Writes `fig` to `path` and closes it (pyplot keeps every open figure in memory otherwise)."""
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
