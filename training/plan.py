"""What a phase or curriculum will do, computed from its configs alone (no data, weights or GPU).

`check_curriculum` applies every cross-field rule of every phase (spans files, starting points,
RoPE thetas that never decrease) before the first phase runs; `describe` reports, per phase, the
steps and tokens (batch-size warmup included), lengths, masking, RoPE theta per layer type, the LR
along the schedule, the weight-decay convention, and the mixture along the phase. The numbers come
from the same functions the loop runs on (`BatchSchedule`, `build_scheduler`, `MixtureSchedule`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from modeling_rexbert import RexBertConfig

from .availability import check_local_sources
from .budget import BatchSchedule
from .capping import phase_mixture
from .config import ConfigError, PhaseConfig
from .optim import build_scheduler
from .phase_model import phase_model_config, rope_thetas


def _starting_config(phase: PhaseConfig, earlier: dict[str, RexBertConfig | None]) -> tuple[RexBertConfig | None, bool]:
    """(config the phase starts from, whether it is known); raises if `init_from` names nothing."""
    name = phase.model.init_from
    if name is None:
        return None, True
    if name in earlier:
        return earlier[name], earlier[name] is not None
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return RexBertConfig.from_pretrained(folder), True
    if "/" in name and not folder.exists():  # a Hub id: its config if cached, else unknown until the run
        start = hub_start_config(phase)
        return start, start is not None
    raise ConfigError(f"{phase.name}: model.init_from {name!r} is neither an earlier phase of this curriculum "
                      f"({sorted(earlier) or 'none'}), a folder with a config.json, nor a Hub id.")


def hub_start_config(phase: PhaseConfig) -> RexBertConfig | None:
    """The config of the Hub model (at `model.init_from_revision`) a phase starts from, read from the local
    cache only, so that a plan needs no network; None when it is not cached (the plan says "unknown")."""
    try:
        return RexBertConfig.from_pretrained(phase.model.init_from, revision=phase.model.init_from_revision,
                                             local_files_only=True)
    except (OSError, ValueError):
        return None


def is_hub_start(phase: PhaseConfig, earlier) -> bool:
    name = phase.model.init_from
    return name is not None and name not in earlier and "/" in name and not Path(name).expanduser().exists()


def model_configs(phases: list[PhaseConfig]) -> list[RexBertConfig | None]:
    """Each phase's model config (None where it starts from a Hub model that is not cached)."""
    configs: dict[str, RexBertConfig | None] = {}
    result = []
    for phase in phases:
        base, known = _starting_config(phase, configs)
        config = phase_model_config(phase, base) if known else None
        configs[phase.name] = config
        result.append(config)
    return result


def _thetas(phase: PhaseConfig, config: RexBertConfig | None) -> dict[str, float | None]:
    if config is not None:
        return rope_thetas(config)
    given = phase.model.overrides.get("rope_parameters") or {}  # an uncached Hub start: what the phase sets
    return {kind: (given.get(kind) or {}).get("rope_theta") for kind in ("full_attention", "sliding_attention")}


def check_curriculum(phases: list[PhaseConfig], files: bool = True) -> list[RexBertConfig | None]:
    """Every cross-field rule of every phase, before any runs (with `files`, also those on files the
    run reads, such as the spans of Guided MLM); returns the phases' model configs."""
    configs = model_configs(phases)
    previous: dict[str, float | None] = {}
    names: set[str] = set()
    for phase, config in zip(phases, configs):
        check_local_sources(phase)  # a plan too: a missing data folder is an error before any model is built
        if files:
            phase.check_files()
        thetas = _thetas(phase, config)
        start = "the previous phase's"
        if is_hub_start(phase, names):  # compared with the start's own config where the cache has it
            start_config = hub_start_config(phase)
            previous = rope_thetas(start_config) if start_config is not None else {}
            start = f"its start's ({phase.model.init_from}, from the local cache)"
        elif phase.model.init_from is not None and phase.model.init_from not in names:  # a model folder
            previous = rope_thetas(RexBertConfig.from_pretrained(Path(phase.model.init_from).expanduser()))
            start = f"its start's ({phase.model.init_from})"
        for kind, theta in thetas.items():
            if theta is not None and theta <= 0:
                raise ConfigError(f"{phase.name}: model.overrides.rope_parameters.{kind}.rope_theta must be > 0, "
                                  f"got {theta:g}.")
            before = previous.get(kind)
            if theta is not None and before is not None and theta < before:
                raise ConfigError(f"{phase.name}: model.overrides.rope_parameters.{kind}.rope_theta: {theta:g} is "
                                  f"below {start} {before:g}; RoPE theta never decreases between phases.")
        length = _max_positions(phase, config)
        if length is not None and phase.data.sequence_length > length:
            raise ConfigError(f"{phase.name}: data.sequence_length ({phase.data.sequence_length:,}) is longer than the "
                              f"model's max_position_embeddings ({length:,}); shorten the rows or raise "
                              "model.overrides.max_position_embeddings.")
        previous = thetas
        names.add(phase.name)
    return configs


