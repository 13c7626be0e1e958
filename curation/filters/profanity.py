"""Profanity / adult filtering from word lists and URL host blocklists shipped as package data
(`curation/data/`, see its README for provenance); extra lists come from the config."""

from __future__ import annotations

import re
from importlib import resources
from urllib.parse import urlsplit

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from .accounting import TokenAccounting


def read_list(path: str | None = None, packaged: str | None = None) -> list[str]:
    """Non-comment, non-empty lowercase lines of a file, or of a file in `curation/data/`."""
    if packaged:
        text = resources.files("curation").joinpath("data", packaged).read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return [line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class BlocklistFilter(TokenAccounting, BaseFilter):
    """Drops a document whose URL host is blocklisted, or that contains `min_hits` or more blocked
    words (one stray swear word in a review is kept; explicit pages repeat their vocabulary)."""

    name = "🚫 Profanity / adult"

    def __init__(self, word_files: tuple[str, ...] = (), url_files: tuple[str, ...] = (), min_hits: int = 2,
                 use_packaged_lists: bool = True):
        super().__init__()
        words = read_list(packaged="adult_words_en.txt") if use_packaged_lists else []
        hosts = read_list(packaged="url_blocklist.txt") if use_packaged_lists else []
        for path in word_files:
            words += read_list(path)
        for path in url_files:
            hosts += read_list(path)
        self.min_hits = min_hits
        self.hosts = frozenset(hosts)
        # longest first so "sex videos" is one hit, not "sex video" + leftovers
        alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
        self._words = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if words else None

    def _blocked_host(self, url: str) -> bool:
        host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
        parts = host.split(".")
        return any(".".join(parts[i:]) in self.hosts for i in range(len(parts) - 1))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        url = doc.metadata.get("url")
        if url and self._blocked_host(url):
            return False, "blocked_url"
        if self._words is not None:
            hits = 0
            for _ in self._words.finditer(doc.text):
                hits += 1
                if hits >= self.min_hits:
                    return False, "adult_or_profane"
            doc.metadata["profanity_hits"] = hits
        return True
