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


def clean_text(value: object) -> str:
    """One field of product text as a reader sees it: HTML tags dropped, entities decoded, whitespace collapsed
    (a list, e.g. bullet points, joined with spaces; None is empty)."""
    if value is None:
        return ""
    text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return html_to_text(text, one_line=True)


def product_text(values) -> str:
    """The text embedded and evaluated for a product: its fields (title, description, ...) each cleaned by
    `clean_text` and joined with a space, empty ones left out. `rexbert embed` and `rexbert eval retrieval`
    (and CoSENT) both prepare text with this one function, so a catalog embedded in bulk and the same
    products evaluated give the same vectors."""
    return " ".join(t for t in map(clean_text, values) if t)
