"""Text of HTML fragments (product descriptions and bullets in ESCI and shop pages)."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def html_to_text(markup: str, one_line: bool = False) -> str:
    """Tags become line breaks and entities are decoded; `one_line`: all whitespace collapsed to single
    spaces and the ends stripped (how a reader sees a product text in one field)."""
    text = html.unescape(_TAG.sub("\n", markup))
    return _SPACE.sub(" ", text).strip() if one_line else text
