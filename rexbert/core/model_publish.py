"""The one way a model folder goes to the Hub: `rexbert card push` and training's `run.push_to_hub` alike.

Only the files a published model needs are uploaded (an allowlist: a new kind of file is never sent by
accident), and a text file that carries this machine's paths is refused before anything is sent.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from .hub_upload import upload_folder_to_hub

# What a published model folder may hold. Everything else (checkpoints/, logs/, optimizer and RNG state,
# phase_config.json, metrics, pickles) stays local.
UPLOAD_ALLOWLIST = (
    "*.safetensors", "model.safetensors.index.json",  # weights (never pickles)
    "config.json", "generation_config.json",  # config
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "chat_template.jinja",  # tokenizer
    "*.py",  # remote code (auto_map)
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",  # sentence-transformers
    "README.md", "LICENSE", "*.png", "*.jpg", "*.jpeg", "*.svg",  # card and its images
)
ST_MODULE_FILES = ("config.json",)  # sentence-transformers module folders such as 1_Pooling/
_TEXT_SUFFIXES = (".json", ".md", ".py", ".txt", ".jinja")


def _allowed(relative: Path) -> bool:
    if len(relative.parts) == 1:
        return any(fnmatch.fnmatch(relative.name, pattern) for pattern in UPLOAD_ALLOWLIST)
    return (len(relative.parts) == 2 and re.fullmatch(r"\d+_[A-Za-z]+", relative.parts[0]) is not None
            and relative.name in ST_MODULE_FILES)


def upload_plan(model_dir: str | Path) -> list[str]:
    """The files `publish_model_folder` uploads: those `UPLOAD_ALLOWLIST` names (top level) and the config of
    sentence-transformers module folders; hidden and temporary files never."""
    model_dir = Path(model_dir)
    return sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
                  and _allowed(p.relative_to(model_dir)))


def check_no_local_paths(model_dir: Path, files: list[str]) -> None:
    """Refuses to publish text files that carry this machine's paths (the folder's or the home directory)."""
    home = str(Path.home())
    needles = {str(model_dir.resolve()), str(model_dir.absolute())} | ({home} if home not in ("/", "") else set())
    for name in files:
        if Path(name).suffix in _TEXT_SUFFIXES:
            text = (model_dir / name).read_text(encoding="utf-8", errors="replace")
            found = next((n for n in sorted(needles) if n in text), None)
            if found is not None:
                raise ValueError(f"{model_dir / name} contains the local path {found!r}; remove it before publishing.")


def publish_model_folder(model_dir: str | Path, repo_id: str, *, commit_message: str,
                         required: tuple[str, ...] = ("config.json",), private: bool = False, dry_run: bool = False,
                         api=None) -> list[str]:
    """Uploads `model_dir`'s `upload_plan` to the Hub model repo `repo_id` (created if missing) and returns the
    files; with `dry_run`, only lists them. Refused before anything is sent: a text file with a local path, a
    missing `required` file, a config written before the portable format."""
    model_dir = Path(model_dir)
    files = upload_plan(model_dir)
    check_no_local_paths(model_dir, files)
    for name in required:
        if name not in files:
            how = "save the model and render its card first" if name == "README.md" else "save the model first"
            raise FileNotFoundError(f"{model_dir} has no {name}; {how}.")
    if json.loads((model_dir / "config.json").read_text()).get("model_type") == "rexbert":
        raise ValueError(
            f"{model_dir}/config.json has model_type 'rexbert' (written before the portable format, or with RoPE "
            "that transformers 4.x cannot express): rewrite it with `rexbert convert --to rexbert IN OUT` so that "
            "stock transformers and serving tools load it, then render the card and push that folder."
        )
    if not dry_run:
        upload_folder_to_hub(str(model_dir), repo_id, repo_type="model", private=private, allow_patterns=files,
                             api=api, commit_message=commit_message)
    return files
