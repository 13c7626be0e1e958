"""RexBERT configuration: ModernBERT's fields and defaults, presets from the paper, strict validation.

`RexBertConfig` inherits every field, default and backward-compatible key of transformers'
`ModernBertConfig` (so a stock ModernBERT / Ettin / released RexBERT `config.json` loads unchanged,
including the 4.48-era `global_rope_theta`, `local_rope_theta` and `global_attn_every_n_layers`),
and adds the size presets of the RexBERT paper (Table 2) and early, field-named validation.

This file travels to the Hub as remote code: it may import only torch and transformers.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import ModernBertConfig

# Paper Table 2. Everything else (vocab, window, thetas, norms) keeps ModernBERT's defaults.
PRESETS: dict[str, dict[str, int]] = {
    "micro": {"num_hidden_layers": 7, "hidden_size": 256, "intermediate_size": 384, "num_attention_heads": 4},
    "mini": {"num_hidden_layers": 19, "hidden_size": 512, "intermediate_size": 768, "num_attention_heads": 8},
    "base": {"num_hidden_layers": 22, "hidden_size": 768, "intermediate_size": 1152, "num_attention_heads": 12},
    "large": {"num_hidden_layers": 28, "hidden_size": 1024, "intermediate_size": 2624, "num_attention_heads": 16},
}

# Paper Table 2 optimiser settings per preset, for the training curriculum's defaults.
PRESET_OPTIMIZER: dict[str, dict[str, float]] = {
    "micro": {"learning_rate": 3e-3, "weight_decay": 3e-4},
    "mini": {"learning_rate": 3e-3, "weight_decay": 3e-4},
    "base": {"learning_rate": 8e-4, "weight_decay": 1e-5},
    "large": {"learning_rate": 5e-4, "weight_decay": 1e-5},
}

ATTENTION_BACKENDS = ("sdpa", "eager", "flash_attention_2")
LAYER_TYPES = ("full_attention", "sliding_attention")


class RexBertConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def check_attn_implementation(value: str | None) -> str:
    """Returns the backend to use for `value` (None means the default, sdpa) or raises naming the field."""
    if value is None:
        return "sdpa"
    if value not in ATTENTION_BACKENDS:
        raise RexBertConfigError(
            f"attn_implementation={value!r} is not supported by RexBERT; choose one of {list(ATTENTION_BACKENDS)}."
        )
    return value


@strict
class RexBertConfig(ModernBertConfig):
    r"""Configuration of a RexBERT encoder (ModernBERT architecture, `model_type="rexbert"`).

    Fields, defaults and legacy keys are ModernBERT's. Differences in behaviour live in the model:
    padding is removed once, and with `labels` the MLM head runs on masked positions only
    (`sparse_prediction` is kept for round-tripping configs; RexBERT always predicts sparsely when
    labels are given, which gives the same loss).

    Example:

    ```python
    >>> from modeling_rexbert import RexBertConfig
    >>> config = RexBertConfig.from_preset("micro")
    >>> config.num_hidden_layers, config.hidden_size
    (7, 256)
    ```
    """

    model_type = "rexbert"

    @classmethod
    def get_config_dict(cls, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # ModernBERT checkpoints (ModernBERT, Ettin, released RexBERT) are RexBERT checkpoints: read them as such.
        config_dict, kwargs = super().get_config_dict(*args, **kwargs)
        if config_dict.get("model_type") == ModernBertConfig.model_type:
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RexBertConfig:
        """A config for one of the paper's sizes (`micro`, `mini`, `base`, `large`), with optional overrides."""
        if name not in PRESETS:
            raise RexBertConfigError(f"preset={name!r} is unknown; choose one of {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def __post_init__(self, **kwargs: Any) -> None:
        # Validated here rather than in `@strict` `validate_*` hooks so that callers get a plain ValueError;
        # sizes first, since ModernBERT's post-init derives layer types and RoPE parameters from them.
        self._check_sizes()
        # A ModernBERT config.json says model_type "modernbert"; once loaded here it is a RexBERT config.
        kwargs.pop("model_type", None)
        super().__post_init__(**kwargs)
        self._check_layers()
        check_attn_implementation(self._attn_implementation)

    def _check_sizes(self) -> None:
        for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                      "max_position_embeddings", "local_attention"):
            value = getattr(self, field)
            if value <= 0:
                raise RexBertConfigError(f"{field} must be a positive integer, got {value}.")
        if self.hidden_size % self.num_attention_heads:
            raise RexBertConfigError(
                f"num_attention_heads={self.num_attention_heads} must divide hidden_size={self.hidden_size}."
            )
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise RexBertConfigError(
                f"hidden_size / num_attention_heads = {self.hidden_size // self.num_attention_heads} must be even "
                "for rotary embeddings."
            )
        if self.local_attention % 2:
            raise RexBertConfigError(
                f"local_attention={self.local_attention} must be even (it is the full window, +-half on each side)."
            )
        for field in ("attention_dropout", "embedding_dropout", "mlp_dropout", "classifier_dropout"):
            value = getattr(self, field)
            if not 0.0 <= value < 1.0:
                raise RexBertConfigError(f"{field} must be in [0, 1), got {value}.")

    def _check_layers(self) -> None:
        unknown = sorted(set(self.layer_types) - set(LAYER_TYPES))
        if unknown:
            raise RexBertConfigError(f"layer_types contains unknown types {unknown}; allowed are {list(LAYER_TYPES)}.")
        if len(self.layer_types) != self.num_hidden_layers:
            raise RexBertConfigError(
                f"layer_types has {len(self.layer_types)} entries but num_hidden_layers={self.num_hidden_layers}."
            )
        for layer_type in set(self.layer_types):
            if "rope_theta" not in (self.rope_parameters or {}).get(layer_type, {}):
                raise RexBertConfigError(f"rope_parameters[{layer_type!r}] needs a rope_theta.")


__all__ = ["RexBertConfig", "RexBertConfigError", "PRESETS", "PRESET_OPTIMIZER", "ATTENTION_BACKENDS"]
