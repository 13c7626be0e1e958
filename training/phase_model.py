"""A phase's model config from its starting point and `model.overrides`, without loading weights.

Shared by the loop (which then loads the weights) and the plan (which only reads the config).
"""

from __future__ import annotations

from modeling_rexbert import RexBertConfig

from .config import ConfigError, PhaseConfig, merge


def phase_model_config(config: PhaseConfig, base: RexBertConfig | None) -> RexBertConfig:
    """`base` (the config the phase starts from; None: `model.preset`) with `model.overrides` applied;
    mappings such as `rope_parameters` merge into the existing value."""
    overrides = config.model.overrides
    reference = base if base is not None else RexBertConfig.from_preset(config.model.preset)
    unknown = sorted(k for k in overrides if not hasattr(reference, k))
    if unknown:
        raise ConfigError(f"{config.name}: model.overrides: unknown RexBertConfig field(s) {unknown}.")
    merged = {k: merge(getattr(reference, k), v) if isinstance(v, dict) and isinstance(getattr(reference, k), dict)
              else v for k, v in overrides.items()}
    if base is None:  # from the preset, so that derived fields (layer_types) follow the overrides
        return RexBertConfig.from_preset(config.model.preset, **merged)
    return RexBertConfig.from_dict({**base.to_dict(), **merged})


def rope_thetas(model_config: RexBertConfig) -> dict[str, float]:
    """RoPE theta per layer type, as the model will use it."""
    return {kind: float(params["rope_theta"]) for kind, params in (model_config.rope_parameters or {}).items()}
