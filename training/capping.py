"""Source shares capped by availability (`data.max_passes`, or a source's own `max_passes`).

A phase's mixture asks each source for a number of token slots (`mixture.tokens_per_source`). A source
whose size is known (its whole-source shards, else `approx_tokens`) and that would be read more than
`max_passes` times gets its shares scaled down, at the start and at the end of the mixture alike (so an
anneal keeps its shape), until it is read exactly `max_passes` times; the freed share goes to the sources
not capped, in proportion to their own shares, at the start and at the end separately. That can push
another source over its cap, so it repeats until nothing moves (each round caps at least one more source,
so at most one round per source). A source of unknown size is never capped. When the capped sources free
a share that no other source can take (all are capped, or the rest have no share there), it is refused,
naming the field.

The result is a `MixtureSchedule` of the same form (linear from start to end shares over the anneal), and
one function, `phase_mixture`, gives it to the plan, to the tokenization job's per-source caps and to the
sampler the loop draws from, so what the plan prints is what training draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .availability import source_size
from .budget import BatchSchedule
from .config import ConfigError, PhaseConfig
from .mixture import MixtureSchedule, tokens_per_source

TOLERANCE = 1e-9  # relative: a source drawn this close to its cap counts as at it


@dataclass
class CappedMixture:
    requested: MixtureSchedule  # the config's mixture
    schedule: MixtureSchedule  # what is drawn: `requested` itself when nothing is capped
    requested_tokens: np.ndarray  # token slots per source over the phase, as asked ...
    tokens: np.ndarray  # ... and as drawn
    sizes: list[int | None]  # the size each source is capped against (None: unknown, never capped)
    max_passes: list[float | None]  # each source's cap in passes (None: no cap)
    capped: list[bool]

    @property
    def active(self) -> bool:
        """Whether any source has a cap configured (the plan then shows asked and drawn shares)."""
        return any(p is not None for p in self.max_passes)


def _field(phase: PhaseConfig, index: int) -> str:
    own = phase.data.sources[index].max_passes is not None
    return f"data.sources[{index}].max_passes" if own else "data.max_passes"


def cap_mixture(phase: PhaseConfig, schedule: MixtureSchedule, batches: BatchSchedule, steps: int,
                sizes: list[int | None]) -> CappedMixture:
    """`schedule` (a phase's mixture) with every source of known size held to its `max_passes` (see the module
    docstring); raises `ConfigError` naming the field when the freed share has nowhere to go."""
    sources = phase.data.sources
    passes = [s.max_passes if s.max_passes is not None else phase.data.max_passes for s in sources]
    requested_tokens = tokens_per_source(schedule, batches, steps)
    limits = [p * n if p is not None and n is not None else None for p, n in zip(passes, sizes)]
    capped = [False] * len(sources)
    start, end = schedule.start_shares().copy(), schedule.end_shares().copy()
    current, tokens = schedule, requested_tokens
    for _ in range(len(sources) + 1):
        over = [i for i, limit in enumerate(limits) if limit is not None and tokens[i] > limit * (1 + TOLERANCE)]
        if not over:
            break
        for i in over:
            factor = limits[i] / tokens[i]
            start[i] *= factor
            end[i] *= factor
            capped[i] = True
        free = ~np.asarray(capped)
        for shares, where in ((start, "start"), (end, "end")):
            missing, room = 1.0 - shares.sum(), shares[free].sum()
            if missing > TOLERANCE and room <= 0:
                names = ", ".join(f"{sources[i].name!r} ({_field(phase, i)} = {passes[i]:g})"
                                  for i in range(len(sources)) if capped[i])
                raise ConfigError(
                    f"{phase.name}: {_field(phase, over[0])}: capping {names} at that many passes of their size "
                    f"frees {missing:.1%} of the mixture at its {where} that no other source can take (the others "
                    "are capped too or have no share there). Raise the cap, add data (or state a larger "
                    "approx_tokens where the card gives one), or shorten the phase (run.max_tokens).")
            shares[free] *= (room + missing) / room
        current = MixtureSchedule(list(start), 1.0, list(end), schedule.anneal_steps)
        tokens = tokens_per_source(current, batches, steps)
    return CappedMixture(schedule, current, requested_tokens, tokens, list(sizes), passes, capped)


def phase_mixture(phase: PhaseConfig, root: Path | None, world_size: int | None = None) -> CappedMixture:
    """The mixture a phase draws at `world_size` processes (default: its `run.world_size`, else 1), capped
    against the sizes known under the run root `root` (None: the config's `approx_tokens` only)."""
    batches = BatchSchedule(phase, world_size or phase.run.world_size or 1)
    sizes = [source_size(phase, source, root)[0] for source in phase.data.sources]
    return cap_mixture(phase, MixtureSchedule.of(phase.data), batches, phase.run.max_steps, sizes)


def capped_summary(phase: PhaseConfig, mixture: CappedMixture) -> str:
    """One line for the run's console: which sources were capped and the shares drawn instead of those asked."""
    start, asked = mixture.schedule.start_shares(), mixture.requested.start_shares()
    parts = [f"{s.name} {a:.1%} -> {d:.1%}" + (f" (capped at {p:g} passes)" if c else "")
             for s, a, d, p, c in zip(phase.data.sources, asked, start, mixture.max_passes, mixture.capped)]
    return f"{phase.name}: mixture capped by max_passes (asked -> drawn, at the start): {', '.join(parts)}"
