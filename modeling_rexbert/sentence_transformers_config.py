"""The sentence-transformers files of a published folder, so that `SentenceTransformer(folder)` loads it as
it is meant to be used instead of guessing (sentence-transformers otherwise builds a default model and
logs "No modules.json found").

Written in the format every sentence-transformers release since 2.x reads (`sentence_transformers.models.*`
module types; 6.x maps them to its own): a Transformer module at the folder's root, mean pooling over the
real tokens (special tokens included: what sentence-transformers does for a ModernBERT folder without a
config, and what `rexbert embed` and `rexbert eval retrieval` compute), `max_seq_length` the model's
`max_position_embeddings`, and prompts only when the model was trained with them.

Pure JSON, no torch: `save_pretrained`, `rexbert convert` and `rexbert card push` all call
`write_config`, which leaves a folder that already has a `modules.json` (a fine-tuned
sentence-transformers model saves its own) untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

MODULES_FILE = "modules.json"
POOLING_FOLDER = "1_Pooling"
POOLING_MODES = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}


def _dump(path: Path, value: dict | list) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def write_config(folder: str | Path, hidden_size: int | None = None,
                                       max_seq_length: int | None = None, pooling: str = "mean",
                                       prompts: dict[str, str] | None = None, overwrite: bool = False) -> list[str]:
    """Writes modules.json, sentence_bert_config.json, 1_Pooling/config.json and config_sentence_transformers.json
    into `folder` (a saved transformers model); `hidden_size` and `max_seq_length` default to its config.json
    (`hidden_size`, `max_position_embeddings`). Returns the files written (none if the folder already has a
    modules.json and not `overwrite`)."""
    folder = Path(folder)
    if (folder / MODULES_FILE).exists() and not overwrite:
        return []
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {sorted(POOLING_MODES)}, not {pooling!r}")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    hidden_size = hidden_size or config["hidden_size"]
    max_seq_length = max_seq_length or config.get("max_position_embeddings") or 512
    (folder / POOLING_FOLDER).mkdir(exist_ok=True)
    files = {
        MODULES_FILE: [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": POOLING_FOLDER, "type": "sentence_transformers.models.Pooling"},
        ],
        "sentence_bert_config.json": {"max_seq_length": int(max_seq_length), "do_lower_case": False},
        f"{POOLING_FOLDER}/config.json": {
            "word_embedding_dimension": int(hidden_size),
            **{key: mode == pooling for mode, key in POOLING_MODES.items()},
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": dict(prompts or {}),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
    for name, value in files.items():
        _dump(folder / name, value)
    return list(files)


__all__ = ["write_config"]
