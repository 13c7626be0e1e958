"""Commerce span mining for Guided MLM: attribute-value pairs, quantities with units, model numbers, brands.

`mine_spans(texts)` counts candidate spans in a corpus; `SpanLexicon` keeps the frequent ones as
token sequences and finds them in token rows, so the collator can mask them first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rexbert.core.outputs import write_text_atomic

UNITS = (r"GB|TB|MB|KB|mAh|Wh|W|kW|V|A|Hz|kHz|MHz|GHz|MP|fps|oz|fl\.? ?oz|lbs?|kg|g|mg|ml|mL|L|"
         r"in|inch(?:es)?|ft|cm|mm|m|yd|pcs|pack|count|ct|qt|gal|°F|°C|rpm|dB|BTU")
PATTERNS = {
    # `Color: Navy`, `Material: Stainless Steel` (the value stops at punctuation)
    "attribute_value": re.compile(r"\b[A-Z][A-Za-z]+(?: [A-Za-z]+)?:\s*[A-Za-z0-9][\w\-]*(?: [\w\-]+){0,2}(?=[,;.|\n)]|$)"),
    # `64 GB`, `2.5 inch`, `12-pack`
    "quantity": re.compile(rf"\b\d+(?:\.\d+)?(?:\s?-?\s?)(?:{UNITS})\b"),
    # `WH-1000XM4`, `A2342`, `RTX 3080`
    "model_number": re.compile(r"\b(?=[A-Z0-9\-]*\d)(?=[A-Z0-9\-]*[A-Z])[A-Z0-9]{1,6}(?:-[A-Z0-9]{1,8})+\b|\b[A-Z]{1,4}\d{3,6}[A-Z]{0,3}\b"),
    # `Brand: Sony` and `by Sony` (a capitalised name after "by")
    "brand": re.compile(r"(?:\bBrand:\s*|\bby\s+)([A-Z][A-Za-z&'\-]*(?: [A-Z][A-Za-z&'\-]*){0,2})\b(?![\w-])"),
}


def find_spans(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) character spans of commerce entities in `text`."""
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            start, end = match.span(1) if kind == "brand" else match.span()
            found.append((kind, start, end))
    return found


def mine_spans(texts: Iterable[str], min_count: int = 2) -> dict[str, dict[str, int]]:
    """Span strings per kind that occur at least `min_count` times in `texts`."""
    counts: dict[str, Counter] = {kind: Counter() for kind in PATTERNS}
    for text in texts:
        for kind, start, end in find_spans(text):
            counts[kind][text[start:end].strip()] += 1
    return {kind: {span: n for span, n in counter.most_common() if n >= min_count}
            for kind, counter in counts.items()}


def save_spans(spans: dict[str, dict[str, int]], path: str | Path) -> Path:
    return write_text_atomic(path, json.dumps(spans, indent=1, ensure_ascii=False) + "\n")


class SpanLexicon:
    """Mined spans as token sequences, found in token rows by their first token."""

    def __init__(self, spans: dict[str, dict[str, int]], tokenizer):
        by_first: dict[int, set[tuple[int, ...]]] = {}
        for kind_spans in spans.values():
            for span in kind_spans:
                # with and without a leading space: BPE tokens differ at the start of a word
                for variant in (span, " " + span):
                    ids = tuple(tokenizer(variant, add_special_tokens=False)["input_ids"])
                    if ids:
                        by_first.setdefault(ids[0], set()).add(ids)
        self._by_first = {first: sorted(seqs, key=len, reverse=True) for first, seqs in by_first.items()}
        self._firsts = np.fromiter(self._by_first, dtype=np.int64)

    @classmethod
    def from_file(cls, path: str | Path, tokenizer) -> SpanLexicon:
        return cls(json.loads(Path(path).read_text()), tokenizer)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_first.values())

    def find(self, ids: np.ndarray) -> list[tuple[int, int]]:
        """Non-overlapping (start, end) token ranges of lexicon spans in `ids`, longest match first."""
        spans, taken_until = [], 0
        for start in np.flatnonzero(np.isin(ids, self._firsts)):
            if start < taken_until:
                continue
            for seq in self._by_first[int(ids[start])]:
                end = start + len(seq)
                if end <= len(ids) and tuple(ids[start:end].tolist()) == seq:
                    spans.append((int(start), int(end)))
                    taken_until = end
                    break
        return spans
