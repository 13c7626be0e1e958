"""`rexbert tokenize`: every source of a curriculum tokenized as a datatrove job, up to its cap
(`training.source_shards`), with the tokenizer `rexbert train` will use, then checked for records set aside."""

from __future__ import annotations

import json
from pathlib import Path

from .config import PhaseConfig
from .source_shards import SourceNeed, check_set_aside, tokens_needed
from .tokenize_job import run_tokenize_job


def tokenizer_for(phase: PhaseConfig, phases: list[PhaseConfig], root: Path):
    """The tokenizer `rexbert train` will use for `phase`; a phase starting from an earlier phase of the
    curriculum (not trained yet) uses that phase's."""
    from .loop import phase_tokenizer

    by_name = {p.name: p for p in phases}
    while phase.model.init_from in by_name and by_name[phase.model.init_from] is not phase:
        phase = by_name[phase.model.init_from]
    return phase_tokenizer(phase, root)


def _whole_sources_first(phases: list[PhaseConfig], root: Path):
    """(folder, need) per source: those read whole first, then the capped ones, their needs computed after the
    whole ones are built (their sizes can move the capped sources' shares through data.max_passes)."""
    whole = {folder: need for folder, need in tokens_needed(phases, root).items() if need.cap_tokens is None}
    yield from whole.items()
    yield from ((folder, need) for folder, need in tokens_needed(phases, root).items() if folder not in whole)


def tokenize_curriculum(phases: list[PhaseConfig], root: Path, *, executor: str = "local", tasks: int | None = None,
                        workers: int = 1, max_skipped_share: float | None = None, progress: bool = True,
                        **executor_settings) -> list[tuple[SourceNeed, dict | None]]:
    """`rexbert tokenize`: every source of `phases` tokenized as a job (up to its cap; small local sources
    whole, in `tasks` tasks all the same), then checked for set-aside records. Returns (need, manifest)
    per source (manifest None where Slurm only submitted the job)."""
    built = []
    for folder, need in _whole_sources_first(phases, root):
        path = need.phase.source_path(need.source)
        if need.source.dataset is None and not Path(path).exists():
            raise FileNotFoundError(f"source {need.name!r}: {path} does not exist.")
        manifest = run_tokenize_job(need.spec, tokenizer_for(need.phase, phases, root), folder,
                                    cap_tokens=need.cap_tokens, min_documents=need.min_documents, tasks=tasks,
                                    executor=executor, workers=workers, progress=progress, **executor_settings)
        if manifest is not None:
            allowed = need.phase.data.max_skipped_share if max_skipped_share is None else max_skipped_share
            check_set_aside(need.name, manifest, allowed,
                            "data.max_skipped_share" if max_skipped_share is None else "--max-skipped-share")
            if max_skipped_share is not None:  # what the user accepted here, `rexbert train` accepts too
                manifest["max_skipped_share"] = max_skipped_share
                (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
        built.append((need, manifest))
    return built
