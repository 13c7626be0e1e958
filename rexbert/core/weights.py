"""A model folder's weight files checked before a library loads them, so that a truncated or corrupt
`model.safetensors` is one line naming the file, not a traceback from the Rust reader deep in transformers."""

from __future__ import annotations

from pathlib import Path


class CorruptWeights(ValueError):
    """A weights file that cannot be read; the message names it."""


def check_weight_files(folder: str | Path) -> None:
    """Opens every `*.safetensors` of a local `folder` (the header and its coverage of the file only, no tensor
    is read) and raises `CorruptWeights` naming the first that does not open. Hub ids and missing folders pass."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return
    from safetensors import safe_open

    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except Exception as error:  # SafetensorError, or an OSError reading it
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise CorruptWeights(f"{file} ({file.stat().st_size:,} bytes) is not a readable safetensors file "
                                 f"({detail}); it may be truncated or corrupt: copy or export it again.") from None
