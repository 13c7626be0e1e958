"""Best-fit packing of tokenized documents into rows, with document boundaries kept.

Documents longer than a row are cut into pieces (never truncated); each piece is wrapped as
`[CLS] piece [SEP]`. Pieces are placed best-fit decreasing: each goes into the open row whose free
space it fills most tightly, so rows end up nearly full and every token is used exactly once per
epoch. A row records its pieces; positions restart at 0 in each piece, so attention never crosses
documents (the model reads the boundaries from `position_ids`). `PackedRows` serves the rows of a
`ShardedCorpus` by index.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch

from .shards import ShardedCorpus


@dataclass(frozen=True)
class Piece:
    document: int
    start: int  # token range [start, end) of the document body (without [CLS]/[SEP])
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 2  # with [CLS] and [SEP]


def split_documents(lengths: Sequence[int], row_length: int, documents: Iterable[int] | None = None) -> list[Piece]:
    """Pieces of at most `row_length` tokens (with specials) covering every document body (of the
    `documents` ids only, when given; `lengths` is indexed by document id)."""
    if row_length < 3:
        raise ValueError(f"row_length must leave room for [CLS], a token and [SEP]; got {row_length}.")
    body = row_length - 2
    ids = range(len(lengths)) if documents is None else documents
    return [Piece(doc, start, min(start + body, int(lengths[doc])))
            for doc in ids if lengths[doc] > 0
            for start in range(0, int(lengths[doc]), body)]


def best_fit_pack(pieces: list[Piece], row_length: int) -> list[list[Piece]]:
    """Rows of pieces, best-fit decreasing. Deterministic for a given input order."""
    rows: list[list[Piece]] = []
    free: list[tuple[int, int]] = []  # (free space, row index), sorted
    for piece in sorted(pieces, key=lambda p: (-p.length, p.document, p.start)):
        slot = bisect.bisect_left(free, (piece.length, -1))
        if slot < len(free):
            space, row = free.pop(slot)
            rows[row].append(piece)
            if space - piece.length > 2:
                bisect.insort(free, (space - piece.length, row))
        else:
            rows.append([piece])
            if row_length - piece.length > 2:
                bisect.insort(free, (row_length - piece.length, len(rows) - 1))
    return rows


def row_tokens(row: list[Piece], documents: Mapping[int, Sequence[int]] | Sequence[Sequence[int]], cls_id: int,
               sep_id: int) -> tuple[list[int], list[int]]:
    """(input ids, position ids) of a packed row; positions restart at 0 in every piece. `documents`
    maps document ids to their tokens (a list, or a dict holding just this row's documents)."""
    ids, positions = [], []
    for piece in row:
        tokens = [cls_id, *documents[piece.document][piece.start:piece.end], sep_id]
        ids.extend(tokens)
        positions.extend(range(len(tokens)))
    return ids, positions


class PackedRows(torch.utils.data.Dataset):
    """Rows of at most `row_length` tokens (of all documents, or of `documents` only); row `i` is
    `{"index": i, "input_ids", "position_ids"}`."""

    def __init__(self, corpus: ShardedCorpus, row_length: int, cls_id: int, sep_id: int,
                 documents: Iterable[int] | None = None):
        self.corpus, self.cls_id, self.sep_id = corpus, cls_id, sep_id
        self.rows = best_fit_pack(split_documents(corpus.lengths, row_length, documents), row_length)

    @property
    def tokens(self) -> int:
        return sum(piece.length for row in self.rows for piece in row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        documents = {piece.document: self.corpus.document(piece.document).tolist() for piece in self.rows[index]}
        ids, positions = row_tokens(self.rows[index], documents, self.cls_id, self.sep_id)
        return {"index": index, "input_ids": ids, "position_ids": positions}
