"""RexBERT configuration: ModernBERT's fields and defaults, presets from the paper, strict validation.

`RexBertConfig` inherits every field, default and backward-compatible key of transformers'
`ModernBertConfig` (so a stock ModernBERT / Ettin / released RexBERT `config.json` loads unchanged,
including the 4.48-era `global_rope_theta`, `local_rope_theta` and `global_attn_every_n_layers`),
and adds the size presets of the RexBERT paper (Table 2) and early, field-named validation.
Training settings (Table 2's optimiser values) live in `training/presets.py`, not here.

This file travels to the Hub as remote code: it may import only torch, transformers and
huggingface_hub (a dependency of transformers, whose `@strict` its configs use).
"""

from __future__ import annotations

import json
from typing import Any

import transformers
from huggingface_hub.dataclasses import strict
from transformers import ModernBertConfig

# The remote code uses transformers 5 APIs (typed configs, `transformers.initialization`). On older
# versions it stops here, before anything half-loads, and says what works instead.
MIN_TRANSFORMERS = "5.23"
if tuple(int(part) for part in transformers.__version__.split(".")[:2]) < (5, 23):
    raise ImportError(
        f"RexBERT's remote code needs transformers>={MIN_TRANSFORMERS}; this is transformers {transformers.__version__}. "
        "Load the folder without trust_remote_code=True instead: it is a stock ModernBERT checkpoint "
        "(model_type 'modernbert') and transformers' own ModernBERT gives the same outputs. "
        f"Or upgrade: pip install -U 'transformers>={MIN_TRANSFORMERS}'."
    )

# Paper Table 2. Everything else (vocab, window, thetas, norms) keeps ModernBERT's defaults.
PRESETS: dict[str, dict[str, int]] = {
    "micro": {"num_hidden_layers": 7, "hidden_size": 256, "intermediate_size": 384, "num_attention_heads": 4},
    "mini": {"num_hidden_layers": 19, "hidden_size": 512, "intermediate_size": 768, "num_attention_heads": 8},
    "base": {"num_hidden_layers": 22, "hidden_size": 768, "intermediate_size": 1152, "num_attention_heads": 12},
    "large": {"num_hidden_layers": 28, "hidden_size": 1024, "intermediate_size": 2624, "num_attention_heads": 16},
}

ATTENTION_BACKENDS = ("sdpa", "eager", "flash_attention_2")
LAYER_TYPES = ("full_attention", "sliding_attention")
# model_type values a RexBERT config reads: its own, and the stock ModernBERT type it is published as.
READABLE_MODEL_TYPES = ("rexbert", "modernbert")
# transformers 4.x keys for the RoPE thetas and the layer layout -> (layer type, rope_parameters key).
LEGACY_THETAS = {"global_rope_theta": "full_attention", "local_rope_theta": "sliding_attention"}


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
    padding is removed once, and `sparse_prediction=True` (or `forward(..., sparse_prediction=True)`, as
    the training loop asks) runs the MLM head on the labelled positions only, as in ModernBERT.

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
        # ModernBERT checkpoints (ModernBERT, Ettin, released RexBERT, RexBERT's own published folders)
        # are RexBERT checkpoints: read them as such. Any other architecture is an error, not a guess.
        config_dict, kwargs = super().get_config_dict(*args, **kwargs)
        model_type = config_dict.get("model_type")
        if model_type not in READABLE_MODEL_TYPES:
            raise RexBertConfigError(
                f"model_type={model_type!r} in {args[0] if args else 'the config'} is not a ModernBERT-architecture "
                f"checkpoint; RexBERT reads model_type {list(READABLE_MODEL_TYPES)}."
            )
        return {**config_dict, "model_type": cls.model_type}, kwargs

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
        self._read_legacy_keys(kwargs)
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

    def _read_legacy_keys(self, kwargs: dict[str, Any]) -> None:
        """transformers 4.x keys (`global_rope_theta`, `local_rope_theta`, `global_attn_every_n_layers`) are
        read; where the transformers 5 fields say something else the config is ambiguous, which is an error."""
        every_n = kwargs.pop("global_attn_every_n_layers", None)
        if every_n is not None:
            if not isinstance(every_n, int) or every_n <= 0:
                raise RexBertConfigError(f"global_attn_every_n_layers must be a positive integer, got {every_n!r}.")
            derived = [LAYER_TYPES[bool(i % every_n)] for i in range(self.num_hidden_layers)]
            if self.layer_types is None:
                self.layer_types = derived
            elif list(self.layer_types) != derived:
                raise RexBertConfigError(
                    f"global_attn_every_n_layers={every_n} disagrees with layer_types={list(self.layer_types)}; "
                    "transformers 4.x and 5.x would build different models from this config."
                )
        for key, layer_type in LEGACY_THETAS.items():
            legacy = kwargs.get(key)
            current = ((self.rope_parameters or {}).get(layer_type) or {}).get("rope_theta")
            if legacy is not None and current is not None and float(legacy) != float(current):
                raise RexBertConfigError(
                    f"{key}={legacy} disagrees with rope_parameters[{layer_type!r}]['rope_theta']={current}; "
                    "transformers 4.x reads the first and 5.x the second."
                )

    def legacy_keys(self) -> dict[str, Any] | None:
        """The transformers 4.x keys that describe this config exactly, or None when 4.x cannot express it
        (a RoPE scaling type other than `default`, or global layers not on every n-th layer)."""
        if any(self.rope_parameters[t].get("rope_type", "default") != "default" for t in LAYER_TYPES):
            return None
        every_n = next((n for n in range(1, self.num_hidden_layers + 1)
                        if list(self.layer_types) == [LAYER_TYPES[bool(i % n)] for i in range(self.num_hidden_layers)]),
                       None)
        if every_n is None:
            return None
        return {"global_attn_every_n_layers": every_n,
                **{key: self.rope_parameters[t]["rope_theta"] for key, t in LEGACY_THETAS.items()}}

    def to_json_string(self, use_diff: bool = True) -> str:
        """The saved form (`config.json`): stock ModernBERT (`model_type: modernbert`) with both the
        transformers 5 fields and the 4.x keys, so every reader builds the same model. A config 4.x cannot
        express keeps `model_type: rexbert`: stock readers then refuse it instead of loading other RoPE.
        `to_dict` stays RexBERT's own view, so that dict round trips never carry two copies of a value."""
        output = json.loads(super().to_json_string(use_diff=use_diff))
        legacy = self.legacy_keys()
        if legacy is not None:
            output.update(legacy, model_type=ModernBertConfig.model_type)
            # Serving tools (vLLM, TEI) pick their implementation from the stock class names.
            if output.get("architectures"):
                output["architectures"] = [name.replace("RexBert", "ModernBert", 1) for name in output["architectures"]]
        return json.dumps(output, indent=2, sort_keys=True) + "\n"

    # transformers refuses `output_attentions=True` unless the attention is eager; RexBERT computes the maps
    # eagerly for the calls that ask for them, whatever the backend, so the request is always honoured.
    @property
    def output_attentions(self) -> bool:
        return self._output_attentions

    @output_attentions.setter
    def output_attentions(self, value: bool) -> None:
        self._output_attentions = value

    def validate_output_attentions(self) -> None:
        pass

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


__all__ = ["RexBertConfig", "RexBertConfigError", "MIN_TRANSFORMERS", "PRESETS", "ATTENTION_BACKENDS"]
