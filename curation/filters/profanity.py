"""Profanity / adult text filtering: datatrove's shipped word lists (derived from LDNOOBW, the "List of
Dirty, Naughty, Obscene and Otherwise Bad Words" that C4 used; inside the datatrove wheel, so offline)
plus our additions, minus words whose ordinary product sense is common. URLs: `url.py`."""

from __future__ import annotations

import os
import re
from importlib import resources

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from .accounting import TokenAccounting


class BlocklistError(OSError):
    """A word or URL list that cannot be read: the run stops before any document is touched."""


def read_list(path: str | None = None, packaged: str | None = None) -> list[str]:
    """Non-comment, non-empty lowercase lines of a file, or of a file in `curation/data/`."""
    try:
        if packaged:
            text = resources.files("curation").joinpath("data", packaged).read_text(encoding="utf-8")
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise BlocklistError(f"blocklist {path or packaged!r} cannot be read: {error}") from None
    return [line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def datatrove_list(name: str) -> list[str]:
    """One of the lists in datatrove's `assets/` (lines starting with '#' are disabled upstream)."""
    from datatrove.utils._import_utils import ASSETS_PATH

    return read_list(os.path.join(ASSETS_PATH, name))


class BlocklistFilter(TokenAccounting, BaseFilter):
    """Drops a document that contains `min_hits` or more blocked words or phrases (one stray swear word
    in a review is kept; explicit pages repeat their vocabulary). Words match on word boundaries, so
    "unisex" or "Essex" never match "sex"."""

    name = "🚫 Profanity / adult (text)"

    def __init__(self, word_files: tuple[str, ...] = (), allow_files: tuple[str, ...] = (), min_hits: int = 2,
                 use_packaged_lists: bool = True):
        super().__init__()
        words, allowed = [], []
        if use_packaged_lists:
            words = datatrove_list("banned_words.txt") + datatrove_list("banned_subwords.txt") + read_list(
                packaged="adult_words_en.txt")
            allowed = read_list(packaged="profanity_allowlist.txt")
        for path in word_files:
            words += read_list(path)
        for path in allow_files:
            allowed += read_list(path)
        self.min_hits = min_hits
        words = sorted(set(words) - set(allowed), key=len, reverse=True)  # longest first: "sex videos" is one hit
        alternatives = "|".join(re.escape(w) for w in words)
        self._words = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if words else None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._words is not None:
            hits = 0
            for _ in self._words.finditer(doc.text):
                hits += 1
                if hits >= self.min_hits:
                    return False, "adult_or_profane"
            doc.metadata["profanity_hits"] = hits
        return True
