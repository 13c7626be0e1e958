"""The MLM collator: masks packed rows (`training.packing.PackedRows`) into model inputs.

`MLMCollator` masks each row from `sample_rng(seed, phase, row index)` (so any worker or resumed
run draws the same masks) and returns `input_ids`, `labels`, `position_ids` (restarting per document, which is
how the model keeps documents apart) and `attention_mask`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .masking import MaskingConfig, mask_row, sample_rng
from .spans import SpanLexicon


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
