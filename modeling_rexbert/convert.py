"""Convert checkpoints between RexBERT's published format and a plain stock ModernBERT folder.

The weights are identical in both formats (same state-dict keys) and so is the config
(`model_type: modernbert`, transformers 5 and 4.x RoPE keys); the RexBERT format adds `auto_map` and
RexBERT's code, which `trust_remote_code=True` on transformers 5 runs. The plain format has neither.

```python
>>> from modeling_rexbert.convert import convert_checkpoint
>>> convert_checkpoint("rexbert-micro/", "rexbert-micro-modernbert/", to="modernbert")  # doctest: +SKIP
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import transformers
from transformers import AutoTokenizer, ModernBertConfig

from .configuration_rexbert import RexBertConfig, RexBertConfigError
from .modeling_rexbert import (
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
    RexBertModel,
)
from .sentence_transformers_config import write_config
from .tokenization_rexbert import check_vocab_matches, load_tokenizer, save_tokenizer

# Task suffix -> RexBERT class; the ModernBERT class is "ModernBert" + suffix.
TASKS = {
    "Model": RexBertModel,
    "ForMaskedLM": RexBertForMaskedLM,
    "ForSequenceClassification": RexBertForSequenceClassification,
    "ForTokenClassification": RexBertForTokenClassification,
    "ForQuestionAnswering": RexBertForQuestionAnswering,
    "ForMultipleChoice": RexBertForMultipleChoice,
}
TARGETS = ("modernbert", "rexbert")
# Keys a saved config carries that must not be copied into the other format's config.
_FORMAT_KEYS = ("model_type", "architectures", "auto_map", "transformers_version", "global_attn_every_n_layers",
                "global_rope_theta", "local_rope_theta")


def to_modernbert_config(config: RexBertConfig, **overrides) -> ModernBertConfig:
    """The stock transformers config with the same settings (for conversion and parity checks)."""
    settings = {k: v for k, v in config.to_dict().items() if k not in _FORMAT_KEYS}
    return ModernBertConfig(**{**settings, **overrides})


def _task_of(config_dict: dict, source: str | Path) -> str:
    architectures = config_dict.get("architectures") or ["ForMaskedLM"]
    name = architectures[0]
    for suffix in sorted(TASKS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise ValueError(
        f"{source}: architecture {name!r} cannot be converted; supported heads are "
        f"{['RexBert' + t for t in TASKS]} and their ModernBert equivalents."
    )


def _looks_local(source: str | Path) -> bool:
    """Whether `source` names a folder rather than a Hub repo id: an absolute or ./ ~ path, a path deeper than
    owner/name, or one whose first part is a folder here (`rexbert-demo/phase3`)."""
    text = str(source)
    parts = Path(text).parts
    return (isinstance(source, Path) or text.startswith((".", "~", "/")) or "\\" in text or len(parts) != 2
            or Path(parts[0]).is_dir())


def _read_config(source: str | Path) -> dict:
    path = Path(source)
    if not path.exists() and _looks_local(source):
        raise FileNotFoundError(f"{source}: folder not found")
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{source} has no config.json; is it a saved checkpoint folder?")
        return json.loads(config_file.read_text())
    config, _ = RexBertConfig.get_config_dict(str(source))  # a Hub repo id
    return config


def _source_tokenizer(source: str | Path):
    if Path(source).is_dir():  # read as files: an older RexBERT folder would make AutoTokenizer ask about its code
        return load_tokenizer(source) if (Path(source) / "tokenizer.json").is_file() else load_tokenizer()
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError):  # no tokenizer with the checkpoint: RexBERT's ids are ModernBERT's
        return load_tokenizer()


def convert_checkpoint(source: str | Path, destination: str | Path, to: Literal["modernbert", "rexbert"]) -> Path:
    """Writes `source` (a folder or Hub id, either format) to `destination` in format `to`.

    `to="modernbert"`: a folder that stock `transformers.AutoModel*` loads without remote code.
    `to="rexbert"`: a folder with RexBERT's code and `auto_map` (`trust_remote_code=True`).
    The tokenizer of the source is kept (or RexBERT's bundled one if the source has none).
    """
    if to not in TARGETS:
        raise ValueError(f"to={to!r} is not a target format; choose one of {list(TARGETS)}.")
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise FileExistsError(f"{destination} exists and is not empty; choose a new output folder.")
    config_dict = _read_config(source)
    task = _task_of(config_dict, source)
    model = TASKS[task].from_pretrained(str(source))
    tokenizer = _source_tokenizer(source)
    check_vocab_matches(tokenizer, model.config.vocab_size)

    legacy = model.config.legacy_keys()
    if to == "modernbert" and legacy is None:
        raise RexBertConfigError(
            f"{source}: rope_parameters={model.config.rope_parameters} / layer_types={model.config.layer_types} "
            "have no transformers 4.x equivalent (global_rope_theta, local_rope_theta, global_attn_every_n_layers), "
            "so a stock ModernBERT folder would load with other RoPE there; keep it in the rexbert format."
        )

    destination.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tokenizer, destination)
    if to == "rexbert":
        model.save_pretrained(str(destination))
        return destination

    stock_config = to_modernbert_config(model.config, architectures=[f"ModernBert{task}"])
    stock_class = getattr(transformers, f"ModernBert{task}")
    stock_model = stock_class(stock_config)
    stock_model.load_state_dict(model.state_dict(), strict=True)
    stock_model.save_pretrained(str(destination))
    # transformers 5 writes only `rope_parameters`; 4.x reads only these keys and would use its defaults.
    config_file = destination / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **legacy}, indent=2, sort_keys=True) + "\n")
    write_config(destination)  # stock save_pretrained writes no sentence-transformers files
    return destination


__all__ = ["convert_checkpoint", "to_modernbert_config", "TARGETS"]
