"""Runs a curriculum: the phase files of a folder in order, each from the previous phase's export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .availability import curriculum_totals, describe_data
from .budget import launch_world_size, resolve
from .config import ConfigError, PhaseConfig, load_phase_config, phase_files
from .overrides import phase_overrides
from .plan import is_hub_start, check_curriculum, describe_hub_start, describe_phase
from .presets import fill_optimizer_defaults


def shorten(config: PhaseConfig, max_steps: int) -> PhaseConfig:
    """The same phase over `max_steps` steps, with warmup and decay scaled to keep the schedule's shape."""
    scale = max_steps / config.run.max_steps
    config.optimizer.warmup_steps = round(config.optimizer.warmup_steps * scale)
    config.optimizer.decay_steps = round(config.optimizer.decay_steps * scale)
    config.data.anneal_steps = round(config.data.anneal_steps * scale)
    config.run.max_steps = max_steps
    config.run.save_every = min(config.run.save_every, max_steps)
    config.run.eval_every = min(config.run.eval_every, max_steps)
    config.check()
    return config


def load_phases(config: str | Path, max_steps: int | None = None, overrides: dict | None = None,
                world_size: int | None = None, default_world_size: int | None = None) -> list[PhaseConfig]:
    """Every phase of `config` (a file or a folder of phase*.yaml), validated, with token budgets
    resolved to steps for `world_size` processes (default: `default_world_size` or the phase's
    `run.world_size` for a plan, else the processes of this launch); an unset LR or weight decay
    is Table 2's for the phase's preset. `overrides` (`training/overrides.py`) merge over every phase,
    those under a phase file's name (`{"phase2": {...}}`) over that phase only."""
    phases = []
    files = phase_files(config)
    for path in files:
        phase = load_phase_config(path, phase_overrides(overrides, path.stem, [f.stem for f in files]))
        if world_size is not None:
            world = world_size
        elif default_world_size is not None:
            world = phase.run.world_size or default_world_size
        else:
            world = launch_world_size()
        phase = resolve(phase, world)
        phases.append(shorten(phase, max_steps) if max_steps is not None else phase)
    return fill_optimizer_defaults(phases)


def train_curriculum(config: str | Path, output_dir: str | Path, max_steps: int | None = None, resume: bool = False,
                     stop_after: int | None = None, progress: bool = True, overwrite: bool = False,
                     overrides: dict | None = None) -> list[dict]:
    """`rexbert train`: loads the phases of `config` and runs them (`run_curriculum`); with `resume`, there must
    be a checkpoint or a finished phase to continue from (a mistyped folder is refused, not trained from step 0)."""
    phases = load_phases(config, max_steps, overrides)
    if resume:
        check_something_to_resume(output_dir, [phase.name for phase in phases])
    return run_curriculum(phases, output_dir, resume=resume, stop_after=stop_after, progress=progress,
                          overwrite=overwrite, config_file=config)


def run_curriculum(phases: list[PhaseConfig], output_dir: str | Path, resume: bool = False,
                   stop_after: int | None = None, progress: bool = True, overwrite: bool = False,
                   config_file: str | Path | None = None,
                   after_phase: Callable[[PhaseConfig, dict], None] | None = None) -> list[dict]:
    """Trains `phases` in turn into `output_dir`, the one way every caller (`rexbert train`, `rexbert demo`,
    the ablation benchmark) runs a curriculum: every phase's cross-field rules (`check_curriculum`), its
    trackers and its sources' shards are checked before the first phase runs. With `resume`, finished phases
    return their summaries and the first unfinished one continues from its latest checkpoint. `after_phase`
    is called with each finished phase and its summary; a stopped phase (`stop_after`) ends the run."""
    from .loop import train_phase
    from .source_shards import ensure_shards

    check_curriculum(phases)  # every phase's cross-field rules, before the first one runs
    check_trackers(phases)
    ensure_shards(phases, Path(output_dir), config_file=config_file)  # every source's shards, before any model
    summaries = []
    for phase in phases:
        summary = train_phase(phase, output_dir, resume=resume, stop_after=stop_after, progress=progress,
                              overwrite=overwrite)
        summaries.append(summary)
        if "stopped_at" in summary:
            break
        if after_phase is not None:
            after_phase(phase, summary)
    return summaries


def check_trackers(phases: list[PhaseConfig]) -> None:
    """Refuses a `run.log_with` tracker whose package is missing (Accelerate would skip it without a word)."""
    from accelerate.tracking import get_available_trackers

    available = {str(tracker) for tracker in get_available_trackers()}
    for phase in phases:
        missing = [name for name in phase.run.log_with if name not in available]
        if missing:
            raise ConfigError(f"{phase.name}: run.log_with: {missing[0]} is not installed (pip install {missing[0]}); "
                              "--report-to none logs to metrics.jsonl only.")


def check_something_to_resume(output_dir: str | Path, phases: list[str]) -> None:
    """Refuses `--resume` where no phase has a checkpoint or a finished summary."""
    from .checkpoints import list_checkpoints
    from .loop import SUMMARY_FILE, run_dir

    for name in phases:
        state = run_dir(output_dir, name)
        if (state / SUMMARY_FILE).is_file() or list_checkpoints(state / "checkpoints"):
            return
    where = run_dir(output_dir, phases[0]) / "checkpoints"
    raise FileNotFoundError(f"nothing to resume in {output_dir}: no checkpoint or finished phase (looked for "
                            f"{where}); check --output-dir, or run without --resume to start from step 0.")


def list_refs_command(repo: str) -> str:
    """The one-liner that lists a Hub model's tags and branches, to pick `model.init_from_revision` from."""
    return (f"python -c \"from huggingface_hub import list_repo_refs; r = list_repo_refs('{repo}'); "
            "print(sorted(t.name for t in r.tags), [b.name for b in r.branches])\"")


def plan_curriculum(config: str | Path, world_size: int | None = None, max_steps: int | None = None,
                    output_dir: str | Path | None = None, overrides: dict | None = None) -> dict:
    """`{"phases": [...]}` for a phase file or curriculum folder at `world_size` processes (default:
    each phase's `run.world_size`, else 1); every rule is checked first. With `output_dir` (the run
    root), sources whose token shards are built there report their real size."""
    phases = load_phases(config, max_steps, overrides, world_size=world_size, default_world_size=1)
    configs = check_curriculum(phases, files=False)  # a plan needs no data; missing spans become warnings
    described, names = [], set()
    for phase, model in zip(phases, configs):
        root = Path(output_dir) if output_dir is not None else None
        plan = describe_phase(phase, model, root)
        warnings = []
        if is_hub_start(phase, names):
            plan["hub_start"] = describe_hub_start(phase)
            if phase.model.init_from_revision is None:
                warnings.append(f"model.init_from_revision is unset: {phase.model.init_from} starts from whatever its "
                                "main branch holds on the day of the run; pin a tag or commit (list them with: "
                                f"{list_refs_command(phase.model.init_from)})")
        names.add(phase.name)
        try:
            phase.check_files()
        except (ValueError, OSError) as error:
            warnings.append(f"{error} (needed before this phase runs)")
        requested = plan["mixture"].get("requested")
        plan["data"], data_warnings = describe_data(phase, plan["mixture"]["tokens"], root,
                                                    requested["tokens"] if requested else None)
        plan["warnings"] = warnings + data_warnings
        described.append(plan)
    sources, warnings = curriculum_totals(phases, described)
    return {"phases": described, "sources": sources, "warnings": warnings}
