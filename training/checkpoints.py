"""Checkpoints that a crash cannot half-write: `save_state` into a temporary folder, then one rename.

`<phase>/checkpoints/step-NNNNNNNN/` holds what `Accelerator.save_state` writes (model, optimizer,
scheduler, RNG states, the data position) plus `phase_config.json`, which a resumed run compares
with its own config before training starts. Only the last `keep_last` checkpoints are kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .config import ConfigError, PhaseConfig

CONFIG_FILE = "phase_config.json"
PREFIX = "step-"
# fields a resumed run may change: how long it runs, how often it saves/logs, where results go
RESUMABLE_CHANGES = {("run", "max_steps"), ("run", "save_every"), ("run", "keep_last"), ("run", "eval_every"),
                     ("run", "log_every"), ("run", "log_with"), ("run", "push_to_hub"), ("source_file",)}


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of an interrupted save are ignored)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
                  and (p / CONFIG_FILE).is_file())


def save_checkpoint(accelerator, folder: Path, step: int, config: PhaseConfig, keep_last: int) -> Path:
    final = folder / checkpoint_name(step)
    partial = folder / f".{final.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)  # the checkpoint exists only once it is complete
        for old in list_checkpoints(folder)[:-keep_last]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def _differences(saved: dict, current: dict, prefix: tuple = ()) -> list[str]:
    found = []
    for key in sorted(set(saved) | set(current)):
        path = (*prefix, key)
        if path in RESUMABLE_CHANGES:
            continue
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _differences(old, new, path)
        elif old != new:
            found.append(f"{'.'.join(path)}: checkpoint {old!r}, config {new!r}")
    return found


def check_resumable(checkpoint: Path, config: PhaseConfig) -> None:
    """Raises `ConfigError` listing every field where `config` differs from the one that wrote `checkpoint`."""
    saved = json.loads((checkpoint / CONFIG_FILE).read_text())
    current = json.loads(json.dumps(config.to_dict()))  # tuples -> lists, as saved
    differences = _differences(saved, current)
    if differences:
        raise ConfigError(f"cannot resume from {checkpoint}: the config differs in " + "; ".join(differences) + ".")
