"""The paper's Table 2 optimiser settings per model preset, and the preset each phase trains.

A phase from scratch names its preset (`model.preset`); a phase that starts from an earlier phase of
the same curriculum trains that phase's preset; `model.overrides` that change a preset's sizes leave
no preset. Where a phase's config leaves `optimizer.lr` or `optimizer.weight_decay` unset, its
preset's Table 2 value fills it in; a phase without a preset must set both. The sizes of a loaded
model are never mapped back to a preset.
"""

from __future__ import annotations

from modeling_rexbert import PRESETS

from .config import ConfigError, PhaseConfig

# Paper Table 2 optimiser settings per preset (weight decay fully decoupled, see optim.py).
PRESET_OPTIMIZER: dict[str, dict[str, float]] = {
    "micro": {"learning_rate": 3e-3, "weight_decay": 3e-4},
    "mini": {"learning_rate": 3e-3, "weight_decay": 3e-4},
    "base": {"learning_rate": 8e-4, "weight_decay": 1e-5},
    "large": {"learning_rate": 5e-4, "weight_decay": 1e-5},
}


def phase_presets(phases: list[PhaseConfig]) -> list[str | None]:
    """The preset each phase's model has, from the configs alone (None: a custom size, or a start
    outside `phases` such as a folder or a Hub model)."""
    presets: dict[str, str | None] = {}
    for phase in phases:
        preset = phase.model.preset or presets.get(phase.model.init_from)
        if preset is not None and any(phase.model.overrides.get(k, v) != v for k, v in PRESETS[preset].items()):
            preset = None
        presets[phase.name] = preset
    return [presets[phase.name] for phase in phases]


def fill_optimizer_defaults(phases: list[PhaseConfig]) -> list[PhaseConfig]:
    """`phases` (changed in place) with the `optimizer.lr` and `optimizer.weight_decay` they leave
    unset taken from Table 2 for their preset; raises `ConfigError` for a phase left without them."""
    for phase, preset in zip(phases, phase_presets(phases)):
        optimizer = phase.optimizer
        if preset is not None:
            defaults = PRESET_OPTIMIZER[preset]
            optimizer.lr = defaults["learning_rate"] if optimizer.lr is None else optimizer.lr
            optimizer.weight_decay = defaults["weight_decay"] if optimizer.weight_decay is None \
                else optimizer.weight_decay
        if optimizer.lr is None or optimizer.weight_decay is None:
            start = f"starts from {phase.model.init_from!r}" if phase.model.init_from else "changes its preset's sizes"
            raise ConfigError(f"{phase.name}: the model {start}, so it has no preset of this curriculum "
                              f"({sorted(PRESETS)}) to take Table 2's values from; set optimizer.lr and "
                              "optimizer.weight_decay.")
    return phases
