"""Where the data that ships inside the package lies: the bundled corpus and its evaluation samples."""

from __future__ import annotations

from pathlib import Path

BUNDLED_CORPUS = Path(__file__).parents[1] / "corpus"  # rexbert/corpus/: see its README for sources and licenses
BUNDLED_EVAL_DATA = BUNDLED_CORPUS / "eval"
