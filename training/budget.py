"""Token budgets -> optimizer steps, and the global batch -> rows per process, for a number of processes.

The global batch is set in tokens (`batch.global_tokens`): a step holds that many token slots
(rows x `sequence_length`) whatever the processes, so the steps, the LR and the weight decay per step
are the same on 8 or 512 GPUs; only how a process splits its rows changes. Each process takes
`global_tokens / (processes x sequence_length)` rows per step, in micro-batches of at most
`micro_batch_size` rows (accumulation = the number of micro-batches). A world size that cannot hold
the batch within `BUDGET_TOLERANCE` is refused before any work, naming the field.

Batch-size warmup, in tokens too: the batch starts at `batch.warmup_start_tokens` and grows in steps
of that size up to `global_tokens` over `batch.warmup_tokens` (stage k of K while (K - 1) x tokens
seen < k x warmup_tokens), so the ramp is the same at every world size that divides its stages into
whole rows per process (elsewhere each stage takes the nearest whole number of rows).

Legacy configs (`batch.gradient_accumulation_steps`, no `global_tokens`) keep their meaning: a
step holds `processes x micro_batch_size x accumulation` rows, so their batch grows with the
processes, and batch-size warmup ramps the accumulation from 1.

The rows of step `s` are a pure function of `s` (they follow token *slots*, not the real tokens of
packed rows, which vary), so the plan and the loop agree exactly, and a resumed run too.
`resolve` turns the token fields of a phase (`run.max_tokens`, `optimizer.warmup_tokens` /
`decay_tokens`, `data.anneal_tokens`) into the step fields the loop runs on.
"""

from __future__ import annotations

import bisect
import copy
import os
from dataclasses import dataclass

from .config import PhaseConfig

BUDGET_TOLERANCE = 0.01  # a token budget or batch may miss by this share at most (a step and a row are indivisible)


@dataclass(frozen=True)
class Segment:
    step: int  # first step of the segment
    rows: int  # rows per process per step, constant over the segment
    tokens: int  # token slots before `step`


def _off(realised: float, target: float) -> float:
    return abs(realised - target) / target


def stage_rows(config: PhaseConfig, world_size: int) -> list[int]:
    """Rows per process of each batch-warmup stage (the last one is the full batch); raises ValueError
    naming the batch field when `world_size` processes cannot hold the batch within the tolerance."""
    batch, length = config.batch, config.data.sequence_length
    where = f"{config.name}: batch."
    if batch.global_tokens is None:  # legacy: accumulation 1 .. full micro-batches of micro_batch_size rows
        full = batch.gradient_accumulation_steps or 1
        stages = range(1, full + 1) if batch.warmup_tokens > 0 else [full]
        return [k * batch.micro_batch_size for k in stages]
    unit = world_size * length  # one row on every process
    full = round(batch.global_tokens / unit)
    if full < 1 or _off(full * unit, batch.global_tokens) > BUDGET_TOLERANCE:
        nearest = max(1, full) * unit
        raise ValueError(
            f"{where}global_tokens: {batch.global_tokens:,} tokens per step cannot be reached by {world_size} "
            f"process(es) with rows of {length:,} tokens: the nearest is {max(1, full)} row(s) each, "
            f"{nearest:,} tokens ({_off(nearest, batch.global_tokens):.1%} off; at most {BUDGET_TOLERANCE:.0%}). "
            + (f"Use a number of processes that divides {batch.global_tokens // length:,} rows, or change "
               "global_tokens." if batch.global_tokens >= length else "global_tokens is less than one row."))
    if batch.warmup_tokens <= 0:
        return [full]
    count = round(batch.global_tokens / batch.warmup_start_tokens)  # stages; config.check made it an integer
    stages = [round(k * full / count) for k in range(1, count + 1)]
    if stages[0] < 1:  # the warmup's stages are transient: the nearest whole rows will do, but not none
        raise ValueError(
            f"{where}warmup_start_tokens: the first batch-warmup stage ({batch.warmup_start_tokens:,} tokens) is less "
            f"than one row on each of {world_size} process(es) ({unit:,} tokens); raise it to at least {unit:,}.")
    return stages