def _max_positions(phase: PhaseConfig, config: RexBertConfig | None) -> int | None:
    if config is not None:
        return config.max_position_embeddings
    return phase.model.overrides.get("max_position_embeddings")  # an uncached Hub start: what the phase sets


def describe_phase(phase: PhaseConfig, model: RexBertConfig | None, root: Path | None = None) -> dict:
    """The plan of one resolved phase (see the module docstring); sources' sizes, for `data.max_passes`, from
    the shards under the run root `root` where built, else the config."""
    world = phase.run.world_size or 1
    steps = phase.run.max_steps
    batches = BatchSchedule(phase, world)
    lr, weight_decay = phase.optimizer.lr, phase.optimizer.weight_decay  # set by load_phases where the file has none
    factor = build_scheduler(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), phase).lr_lambdas[0]
    names = [s.name for s in phase.data.sources]
    mixed = phase_mixture(phase, root, world)  # what the sampler draws: the config's mixture, capped
    shares = lambda schedule, step: {n: round(float(p), 4) for n, p in zip(names, schedule.probabilities(step))}  # noqa: E731
    along = lambda schedule, drawn: {"start": shares(schedule, 0), "mid": shares(schedule, steps // 2),  # noqa: E731
                                     "end": shares(schedule, steps - 1),
                                     "tokens": {n: int(round(t)) for n, t in zip(names, drawn)}}
    tokens = batches.tokens_before(steps)
    full = batches.segments[-1]
    lr_at = lambda step: lr * factor(step)  # noqa: E731
    return {
        "name": phase.name,
        "world_size": world,
        "steps": steps,
        "tokens": tokens,
        "sequence_length": phase.data.sequence_length,
        "global_batch": {"rows": world * full.rows, "tokens": full.rows * batches.unit, "warmup_steps": full.step,
                         "start_tokens": batches.segments[0].rows * batches.unit,
                         "fixed_in_tokens": phase.batch.global_tokens is not None,
                         "rows_per_process": full.rows, "accumulation": batches.accumulation(full.step),
                         "micro_batch_rows": max(batches.micro_batches(full.step))},
        "masking_rate": phase.masking.rate,
        "guided_fraction": phase.masking.guided_fraction,
        "rope_theta": _thetas(phase, model),
        "lr": {"peak": lr, "warmup_steps": phase.optimizer.warmup_steps, "decay_steps": phase.optimizer.decay_steps,
               "warmup_end": lr_at(phase.optimizer.warmup_steps), "mid": lr_at(steps // 2), "last_step": lr_at(steps - 1),
               "end": lr_at(steps)},
        "weight_decay": {"value": weight_decay, "decoupled": True, "per_step_at_peak": weight_decay,
                         "coupled_would_be": lr * weight_decay},
        "mixture": {**along(mixed.schedule, mixed.tokens), "anneal_steps": phase.data.anneal_steps,
                    **({"requested": along(mixed.requested, mixed.requested_tokens),
                        "max_passes": dict(zip(names, mixed.max_passes)), "sizes": dict(zip(names, mixed.sizes)),
                        "capped": [n for n, c in zip(names, mixed.capped) if c]} if mixed.active else {})},
        "init_from": phase.model.init_from or f"preset {phase.model.preset}",
        "init_from_revision": phase.model.init_from_revision,
    }


def describe_hub_start(phase: PhaseConfig) -> dict:
    """What the plan knows of a Hub start: its RoPE thetas and length from the local cache, else "unknown"."""
    start = hub_start_config(phase)
    return {"hub_id": phase.model.init_from, "revision": phase.model.init_from_revision or "main",
            "rope_theta": rope_thetas(start) if start is not None else "unknown",
            "max_position_embeddings": start.max_position_embeddings if start is not None else "unknown"}


def _number(value: float | None) -> str:
    if value is None:
        return "unknown"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size * (1 - 5e-5):  # 999.97M prints as 1B, not 1000M
            return f"{value / size:.4g}{unit}"
    return f"{value:.4g}"


def _shares(mixture: dict, name: str, width: int = 6) -> str:
    return " -> ".join(f"{mixture[point][name]:{width}.1%}" for point in ("start", "mid", "end"))


def _passes(value) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else "unknown"


def _asked(mixture: dict, data: dict, name: str) -> str:
    """With a cap configured: what the config asked of a source whose share moved, and why it did not cap one."""
    if "requested" not in mixture:
        return ""
    asked, cap = mixture["requested"], mixture["max_passes"][name]
    moved = name in mixture["capped"] or any(abs(asked[k][name] - mixture[k][name]) > 5e-5 for k in ("start", "end"))
    why = f"capped at {cap:g} passes; " if name in mixture["capped"] else "not capped: size unknown; " \
        if cap is not None and mixture["sizes"][name] is None else ""
    if not moved:
        return f"  ({why.removesuffix('; ')})" if why else ""
    return (f"  ({why}asked {_shares(asked, name, 0)}: {_number(asked['tokens'][name])}, "
            f"{_passes(data.get('passes_requested'))} passes)")


def format_plan(result: dict) -> str:
    """The plan as text, one block per phase."""
    lines = []
    for p in result["phases"]:
        lr, wd, mix, batch = p["lr"], p["weight_decay"], p["mixture"], p["global_batch"]
        theta = ", ".join(f"{k.removesuffix('_attention')} {_number(v)}" for k, v in sorted(p["rope_theta"].items()))
        lines += [
            f"{p['name']} (from {p['init_from']}) on {p['world_size']} process(es): {p['steps']:,} steps, "
            f"{_number(p['tokens'])} tokens ({p['tokens']:,})",
            f"  rows of {p['sequence_length']:,} tokens; global batch {batch['rows']:,} rows "
            f"({_number(batch['tokens'])} tokens{'' if batch['fixed_in_tokens'] else ', grows with the processes'}) "
            f"after {batch['warmup_steps']:,} batch-warmup steps from {_number(batch['start_tokens'])}; per process "
            f"{batch['rows_per_process']:,} rows = accumulation {batch['accumulation']} x micro-batch "
            f"{batch['micro_batch_rows']}",
            f"  masking {p['masking_rate']:.0%}, guided {p['guided_fraction']:.0%} of rows; RoPE theta {theta}",
            f"  lr peak {lr['peak']:.3g} | warmup end (step {lr['warmup_steps']:,}) {lr['warmup_end']:.3g} | mid "
            f"{lr['mid']:.3g} | last step {lr['last_step']:.3g} (decay over {lr['decay_steps']:,} steps)",
            f"  weight decay {wd['value']:g}, fully decoupled: x(1 - {wd['per_step_at_peak']:g}) per step at peak LR "
            f"(coupled would be {wd['coupled_would_be']:.2g})",
        ]
        if "hub_start" in p:
            start = p["hub_start"]
            known = start["rope_theta"] != "unknown"
            theta = "unknown (not in the local cache; offline)" if not known else ", ".join(
                f"{k.removesuffix('_attention')} {_number(v)}" for k, v in sorted(start["rope_theta"].items()))
            lines.append(f"  start {start['hub_id']}@{start['revision']}: RoPE theta {theta}; max_position_embeddings "
                         f"{start['max_position_embeddings']}")
        lines += [f"  warning: {w}" for w in p.get("warnings", [])]
        capping = "; (what the config asked, where max_passes moved it)" if "requested" in mix else ""
        lines.append(f"  mixture (start -> mid -> end; tokens needed of available, from where: passes{capping}):")
        for name in mix["start"]:
            data = p.get("data", {}).get(name, {})
            have = f"{_number(data['available'])} ({data['from']})" if data.get("available") else "unknown"
            lines.append(f"    {name:<16} {_shares(mix, name)}   {_number(mix['tokens'][name])} of {have}: "
                         f"{_passes(data.get('passes'))} passes{_asked(mix, data, name)}")
    if len(result["phases"]) > 1 and result.get("sources"):
        lines.append("all phases, per source (tokens needed of available, from where: passes):")
        for key, entry in result["sources"].items():
            have = f"{_number(entry['available'])} ({entry['from']})" if entry["available"] else "unknown"
            passes = f"{entry['passes']:,.2f}" if isinstance(entry["passes"], float) else "unknown"
            lines.append(f"  {key}: {_number(entry['needed'])} of {have}: {passes} passes")
    lines += [f"warning: {w}" for w in result.get("warnings", [])]
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=1)
