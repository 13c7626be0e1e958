"""Checkpoints that a crash cannot half-write: `save_state` into a temporary folder, then one rename.

`<phase>-run/checkpoints/step-NNNNNNNN/` holds what `Accelerator.save_state` writes (model, optimizer,
RNG states; the pickles among them are only ever read `weights_only=True`), `trainer_state.json` (our
own state: scheduler, data position, progress; JSON, never unpickled), `phase_config.json`, which a
resumed run compares with its own config before training starts, and `manifest.json`, written last:
every file's size and SHA-256. A resumed run verifies the manifest and falls back past damaged
checkpoints to the newest intact one. Only the last `keep_last` checkpoints are kept. A save that fails
(full disk, permissions) is an `OutputError` naming the checkpoint; its partial folder is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from pathlib import Path

from rexbert.core.outputs import OutputError, writing

from .config import ConfigError, PhaseConfig

CONFIG_FILE = "phase_config.json"
STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "manifest.json"
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(checkpoint: Path) -> None:
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    manifest = {str(p.relative_to(checkpoint)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files}
    (checkpoint / MANIFEST_FILE).write_text(json.dumps({"files": manifest}, indent=1))


def verify_checkpoint(checkpoint: Path) -> str | None:
    """None when every file the manifest lists is there with its size and hash; else what is wrong."""
    try:
        manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())["files"]
    except FileNotFoundError:
        return f"no {MANIFEST_FILE}"
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST_FILE} is unreadable"
    for name, expected in manifest.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {expected['size']}"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its hash in the manifest"
    return None


def _non_finite_weights(checkpoint: Path) -> str | None:
    import torch
    from safetensors.torch import load_file

    for path in sorted(checkpoint.glob("*.safetensors")):
        bad = [name for name, tensor in load_file(path).items()
               if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
        if bad:
            return f"{path.name} holds non-finite weights ({bad[0]})"
    return None


def load_pickle_safely(path: Path):
    """`torch.load` with `weights_only=True`: tensors, numbers, strings, containers and numpy arrays (what
    Accelerate's optimizer and RNG files hold), never arbitrary objects, so no code in the file runs."""
    import torch
    from accelerate.utils.other import TORCH_SAFE_GLOBALS

    with torch.serialization.safe_globals(TORCH_SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


def _unsafe_pickles(checkpoint: Path) -> str | None:
    """Accelerate reads the RNG states with weights_only=True but ignores any failure, so a file that holds
    code would be passed over in silence: check them here (they are small), naming the file."""
    import pickle

    for path in sorted(checkpoint.glob("random_states_*.pkl")):
        try:
            load_pickle_safely(path)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            return f"{path.name} cannot be loaded without running code from it ({first[:160]})"
    return None


def load_accelerator_state(accelerator, checkpoint: Path) -> None:
    """`accelerator.load_state`, with every pickle read `weights_only=True` (never unpickling objects)."""
    import pickle

    try:
        accelerator.load_state(str(checkpoint), load_kwargs={"weights_only": True})
    except pickle.UnpicklingError as error:
        first = (str(error).splitlines() or [""])[0][:160]
        raise ValueError(f"refusing to resume from {checkpoint}: a state file holds objects other than tensors "
                         f"and numbers, which loading would run as code ({first})") from None


def newest_intact(folder: Path, report=print, finite_weights: bool = False) -> Path | None:
    """The newest checkpoint that verifies, whose RNG pickles load without running code (and, with
    `finite_weights`, holds no NaN/inf weights); each one passed over is reported, naming it."""
    for checkpoint in reversed(list_checkpoints(folder)):
        problem = verify_checkpoint(checkpoint) or _unsafe_pickles(checkpoint) or \
            (_non_finite_weights(checkpoint) if finite_weights else None)
        if problem is None:
            return checkpoint
        report(f"skipping damaged checkpoint {checkpoint}: {problem}")
    return None


@contextlib.contextmanager
def _tied_head_expected():
    """accelerate drops one of two tensors sharing storage when saving with safetensors and warns "Removed shared
    tensor {'decoder.weight'} ... check". RexBERT's MLM decoder is tied to the embeddings and loading ties it
    again, so that one warning is expected; any other shared tensor still warns."""
    log = logging.getLogger("accelerate.utils.other")

    def other_than_tied_head(record: logging.LogRecord) -> bool:
        return "Removed shared tensor {'decoder.weight'}" not in record.getMessage()

    log.addFilter(other_than_tied_head)
    try:
        yield
    finally:
        log.removeFilter(other_than_tied_head)


def save_checkpoint(accelerator, folder: Path, step: int, config: PhaseConfig, keep_last: int,
                    state: dict | None = None) -> Path:
    """`state`: our own resumable state (JSON-serialisable), written next to accelerate's files."""
    final = folder / checkpoint_name(step)
    partial = folder / f".{final.name}.partial"
    try:
        with writing(final, exact=True, native_writers=True):
            if accelerator.is_main_process:
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
            accelerator.wait_for_everyone()
            with _tied_head_expected():
                accelerator.save_state(str(partial))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                (partial / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=1))
                if state is not None:
                    (partial / STATE_FILE).write_text(json.dumps(state))
                write_manifest(partial)  # last: a checkpoint whose files changed after this no longer verifies
                shutil.rmtree(final, ignore_errors=True)
                partial.rename(final)  # the checkpoint exists only once it is complete
    except OutputError:
        shutil.rmtree(partial, ignore_errors=True)  # give the space back; the earlier checkpoints are untouched
        raise
    if accelerator.is_main_process:
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
