"""Which token shards a curriculum needs, how much of each source, and whether they are built.

A source is tokenized once into `<output root>/tokens/<source>-<key>/` (`cache_folder`), shared by every
phase that reads it. How much of it: a small local source (files under `IN_PROCESS_MAX_BYTES`) whole,
in the training process (the tokenization job as one local task: the same code as `rexbert tokenize`);
any other source (a Hub id, large local data) up to its cap, built beforehand by `rexbert tokenize`:
the tokens the plan draws from it over every phase that reads it (`tokens_needed`, from the plan's own
`BatchSchedule` and mixture), plus `HEADROOM`, and at least ten times its held-out documents.
`rexbert train` checks every source of every phase before building anything (`ensure_shards`) and stops
at once, naming the source and the command that builds its shards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .availability import cache_folder
from .capping import phase_mixture
from .config import PhaseConfig, SourceConfig
from .shards import ShardError, finished_manifest, local_files, task_manifests
from .tokenize_job import SourceSpec, covers, run_tokenize_job

# Slots drawn over-count the document tokens a plan needs (each row also holds [CLS]/[SEP] and padding);
# the 10% on top covers the held-out documents (at most a tenth of a source's documents) and rounding.
HEADROOM = 0.10
# local sources up to this size are tokenized whole, in the training process (about a minute on one core)
IN_PROCESS_MAX_BYTES = 256 * 2**20


class MissingShardsError(FileNotFoundError):
    """A source's shards are not built (or not far enough) for the plan: names the command that builds them."""


class SetAsideError(ValueError):
    """More records were set aside than the allowed share."""


@dataclass
class SourceNeed:
    name: str
    phase: PhaseConfig  # the first phase that reads it (its paths, split, column)
    source: SourceConfig
    folder: Path
    tokens: float = 0.0  # token slots drawn over every phase that reads it
    eval_documents: int = 0

    @property
    def spec(self) -> SourceSpec:
        return SourceSpec(self.phase.source_path(self.source), self.source.text_column, self.source.split,
                          self.source.config)

    @property
    def cap_tokens(self) -> int | None:
        """None: tokenized whole (a small local source)."""
        return None if in_process(self.phase, self.source) else math.ceil(self.tokens * (1 + HEADROOM))

    @property
    def min_documents(self) -> int:
        return 10 * self.eval_documents  # so that held-out selection gets all of them (it takes at most a tenth)


def in_process(config: PhaseConfig, source: SourceConfig) -> bool:
    """Whether the source is local and small enough to tokenize whole inside `rexbert train`."""
    if source.dataset is not None:
        return False
    path = Path(config.source_path(source))
    files = local_files(path) or ([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                                  if path.is_dir() else [])
    return sum(f.stat().st_size for f in files) <= IN_PROCESS_MAX_BYTES


def tokens_needed(phases: list[PhaseConfig], root: Path) -> dict[Path, SourceNeed]:
    """Per shard folder: the token slots every phase (resolved to steps) draws from that source, summed. With
    `data.max_passes`, a source tokenized whole (`in_process`) moves the others' shares once its size is known:
    build those first, then ask again (`ensure_shards` and `rexbert tokenize` do)."""

    needs: dict[Path, SourceNeed] = {}
    for phase in phases:  # the plan's mixture, capped by data.max_passes against the sizes known under `root`
        for source, drawn in zip(phase.data.sources, phase_mixture(phase, root).tokens):
            folder = cache_folder(root, phase, source)
            need = needs.setdefault(folder, SourceNeed(source.name, phase, source, folder))
            need.tokens += float(drawn)
            need.eval_documents = max(need.eval_documents, phase.data.eval_documents)
    return needs


def tokenize_command(config: str | Path, root: Path) -> str:
    return f"rexbert tokenize --config {config} --output-dir {root}"


def _state(folder: Path) -> str:
    tasks = task_manifests(folder) if folder.is_dir() else []
    if not tasks:
        return "are not built"
    done = sum(1 for t in tasks if t is not None and t["done"])
    return f"are incomplete ({done} of {len(tasks)} tasks done)"


def ensure_shards(phases: list[PhaseConfig], root: Path, tokenizer=None, config_file: str | Path | None = None,
                  progress: bool = True, only: SourceConfig | None = None) -> dict[Path, SourceNeed]:
    """Checks every source of `phases` (and, given a tokenizer, builds the small local ones in this
    process); a source whose shards are missing, incomplete or capped below the plan raises
    `MissingShardsError` naming it and the command that builds them. `only`: that source alone."""
    needs, built = tokens_needed(phases, root), False
    for folder, need in needs.items():
        if only is not None and need.source is not only:
            continue
        path = need.phase.source_path(need.source)
        if need.source.dataset is None and not Path(path).exists():
            raise FileNotFoundError(f"source {need.name!r}: {path} does not exist.")
        if in_process(need.phase, need.source) and tokenizer is not None:
            run_tokenize_job(need.spec, tokenizer, folder, progress=progress)
            built = True
    if built:  # the sizes of the sources just built can move the others' shares (data.max_passes)
        needs = tokens_needed(phases, root)
    for folder, need in needs.items():
        if (only is not None and need.source is not only) or in_process(need.phase, need.source):
            continue
        path = need.phase.source_path(need.source)
        try:
            manifest = finished_manifest(folder) if folder.is_dir() else None
        except ShardError:
            manifest = None
        command = tokenize_command(config_file or need.phase.source_file, root)
        if manifest is None:
            raise MissingShardsError(f"source {need.name!r} ({path}): its token shards in {folder} {_state(folder)}; "
                                     f"build them first with: {command}")
        if not covers(manifest, need.cap_tokens):
            raise MissingShardsError(
                f"source {need.name!r} ({path}): its token shards in {folder} hold {manifest['tokens']:,} tokens, "
                f"capped below the {need.cap_tokens:,} this plan needs; extend them with: {command}")
    return needs


def set_aside_summary(name: str, manifest: dict) -> str | None:
    skipped = sum(manifest["skipped"].values())
    if not skipped:
        return None
    records = manifest["documents"] + skipped
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(manifest["skipped"].items()))
    where = manifest.get("set_aside_file")
    return (f"source {name!r}: set aside {skipped:,} of {records:,} records ({skipped / records:.1%}): {reasons}"
            + (f"; file:line list in {where}" if where else ""))


def check_set_aside(name: str, manifest: dict, max_share: float, field: str = "data.max_skipped_share") -> None:
    """Raises `SetAsideError` when more than `max_share` of the records read were set aside."""
    skipped = sum(manifest["skipped"].values())
    records = manifest["documents"] + skipped
    if records and skipped / records > max_share:
        raise SetAsideError(f"{set_aside_summary(name, manifest)}: more than the {max_share:.0%} allowed by {field}. "
                            f"Fix the input, or raise {field} to go on with the rest.")

