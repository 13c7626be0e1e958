"""Which source, and which packed row of it, each training sample comes from.

Source probabilities start at `weight ** (1 / temperature)`, normalised; with `anneal_to` they
move linearly to those target shares (normalised, not tempered, so the stated target is the share
reached) over `anneal_steps`, and stay there. Sample `g` picks its source
with `default_rng([seed, phase, g, 1])`; each source then yields its rows in a seeded permutation
per epoch, so every row is used once per epoch. The only state is how far each source has been
read, which goes into the checkpoint (`state_dict`) so a resumed run draws the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SOURCE_STREAM = 1  # rng stream ids: masking uses [seed, phase, g]; these keep the draws independent
ORDER_STREAM = 2


@dataclass(frozen=True)
class Draw:
    sample: int  # global sample index: seeds this sample's masks
    source: int
    row: int


class MixtureSchedule:
    def __init__(self, weights: list[float], temperature: float = 1.0, anneal_to: list[float] | None = None,
                 anneal_steps: int = 0):
        self.start = np.asarray(weights, dtype=np.float64)
        self.end = np.asarray(anneal_to, dtype=np.float64) if anneal_to is not None else self.start
        self.temperature, self.anneal_steps = temperature, anneal_steps

    @classmethod
    def of(cls, data) -> "MixtureSchedule":
        """The schedule of a phase's `data` section (a `config.DataConfig`, resolved to steps)."""
        anneal = data.anneal_to
        return cls([s.weight for s in data.sources], data.temperature,
                   [anneal.get(s.name, 0.0) for s in data.sources] if anneal else None, data.anneal_steps)

    def progress(self, step: int) -> float:
        return 1.0 if self.anneal_steps == 0 else min(1.0, step / self.anneal_steps)

    def start_shares(self) -> np.ndarray:
        tempered = np.where(self.start > 0, np.maximum(self.start, 1e-300) ** (1.0 / self.temperature), 0.0)
        return tempered / tempered.sum()

    def end_shares(self) -> np.ndarray:
        return self.end / self.end.sum() if self.end is not self.start else self.start_shares()

    def probabilities(self, step: int) -> np.ndarray:
        progress = self.progress(step)
        return (1 - progress) * self.start_shares() + progress * self.end_shares()


class MixtureSampler:
    def __init__(self, rows_per_source: list[int], schedule: MixtureSchedule, seed: int, phase: int):
        self.rows_per_source = list(rows_per_source)
        self.schedule, self.seed, self.phase = schedule, seed, phase
        self.next_sample = 0
        self.drawn = [0] * len(rows_per_source)  # rows read so far from each source, over all epochs
        self._orders: dict[tuple[int, int], np.ndarray] = {}

    def _order(self, source: int, epoch: int) -> np.ndarray:
        key = (source, epoch)
        if key not in self._orders:
            if len(self._orders) > 4 * len(self.rows_per_source):
                self._orders.clear()
            rng = np.random.default_rng([self.seed, self.phase, source, epoch, ORDER_STREAM])
            self._orders[key] = rng.permutation(self.rows_per_source[source])
        return self._orders[key]

    def draw(self, step: int, count: int) -> list[Draw]:
        """The next `count` samples, for optimizer step `step` (which sets the annealed mixture)."""
        probabilities = self.schedule.probabilities(step)
        available = np.asarray(self.rows_per_source) > 0
        probabilities = np.where(available, probabilities, 0.0)
        if probabilities.sum() == 0:
            raise ValueError("no source with a positive weight has any rows.")
        probabilities /= probabilities.sum()
        draws = []
        for sample in range(self.next_sample, self.next_sample + count):
            source = int(np.random.default_rng([self.seed, self.phase, sample, SOURCE_STREAM])
                         .choice(len(probabilities), p=probabilities))
            epoch, offset = divmod(self.drawn[source], self.rows_per_source[source])
            draws.append(Draw(sample, source, int(self._order(source, epoch)[offset])))
            self.drawn[source] += 1
        self.next_sample += count
        return draws

    def state_dict(self) -> dict:
        return {"next_sample": self.next_sample, "drawn": list(self.drawn)}

    def load_state_dict(self, state: dict) -> None:
        if len(state["drawn"]) != len(self.drawn):
            raise ValueError(f"checkpoint has {len(state['drawn'])} sources, the config {len(self.drawn)}.")
        self.next_sample, self.drawn = int(state["next_sample"]), list(state["drawn"])


def tokens_per_source(schedule: MixtureSchedule, batches, steps: int) -> np.ndarray:
    """Tokens drawn per source over `steps` steps of `batches` (a `budget.BatchSchedule`): the sum over steps of
    share(step) x tokens(step), exactly (what the plan reports and the tokenization job caps at)."""
    start, end = schedule.start_shares(), schedule.end_shares()
    anneal = schedule.anneal_steps
    total = np.zeros_like(start)
    for first, stop, tokens in batches.pieces(steps):
        ramp_stop = min(stop, anneal) if anneal else first  # steps with progress step / anneal < 1
        ramp = max(0, ramp_stop - first)
        progress = (first + ramp_stop - 1) * ramp / 2 / anneal if ramp else 0.0  # sum of step / anneal
        progress += stop - first - ramp  # the rest at progress 1
        total += tokens * ((stop - first) * start + progress * (end - start))
    return total
