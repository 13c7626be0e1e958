"""Token budgets -> optimizer steps, for a given number of processes.

A step holds `processes x micro_batch_size x accumulation` packed rows of `sequence_length` token
slots; batch-size warmup ramps `accumulation` from 1 to its full value over `batch.warmup_tokens`.
The accumulation of step `s` is a pure function of `s` (it follows token *slots*, not the real
tokens of packed rows, which vary), so the plan and the loop agree exactly, and a resumed run too.
`resolve` turns the token fields of a phase (`run.max_tokens`, `optimizer.warmup_tokens` /
`decay_tokens`, `data.anneal_tokens`) into the step fields the loop runs on.
"""

from __future__ import annotations

import bisect
import copy
import os
from dataclasses import dataclass

from .config import PhaseConfig

BUDGET_TOLERANCE = 0.01  # a token budget may overshoot by this share at most (a step is indivisible)


@dataclass(frozen=True)
class Segment:
    step: int  # first step of the segment
    accumulation: int  # micro-batches per process per step, constant over the segment
    tokens: int  # token slots before `step`


class BatchSchedule:
    """Accumulation and token slots per step under batch-size warmup, in closed form."""

    def __init__(self, config: PhaseConfig, world_size: int):
        self.world_size = world_size
        self.round = world_size * config.batch.micro_batch_size * config.data.sequence_length  # one micro-batch each
        self.rows_per_round = world_size * config.batch.micro_batch_size
        full, budget = config.batch.gradient_accumulation_steps, config.batch.warmup_tokens
        self.segments: list[Segment] = []
        step = tokens = 0
        if budget > 0:
            for k in range(1, full):  # accumulation is k while (full - 1) x tokens < k x budget
                end = -(-k * budget // (full - 1))
                count = max(0, -(-(end - tokens) // (k * self.round)))
                if count:
                    self.segments.append(Segment(step, k, tokens))
                    step, tokens = step + count, tokens + count * k * self.round
        self.segments.append(Segment(step, full, tokens))
        self._starts = [s.step for s in self.segments]

    def _segment(self, step: int) -> Segment:
        return self.segments[bisect.bisect_right(self._starts, step) - 1]

    def accumulation(self, step: int) -> int:
        """Micro-batches per process for step `step` (0-based)."""
        return self._segment(step).accumulation

    def tokens_before(self, step: int) -> int:
        """Token slots of steps 0 .. step-1."""
        segment = self._segment(step)
        return segment.tokens + (step - segment.step) * segment.accumulation * self.round

    def steps_for(self, tokens: int) -> int:
        """The fewest steps whose token slots reach `tokens`."""
        index = max(0, bisect.bisect_right([s.tokens for s in self.segments], tokens) - 1)
        segment = self.segments[index]
        return segment.step + max(0, -(-(tokens - segment.tokens) // (segment.accumulation * self.round)))

    def tokens_per_step(self, step: int) -> int:
        return self.accumulation(step) * self.round

    def pieces(self, end: int):
        """(first step, last step + 1, tokens per step) of the constant-accumulation runs in [0, end)."""
        for i, segment in enumerate(self.segments):
            stop = min(end, self.segments[i + 1].step if i + 1 < len(self.segments) else end)
            if stop > segment.step:
                yield segment.step, stop, segment.accumulation * self.round


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
        data.anneal_steps, data.anneal_tokens = schedule.steps_for(data.anneal_tokens), None
    if opt.warmup_steps + opt.decay_steps > total:
        raise ValueError(f"{where}optimizer: warmup ({opt.warmup_steps} steps) + decay ({opt.decay_steps} steps) "
                         f"exceed the phase's {total} steps.")
    run.world_size = world_size
    config.check()
    return config


def is_resolved(config: PhaseConfig) -> bool:
    return config.run.max_steps is not None and config.run.max_tokens is None and \
        config.optimizer.warmup_tokens is None and config.optimizer.decay_tokens is None and \
        config.data.anneal_tokens is None
