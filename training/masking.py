"""MLM masking: Poisson span masking, 80/10/10 replacement, Guided MLM, all deterministic per sample.

Every random choice for a row comes from `numpy.random.default_rng([seed, phase, index])`, so the
masks of sample `index` are the same whichever worker, process or resumed run draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MaskingConfig:
    rate: float = 0.30  # share of maskable tokens to predict (30% in phases 1-2, 10-15% in phase 3)
    mean_span: float = 3.0  # span lengths are 1 + Poisson(mean_span - 1)
    mask_fraction: float = 0.8  # of predicted tokens: replaced by [MASK] ...
    random_fraction: float = 0.1  # ... by a random token; the rest stay as they are
    guided_fraction: float = 0.0  # share of rows that mask mined commerce spans first (Guided MLM)

    def __post_init__(self) -> None:
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"masking rate must be in (0, 1), got {self.rate}.")
        if self.mean_span < 1.0:
            raise ValueError(f"mean_span must be >= 1, got {self.mean_span}.")
        if self.mask_fraction < 0 or self.random_fraction < 0 or self.mask_fraction + self.random_fraction > 1:
            raise ValueError("mask_fraction and random_fraction must be >= 0 and sum to at most 1.")
        if not 0.0 <= self.guided_fraction <= 1.0:
            raise ValueError(f"guided_fraction must be in [0, 1], got {self.guided_fraction}.")


def sample_rng(seed: int, phase: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, phase, index])


def span_lengths(rng: np.random.Generator, mean_span: float, count: int) -> np.ndarray:
    return 1 + rng.poisson(mean_span - 1.0, size=count)


def choose_positions(maskable: np.ndarray, config: MaskingConfig, rng: np.random.Generator,
                     preferred: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Boolean mask of exactly `round(rate * maskable.sum())` positions, all maskable.

    `preferred` spans (token ranges, Guided MLM) are taken first, whole, in a random order while
    they fit; the rest are Poisson-length spans over the maskable positions from random starts.
    """
    positions = np.flatnonzero(maskable)
    target = int(round(config.rate * positions.size))
    chosen = np.zeros(maskable.shape[0], dtype=bool)
    for span_index in rng.permutation(len(preferred)):
        start, end = preferred[span_index]
        span = np.arange(start, end)
        span = span[maskable[span] & ~chosen[span]]
        if chosen.sum() + span.size <= target:
            chosen[span] = True
    remaining = target - int(chosen.sum())
    while remaining > 0:
        count = max(8, int(1.5 * remaining / config.mean_span))
        starts = rng.integers(0, positions.size, size=count)
        lengths = span_lengths(rng, config.mean_span, count)
        # spans run over maskable positions (skipping special tokens), in draw order
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        candidates = np.repeat(starts, lengths) + offsets
        candidates = positions[candidates[candidates < positions.size]]
        candidates = candidates[~chosen[candidates]]
        _, first = np.unique(candidates, return_index=True)
        new = candidates[np.sort(first)][:remaining]
        chosen[new] = True
        remaining -= new.size
    return chosen


def mask_row(ids: np.ndarray, config: MaskingConfig, rng: np.random.Generator, special_ids: np.ndarray,
             mask_id: int, random_ids: np.ndarray, preferred: Sequence[tuple[int, int]] = ()):
    """(inputs, labels) for one row: labels hold the original ids at predicted positions, -100 elsewhere."""
    maskable = ~np.isin(ids, special_ids)
    guided = preferred if rng.random() < config.guided_fraction else ()
    chosen = choose_positions(maskable, config, rng, guided)
    labels = np.where(chosen, ids, -100)
    inputs = ids.copy()
    where = np.flatnonzero(chosen)
    draw = rng.random(where.size)
    to_mask = where[draw < config.mask_fraction]
    to_random = where[(draw >= config.mask_fraction) & (draw < config.mask_fraction + config.random_fraction)]
    inputs[to_mask] = mask_id
    inputs[to_random] = rng.choice(random_ids, size=to_random.size)
    return inputs, labels
