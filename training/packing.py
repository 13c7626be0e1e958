"""Best-fit packing of tokenized documents into rows, with document boundaries kept.

Documents longer than a row are cut into pieces (never truncated); each piece is wrapped as
`[CLS] piece [SEP]`. Pieces are placed best-fit decreasing: each goes into the open row whose free
space it fills most tightly, so rows end up nearly full and every token is used exactly once per
epoch. A row records its pieces; positions restart at 0 in each piece, so attention never crosses
documents (the model reads the boundaries from `position_ids`). `PackedRows` serves the rows of a
`ShardedCorpus` by index.

`pack_rows` computes exactly the rows of `split_documents` + `best_fit_pack` (the reference, kept for
its tests) in numpy over the lengths array, with no Python loop per document or piece: pieces of one
length are placed together (see its docstring), so a source of millions of documents packs at start-up
in seconds rather than minutes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class PackedLayout:
    """Rows as arrays: row `i` holds pieces `row_starts[i]:row_starts[i + 1]`, in placement order."""

    row_starts: np.ndarray
    documents: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.row_starts) - 1

    def row(self, index: int) -> list[Piece]:
        first, stop = self.row_starts[index], self.row_starts[index + 1]
        return [Piece(int(d), int(a), int(b)) for d, a, b in
                zip(self.documents[first:stop], self.starts[first:stop], self.ends[first:stop])]


def pack_rows(lengths: Sequence[int] | np.ndarray, row_length: int,
              documents: Iterable[int] | np.ndarray | None = None) -> PackedLayout:
    """The rows of `best_fit_pack(split_documents(lengths, row_length, documents), row_length)`, in numpy.

    Best fit decreasing places pieces longest first, each into the open row with the least free space that
    holds it (the lowest row index among equals). For the pieces of one length L, that is: the open rows
    with at least L free, in (free space, row) order, each filled with as many L-pieces as it holds
    (free // L: after one piece its space is still the smallest that fits, so it takes the next), then new
    rows of row_length // L pieces each. So each length is one pass over the free-space buckets it touches.
    """
    if row_length < 3:
        raise ValueError(f"row_length must leave room for [CLS], a token and [SEP]; got {row_length}.")
    body = row_length - 2
    lengths = np.asarray(lengths, dtype=np.int64)
    ids = np.arange(len(lengths)) if documents is None else np.fromiter(documents, dtype=np.int64) \
        if not isinstance(documents, np.ndarray) else documents.astype(np.int64)
    sizes = lengths[ids]
    ids, sizes = ids[sizes > 0], sizes[sizes > 0]
    counts = -(-sizes // body)
    doc = np.repeat(ids, counts)
    start = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) * body
    end = np.minimum(start + body, np.repeat(sizes, counts))
    piece_length = end - start + 2
    order = np.lexsort((start, doc, -piece_length))  # the reference's order: (-length, document, start)
    doc, start, end, piece_length = doc[order], start[order], end[order], piece_length[order]
    row_of = np.empty(len(doc), dtype=np.int64)
    buckets: list[list[np.ndarray]] = [[] for _ in range(row_length + 1)]  # free space -> rows (unsorted chunks)
    open_at = np.zeros(row_length + 1, dtype=bool)
    rows = 0

    def add(space: int, members: np.ndarray) -> None:
        if space > 2 and len(members):  # a row with 2 or fewer free tokens is closed, as in the reference
            buckets[space].append(members)
            open_at[space] = True

    groups = np.concatenate([[0], np.flatnonzero(np.diff(piece_length)) + 1, [len(doc)]]) if len(doc) else [0]
    for first, stop in zip(groups[:-1], groups[1:]):  # the pieces of one length, longest first
        size, pos = int(piece_length[first]), int(first)
        left = int(stop - first)
        for space in np.flatnonzero(open_at[size:]) + size:  # open rows that hold this length, least free first
            members = np.sort(np.concatenate(buckets[space]))
            each = space // size
            full = min(len(members), left // each)
            row_of[pos:pos + full * each] = np.repeat(members[:full], each)
            pos, left = pos + full * each, left - full * each
            taken = full
            if full < len(members) and left:  # the last row this length reaches, partly filled
                row_of[pos:pos + left] = members[full]
                add(space - left * size, members[full:full + 1])
                pos, left, taken = pos + left, 0, full + 1
            buckets[space], open_at[space] = ([members[taken:]], True) if taken < len(members) else ([], False)
            add(space - each * size, members[:full])
            if not left:
                break
        if left:  # new rows of row_length // size pieces each
            each = row_length // size
            new = -(-left // each)
            fresh = np.arange(rows, rows + new)
            row_of[pos:pos + left] = np.repeat(fresh, each)[:left]
            last = left - (new - 1) * each
            add(row_length - each * size, fresh[:-1] if last < each else fresh)
            if last < each:
                add(row_length - last * size, fresh[-1:])
            rows += new
    by_row = np.argsort(row_of, kind="stable")  # placement order within each row: the pieces' sorted order
    row_starts = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=rows))])
    return PackedLayout(row_starts, doc[by_row], start[by_row], end[by_row])


class PackedRows(torch.utils.data.Dataset):
    """Rows of at most `row_length` tokens (of all documents, or of `documents` only); row `i` is
    `{"index": i, "input_ids", "position_ids"}`. Packed by `pack_rows` when built (numpy, seconds for
    millions of documents); a row's tokens are read from the memory-mapped shards when asked for."""

    def __init__(self, corpus: ShardedCorpus, row_length: int, cls_id: int, sep_id: int,
                 documents: Iterable[int] | None = None):
        self.corpus, self.cls_id, self.sep_id = corpus, cls_id, sep_id
        self.layout = pack_rows(corpus.lengths, row_length, documents)

    @property
    def tokens(self) -> int:
        return int((self.layout.ends - self.layout.starts + 2).sum())

    def __len__(self) -> int:
        return len(self.layout)

    def __getitem__(self, index: int) -> dict:
        row = self.layout.row(index)
        documents = {piece.document: self.corpus.document(piece.document).tolist() for piece in row}
        ids, positions = row_tokens(row, documents, self.cls_id, self.sep_id)
        return {"index": index, "input_ids": ids, "position_ids": positions}