def micro_batches(rows: int, micro_batch_size: int) -> list[int]:
    """`rows` split into the fewest micro-batches of at most `micro_batch_size` rows, as even as possible."""
    count = -(-rows // micro_batch_size)
    return [rows // count + (i < rows % count) for i in range(count)]


class BatchSchedule:
    """Rows per process and token slots per step under batch-size warmup, in closed form."""

    def __init__(self, config: PhaseConfig, world_size: int):
        self.world_size = world_size
        self.micro_batch_size = config.batch.micro_batch_size
        self.unit = world_size * config.data.sequence_length  # token slots of one row on every process
        stages, budget = stage_rows(config, world_size), config.batch.warmup_tokens
        self.segments: list[Segment] = []
        step = tokens = 0
        last = len(stages)
        for k, rows in enumerate(stages[:-1], 1):  # stage k while (last - 1) x tokens < k x budget
            end = -(-k * budget // (last - 1))
            count = max(0, -(-(end - tokens) // (rows * self.unit)))
            if count:
                self.segments.append(Segment(step, rows, tokens))
                step, tokens = step + count, tokens + count * rows * self.unit
        self.segments.append(Segment(step, stages[-1], tokens))
        self._starts = [s.step for s in self.segments]

    def _segment(self, step: int) -> Segment:
        return self.segments[bisect.bisect_right(self._starts, step) - 1]

    def rows(self, step: int) -> int:
        """Rows per process for step `step` (0-based)."""
        return self._segment(step).rows

    def micro_batches(self, step: int) -> list[int]:
        """The sizes of a process's micro-batches in step `step` (the same on every process)."""
        return micro_batches(self.rows(step), self.micro_batch_size)

    def accumulation(self, step: int) -> int:
        """Micro-batches per process for step `step`."""
        return len(self.micro_batches(step))

    def tokens_before(self, step: int) -> int:
        """Token slots of steps 0 .. step-1."""
        segment = self._segment(step)
        return segment.tokens + (step - segment.step) * segment.rows * self.unit

    def steps_for(self, tokens: int) -> int:
        """The fewest steps whose token slots reach `tokens`."""
        index = max(0, bisect.bisect_right([s.tokens for s in self.segments], tokens) - 1)
        segment = self.segments[index]
        return segment.step + max(0, -(-(tokens - segment.tokens) // (segment.rows * self.unit)))

    def tokens_per_step(self, step: int) -> int:
        return self.rows(step) * self.unit

    def pieces(self, end: int):
        """(first step, last step + 1, tokens per step) of the constant-batch runs in [0, end)."""
        for i, segment in enumerate(self.segments):
            stop = min(end, self.segments[i + 1].step if i + 1 < len(self.segments) else end)
            if stop > segment.step:
                yield segment.step, stop, segment.rows * self.unit


def launch_world_size() -> int:
    """The processes of this launch (torchrun / accelerate launch set WORLD_SIZE), read without
    initialising Accelerate's state, which must be created by the Accelerator with its options."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch_is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def resolve(config: PhaseConfig, world_size: int) -> PhaseConfig:
    """A copy of `config` with its token budgets turned into steps for `world_size` processes; a
    budget that cannot be met raises ValueError naming the field."""
    if world_size < 1:
        raise ValueError(f"world size must be >= 1, got {world_size}.")
    config = copy.deepcopy(config)
    run, opt, data, batch = config.run, config.optimizer, config.data, config.batch
    schedule = BatchSchedule(config, world_size)
    where = f"{config.name}: "
    if run.max_tokens is not None:
        if batch.warmup_tokens > run.max_tokens:
            raise ValueError(f"{where}batch.warmup_tokens ({batch.warmup_tokens:,}) exceeds run.max_tokens "
                             f"({run.max_tokens:,}).")
        steps = schedule.steps_for(run.max_tokens)
        over = schedule.tokens_before(steps) / run.max_tokens - 1
        if over > BUDGET_TOLERANCE:
            raise ValueError(f"{where}run.max_tokens ({run.max_tokens:,}) does not divide into steps of "
                             f"{schedule.tokens_per_step(steps - 1):,} tokens at {world_size} process(es): "
                             f"{steps} step(s) make {schedule.tokens_before(steps):,} ({over:.1%} over). Raise "
                             "max_tokens or shrink the batch.")
        run.max_steps, run.max_tokens = steps, None
    total = run.max_steps
    if opt.warmup_tokens is not None:
        opt.warmup_steps, opt.warmup_tokens = schedule.steps_for(opt.warmup_tokens), None
    if opt.decay_tokens is not None:
        start = schedule.tokens_before(total) - opt.decay_tokens
        if start < 0:
            raise ValueError(f"{where}optimizer.decay_tokens ({opt.decay_tokens:,}) exceeds the phase's "
                             f"{schedule.tokens_before(total):,} tokens.")
        opt.decay_steps, opt.decay_tokens = total - schedule.steps_for(start), None
    if data.anneal_tokens is not None:
        if data.anneal_tokens > schedule.tokens_before(total):
            raise ValueError(f"{where}data.anneal_tokens ({data.anneal_tokens:,}) is longer than the phase's "
                             f"{schedule.tokens_before(total):,} tokens; the mixture would never reach anneal_to.")
        data.anneal_steps, data.anneal_tokens = schedule.steps_for(data.anneal_tokens), None
    if opt.warmup_steps + opt.decay_steps > total:
        raise ValueError(f"{where}optimizer: warmup ({opt.warmup_steps} steps) + decay ({opt.decay_steps} steps) "
                         f"exceed the phase's {total} steps.")
    run.world_size = world_size
    config.check()
    return config

