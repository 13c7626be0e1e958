"""Phase configs: YAML files validated into typed dataclasses before any work starts.

A phase file may `extends: other.yaml` (a path relative to itself); its keys are merged over the
other file's, recursively. Relative data paths are relative to the file that names them. Unknown
keys, wrong types and out-of-range values raise `ConfigError` naming the field
(`phase2.yaml: optimizer.lr: expected a number, got 'fast'`). `rexbert train --set key=value`
settings (`training/overrides.py`) merge over the files and are validated the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modeling_rexbert import PRESETS
from rexbert.core.config_schema import ConfigError, build, merge

from .masking import MaskingConfig

# what Accelerate's `log_with` takes by name (accelerate.utils.LoggerType, less "all")
TRACKERS = ("tensorboard", "wandb", "trackio", "aim", "comet_ml", "mlflow", "clearml", "dvclive", "swanlab")


@dataclass
class SourceConfig:
    name: str
    path: str | None = None  # local file or folder; relative to the YAML file that names it
    dataset: str | None = None  # a Hub id, streamed
    config: str | None = None  # the Hub dataset's config (subset) name, e.g. `fra_Latn` for fineweb-2
    split: str = "train"  # as the dataset card names it (some datasets split by language: `en`)
    text_column: str = "text"
    weight: float = 1.0
    # the source's size in tokens (OLMo tokenizer) as its card states it, for the plan's passes per source
    # when its shards are not built yet; None: unknown until they are
    approx_tokens: int | None = None
    max_passes: float | None = None  # this source's own cap on passes per phase (else data.max_passes)

    def check(self) -> None:
        if self.approx_tokens is not None and self.approx_tokens < 1:
            raise ValueError(f"source {self.name!r}: approx_tokens must be >= 1, got {self.approx_tokens}.")
        if self.max_passes is not None and not self.max_passes > 0:
            raise ValueError(f"source {self.name!r}: max_passes must be > 0, got {self.max_passes}.")
        if (self.path is None) == (self.dataset is None):
            raise ValueError(f"source {self.name!r}: give exactly one of `path` (local) or `dataset` (Hub id).")
        if self.weight < 0:
            raise ValueError(f"source {self.name!r}: weight must be >= 0, got {self.weight}.")
        if self.config is not None and self.dataset is None:
            raise ValueError(f"source {self.name!r}: `config` names a Hub dataset's subset; it needs `dataset`.")


@dataclass
class DataConfig:
    sources: list[SourceConfig]
    sequence_length: int = 512
    temperature: float = 1.0  # sampling probability of a source is proportional to weight ** (1 / temperature)
    anneal_to: dict[str, float] | None = None  # target shares by source name (normalised, not tempered) ...
    anneal_steps: int = 0  # ... reached linearly over this many steps ...
    anneal_tokens: int | None = None  # ... or tokens (steps derived for the world size)
    eval_documents: int = 32  # held out per source for the MLM loss/accuracy (the same in every phase)
    heldout_seed: int | None = None  # picks the held-out documents; None: run.seed. Fix it to vary run.seed
    # (data order, masks) while every run scores, and never trains on, the same held-out text
    eval_rows: int = 32  # packed held-out rows scored per source at each evaluation
    spans: str | None = None  # mined commerce spans (`rexbert mine-spans`) for Guided MLM
    # stop when more than this share of a source's records were set aside while tokenizing (bad JSON,
    # empty, no text, oversized, undecodable): a source that is mostly unreadable is a wrong path or column
    max_skipped_share: float = 0.05
    # opt-in cap on how often a phase reads a source of known size (built shards, else approx_tokens): a
    # source the mixture would read more often gets its share cut to this many passes and the freed share
    # goes to the other sources in proportion to their shares (training/capping.py). None: no cap (the
    # plan still warns past 4 passes)
    max_passes: float | None = None
    # appended to `sources`: lets a phase add a source to the ones it inherits through `extends:`
    add_sources: list[SourceConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sources, self.add_sources = [*self.sources, *self.add_sources], []

    def check(self) -> None:
        if not self.sources:
            raise ValueError("sources: at least one source is needed.")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must be unique, got {names}.")
        for source in self.sources:
            source.check()
        if sum(s.weight for s in self.sources) <= 0:
            raise ValueError("sources: at least one weight must be positive.")
        unknown = set(self.anneal_to or {}) - set(names)
        if unknown:
            raise ValueError(f"anneal_to names unknown sources {sorted(unknown)}; sources are {names}.")
        for i, source in enumerate(self.sources):  # a source never sampled would still be read and tokenized
            if source.weight == 0 and not (self.anneal_to or {}).get(source.name, 0) > 0:
                raise ValueError(f"sources[{i}].weight: source {source.name!r} has weight 0 and no positive "
                                 "anneal_to share, so it is never sampled; drop it or give it a weight.")
        if self.max_passes is not None and not self.max_passes > 0:
            raise ValueError(f"max_passes must be > 0, got {self.max_passes}.")
        if not 0 <= self.max_skipped_share <= 1:
            raise ValueError(f"max_skipped_share must be in [0, 1], got {self.max_skipped_share}.")
        if self.sequence_length < 16:
            raise ValueError(f"sequence_length must be >= 16, got {self.sequence_length}.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}.")
        if self.anneal_to is not None and (min(self.anneal_to.values(), default=0) < 0
                                           or sum(self.anneal_to.values()) <= 0):
            raise ValueError("anneal_to: shares must be >= 0 with a positive sum.")
        if self.anneal_to is not None and abs(sum(self.anneal_to.values()) - 1) > 1e-6:
            raise ValueError(f"anneal_to: the target shares must sum to 1 (they are the shares reached), got "
                             f"{sum(self.anneal_to.values()):.6g}.")
        if self.anneal_steps < 0 or self.eval_documents < 0 or self.eval_rows < 0:
            raise ValueError("anneal_steps, eval_documents and eval_rows must be >= 0.")
        if self.anneal_tokens is not None and (self.anneal_tokens < 0 or self.anneal_steps):
            raise ValueError("anneal_tokens must be >= 0, and not given together with anneal_steps.")


@dataclass
class ModelConfig:
    preset: str | None = None  # start from scratch at one of the paper's sizes ...
    init_from: str | None = None  # ... or from a previous phase: its name (under the output root), a folder or a Hub id
    # with a Hub id: the branch, tag or commit to start from (None: main), so a run starts from the same weights
    init_from_revision: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # RexBertConfig fields, e.g. rope_parameters
    attn_implementation: str = "sdpa"

    def check(self) -> None:
        if (self.preset is None) == (self.init_from is None):
            raise ValueError("give exactly one of `preset` (from scratch) or `init_from` (a previous phase).")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r} is unknown; choose one of {sorted(PRESETS)}.")
        revision = self.init_from_revision
        if revision is not None:
            if self.init_from is None or "/" not in self.init_from or Path(self.init_from).expanduser().exists():
                raise ValueError(f"init_from_revision {revision!r} picks a version of a Hub model; init_from "
                                 f"{self.init_from!r} is not a Hub id (owner/name).")
            if not revision.strip() or any(c.isspace() for c in revision) or ".." in revision:
                raise ValueError(f"init_from_revision: {revision!r} is not a branch, tag or commit name.")
        for kind, params in (self.overrides.get("rope_parameters") or {}).items():
            theta = (params or {}).get("rope_theta") if isinstance(params, dict) else None
            if theta is not None and not (isinstance(theta, (int, float)) and theta > 0):
                raise ValueError(f"overrides.rope_parameters.{kind}.rope_theta must be a number > 0, got {theta!r}.")


@dataclass
class OptimizerConfig:
    lr: float | None = None  # None: the preset's value from the paper's Table 2 (training/presets.py)
    # None: Table 2's. Fully decoupled (ModernBERT / Ettin convention): each step multiplies weights by
    # 1 - weight_decay x lr_t / lr, i.e. by 1 - weight_decay at peak LR. Never applied to norms and biases.
    weight_decay: float | None = None
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 0
    decay_steps: int = 0  # 1-sqrt decay over the last `decay_steps`; the rest is stable
    warmup_tokens: int | None = None  # the same two in tokens (steps derived for the world size)
    decay_tokens: int | None = None
    min_lr_ratio: float = 0.0

    def check(self) -> None:
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}.")
        if self.warmup_steps < 0 or self.decay_steps < 0:
            raise ValueError("warmup_steps and decay_steps must be >= 0.")
        for unit in ("warmup", "decay"):
            tokens = getattr(self, f"{unit}_tokens")
            if tokens is not None and (tokens < 0 or getattr(self, f"{unit}_steps")):
                raise ValueError(f"{unit}_tokens must be >= 0, and not given together with {unit}_steps.")


@dataclass
class BatchConfig:
    micro_batch_size: int = 8  # the most packed rows a process runs in one forward pass (a memory limit)
    # token slots per optimizer step, whatever the number of processes: the rows per process and the
    # accumulation follow from it (training/budget.py), so the recipe does not change with the world size
    global_tokens: int | None = None
    # legacy, instead of global_tokens: micro-batches per process per step, so the global batch grows
    # with the processes (None: 1 when global_tokens is unset)
    gradient_accumulation_steps: int | None = None
    warmup_tokens: int = 0  # batch-size warmup: the batch grows to its full size over these tokens ...
    warmup_start_tokens: int | None = None  # ... from this many tokens a step, in steps of this size (global_tokens)

    def check(self) -> None:
        if self.micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {self.micro_batch_size}.")
        if self.gradient_accumulation_steps is not None and self.gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}.")
        if self.warmup_tokens < 0:
            raise ValueError(f"warmup_tokens must be >= 0, got {self.warmup_tokens}.")
        if self.global_tokens is None:
            if self.warmup_start_tokens is not None:
                raise ValueError("warmup_start_tokens sizes the warmup of global_tokens; set global_tokens too.")
            if self.gradient_accumulation_steps is None:  # the old default, as checkpoints written before recorded it
                self.gradient_accumulation_steps = 1
            return
        if self.gradient_accumulation_steps is not None:
            raise ValueError("give global_tokens (the batch in tokens; accumulation is derived for the processes) "
                             "or gradient_accumulation_steps (legacy), not both.")
        if self.global_tokens < 1:
            raise ValueError(f"global_tokens must be >= 1, got {self.global_tokens}.")
        if self.warmup_tokens > 0:
            start = self.warmup_start_tokens
            if start is None:
                raise ValueError("warmup_start_tokens: batch-size warmup (warmup_tokens > 0) needs the batch to "
                                 "start from, in tokens (e.g. global_tokens / 8).")
            stages = round(self.global_tokens / start) if 0 < start <= self.global_tokens else 0
            if stages < 1 or abs(stages * start - self.global_tokens) > 0.01 * self.global_tokens:
                raise ValueError(f"warmup_start_tokens ({start:,}) must divide global_tokens ({self.global_tokens:,}) "
                                 "within 1%: the batch grows in steps of that size.")


@dataclass
class RunConfig:
    max_steps: int | None = None  # the phase's length in optimizer steps (1000 if neither is given) ...
    max_tokens: int | None = None  # ... or in tokens (row slots x sequence length), steps derived
    world_size: int | None = None  # the number of processes the recipe is sized for (the plan's default)
    seed: int = 0
    save_every: int = 500
    keep_last: int = 2
    eval_every: int = 500
    log_every: int = 10
    mixed_precision: str = "auto"  # auto: bf16 on GPU, fp32 on CPU; or no / bf16 / fp16
    # Accelerate trackers (`rexbert train --report-to`); TensorBoard logs go to <phase>-run/logs/<phase>/
    log_with: list[str] = field(default_factory=lambda: ["tensorboard"])
    push_to_hub: str | None = None  # repo id for the exported model

    def check(self) -> None:
        if self.max_steps is not None and self.max_tokens is not None:
            raise ValueError("give max_steps or max_tokens, not both.")
        if self.max_steps is None and self.max_tokens is None:
            self.max_steps = 1000
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}.")
        if self.world_size is not None and self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {self.world_size}.")
        if min(self.max_steps or 1, self.save_every, self.keep_last, self.eval_every, self.log_every) < 1:
            raise ValueError("max_steps, save_every, keep_last, eval_every and log_every must be >= 1.")
        unknown = [name for name in self.log_with if name not in TRACKERS]
        if unknown:
            raise ValueError(f"log_with: {unknown[0]!r} is not an Accelerate tracker; choose from "
                             f"{', '.join(TRACKERS)} (or [] for none).")
        if self.push_to_hub is not None:  # refused now, not after the phase has trained
            from huggingface_hub.utils import HFValidationError, validate_repo_id

            try:
                validate_repo_id(self.push_to_hub)
                if self.push_to_hub.count("/") != 1:
                    raise HFValidationError("a model repo id is owner/name")
            except HFValidationError as error:
                raise ValueError(f"push_to_hub: {self.push_to_hub!r} is not a Hub model repo id (owner/name): "
                                 f"{str(error).splitlines()[0]}") from None
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be auto, no, bf16 or fp16; got {self.mixed_precision!r}.")


@dataclass
class PhaseConfig:
    name: str  # the phase's folder under the output root: phase1, phase2, ...
    phase: int  # seeds the data path together with run.seed
    model: ModelConfig
    data: DataConfig
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    run: RunConfig = field(default_factory=RunConfig)
    source_file: str | None = None  # the YAML file it was read from

    def check(self) -> None:
        if self.phase < 0:
            raise ValueError(f"phase must be >= 0, got {self.phase}.")
        for name in ("model", "data", "optimizer", "batch", "run"):
            try:
                getattr(self, name).check()
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        if self.run.max_steps is not None and self.data.anneal_steps > self.run.max_steps:
            raise ValueError(f"data.anneal_steps ({self.data.anneal_steps}) is longer than the phase "
                             f"(run.max_steps {self.run.max_steps}); the mixture would never reach anneal_to.")
        if self.run.max_tokens is not None and (self.data.anneal_tokens or 0) > self.run.max_tokens:
            raise ValueError(f"data.anneal_tokens ({self.data.anneal_tokens:,}) is longer than the phase "
                             f"(run.max_tokens {self.run.max_tokens:,}); the mixture would never reach anneal_to.")
        if self.run.max_steps is not None and \
                self.optimizer.warmup_steps + self.optimizer.decay_steps > self.run.max_steps:
            raise ValueError(f"optimizer: warmup_steps + decay_steps ({self.optimizer.warmup_steps} + "
                             f"{self.optimizer.decay_steps}) exceed run.max_steps ({self.run.max_steps}).")

    def check_files(self) -> None:
        """Rules that need the file system: Guided MLM needs its mined spans."""
        if self.masking.guided_fraction > 0:
            if self.data.spans is None:
                raise ConfigError(f"{self.name}: masking.guided_fraction > 0 needs data.spans (rexbert mine-spans).")
            if not Path(self.data.spans).is_file():
                raise FileNotFoundError(f"{self.name}: data.spans {self.data.spans} not found; mine it with "
                                        "`rexbert mine-spans`.")

    @property
    def heldout_seed(self) -> int:
        return self.run.seed if self.data.heldout_seed is None else self.data.heldout_seed

    def source_path(self, source: SourceConfig) -> str:
        return source.dataset if source.dataset is not None else str(Path(source.path).expanduser())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- YAML -> dataclasses ---------------------------------------------------------------------------

def read_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The file's mapping with any `extends:` chain merged in (the later file wins); a cycle is an error."""
    path = Path(path)
    if path.resolve() in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise ConfigError(f"{_chain[-1]}: extends: forms a cycle ({cycle}).")
    if not path.is_file():
        raise ConfigError(f"config file {path} not found.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level.")
    _anchor_paths(data, path.parent)
    parent = data.pop("extends", None)
    if parent is not None and not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a file path, got {parent!r}.")
    return merge(read_yaml(path.parent / parent, (*_chain, path.resolve())), data) if parent else data


