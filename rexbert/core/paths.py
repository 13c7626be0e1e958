"""Where the data that ships inside the package lies: the bundled corpus and its evaluation samples."""

from __future__ import annotations

import os
import re
from pathlib import Path

BUNDLED_CORPUS = Path(__file__).parents[1] / "corpus"  # rexbert/corpus/: see its README for sources and licenses
BUNDLED_EVAL_DATA = BUNDLED_CORPUS / "eval"

# --- a name that is either a local path or a Hub repo id ----------------------------------------------------
# What only a local path can be: a Hub id is `name` or `owner/name` of letters, digits, '-', '_', '.', and never
# starts with '/', '.', '~' nor ends with a data file's extension.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt", ".gz", ".zst", ".arrow", ".safetensors",
                  ".bin", ".yaml", ".yml")


def looks_local(name: str) -> bool:
    """Whether `name` can only mean a local file or folder (so a missing one is a missing path, not a Hub id)."""
    text = str(name)
    return (text.startswith(("/", ".", "~")) or text.endswith(("/", "\\")) or text.lower().endswith(LOCAL_SUFFIXES)
            or _HUB_ID.fullmatch(text) is None or ".." in text or "--" in text)


def check_local_or_hub(name: str | Path, what: str) -> None:
    """Raises FileNotFoundError naming `name` (and `what` asked for it) when it is not there and cannot be a Hub id."""
    path = Path(str(name)).expanduser()
    if not path.exists() and looks_local(str(name)):
        raise FileNotFoundError(f"{what} {str(name)!r}: no such file or folder ({path.absolute()}).")


def hub_failure(name: str, what: str, error: BaseException) -> OSError:
    """One line for a Hub id that could not be loaded: the id, who asked for it, the library's first line, what
    to check."""
    detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    offline = " (HF_HUB_OFFLINE is set: only the local cache is read)" if os.environ.get("HF_HUB_OFFLINE", "").strip() \
        not in ("", "0", "false", "False") else ""
    return OSError(f"{what} {name!r} is not a local folder, and the Hub id could not be loaded{offline}: "
                   f"{detail.rstrip('.')}. Check the id, your network and HF_ENDPOINT, or give a local folder.")
