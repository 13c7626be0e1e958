"""Packed rows from tokenized shards, and the MLM collator that masks them.

`PackedRows` turns a `ShardedCorpus` into best-fit packed rows of a phase's length; `MLMCollator`
masks each row from `sample_rng(seed, phase, row index)` (so any worker or resumed run draws the
same masks) and returns `input_ids`, `labels`, `position_ids` (restarting per document, which is
how the model keeps documents apart) and `attention_mask`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from .masking import MaskingConfig, mask_row, sample_rng
from .packing import best_fit_pack, row_tokens, split_documents
from .shards import ShardedCorpus
from .spans import SpanLexicon


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


def ordinary_ids(tokenizer) -> np.ndarray:
    """Ids that random-token replacement may draw: the vocabulary without special tokens, including
    added ones such as `[unused*]`, `<|padding|>` and `<|endoftext|>` (never seen in training text)."""
    special = set(tokenizer.all_special_ids)
    special.update(i for i, token in tokenizer.added_tokens_decoder.items() if token.special)
    return np.setdiff1d(np.arange(len(tokenizer)), np.fromiter(special, dtype=np.int64))


@dataclass
class MLMCollator:
    tokenizer: object
    masking: MaskingConfig
    seed: int
    phase: int
    lexicon: SpanLexicon | None = None

    def __post_init__(self) -> None:
        special = sorted(set(self.tokenizer.all_special_ids))
        self._special = np.array(special, dtype=np.int64)
        self._random_ids = ordinary_ids(self.tokenizer)
        self._pad = self.tokenizer.pad_token_id
        self._mask = self.tokenizer.mask_token_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        batch = {name: torch.full((len(rows), width), fill) for name, fill in
                 (("input_ids", self._pad), ("labels", -100), ("position_ids", 0), ("attention_mask", 0))}
        for i, row in enumerate(rows):
            ids = np.asarray(row["input_ids"], dtype=np.int64)
            spans = self.lexicon.find(ids) if self.lexicon is not None else ()
            inputs, labels = mask_row(ids, self.masking, sample_rng(self.seed, self.phase, row["index"]),
                                      self._special, self._mask, self._random_ids, preferred=spans)
            n = len(ids)
            batch["input_ids"][i, :n] = torch.from_numpy(inputs)
            batch["labels"][i, :n] = torch.from_numpy(labels)
            batch["position_ids"][i, :n] = torch.tensor(row["position_ids"])
            batch["attention_mask"][i, :n] = 1
        return batch