def _anchor_paths(data: dict, folder: Path) -> None:
    """Makes relative local paths absolute, relative to the file that names them (not the one extending it)."""
    section = data.get("data")
    if not isinstance(section, dict):
        return
    def anchor(value):
        return str(folder / Path(value).expanduser()) if isinstance(value, str) and not Path(value).expanduser() \
            .is_absolute() else value
    if "spans" in section:
        section["spans"] = anchor(section["spans"])
    for source in [*(section.get("sources") or []), *(section.get("add_sources") or [])]:
        if isinstance(source, dict) and "path" in source:
            source["path"] = anchor(source["path"])


def parse_config(data: dict, source_file: str | Path | None = None) -> PhaseConfig:
    """A validated `PhaseConfig` from a mapping; raises `ConfigError` naming the offending field."""
    config = build(PhaseConfig, {**data, "source_file": str(source_file) if source_file else None}, "")
    try:
        config.check()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return config


def load_phase_config(path: str | Path, overrides: dict | None = None) -> PhaseConfig:
    """The phase file at `path` (with its `extends:` chain and `overrides` merged in), validated."""
    data = merge(read_yaml(path), overrides or {})
    try:
        return parse_config(data, path)
    except ConfigError as error:
        raise ConfigError(f"{Path(path).name}: {error}") from None


def phase_files(config: str | Path) -> list[Path]:
    """A phase file, or a curriculum folder's `phase*.yaml` files in phase order."""
    config = Path(config)
    if config.is_dir():
        files = sorted(config.glob("phase*.yaml"))
        if not files:
            raise ConfigError(f"{config} holds no phase*.yaml files.")
        return files
    if not config.is_file():
        raise ConfigError(f"config {config} not found.")
    return [config]
