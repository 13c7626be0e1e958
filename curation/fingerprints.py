"""What each curation stage's output was built from, so that no stage reuses an output whose inputs changed.

A stage's inputs are its config sections and the files it reads (the previous stage's output, the
source, classifiers, word lists), each file fingerprinted like the training token cache does (size,
mtime, head/tail hash: `rexbert.core.fingerprint`). `<output_dir>/fingerprints/<stage>.json` records them
when the stage starts and marks them complete when it ends. On the next run a stage whose record is
complete and unchanged is up to date and skipped, so its outputs keep their mtimes and the stages after
it stay up to date too; a changed one is rerun (its reusable outputs cleared first), the log says which
field or file changed, and the stages that read its output see their inputs change in turn.
"""

from __future__ import annotations

import json
import os
import shutil

from rexbert.core.fingerprint import source_fingerprint
from rexbert.core.outputs import write_text_atomic

from .config import CurationConfig
from .layout import Layout


def stage_inputs(cfg: CurationConfig, config: dict, files: list[str]) -> dict:
    """The record of a stage's inputs (`Stage.inputs`): {"config": the config values it reads, "files": {path:
    fingerprint}} (None for a Hub path)."""
    return {"config": json.loads(json.dumps(config)),
            "files": {_key(path, cfg.output_dir): source_fingerprint(path) for path in files}}


def _key(path: str, root: str) -> str:
    """Paths inside the output folder relative to it, so that a moved output folder stays up to date."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root)) if "://" not in path else path
    return path if relative.startswith("..") else os.path.join("<output_dir>", relative)


def _record_path(cfg: CurationConfig, stage: str) -> str:
    return Layout(cfg.output_dir).fingerprint(stage)


def _changes(old, new, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for key in sorted(set(old) | set(new), key=str)
                for change in _changes(old.get(key), new.get(key), f"{where}.{key}" if where else str(key))]
    return [] if old == new else [f"{where}: {old!r} -> {new!r}"]


def stale_reason(recorded: dict | None, current: dict) -> str | None:
    """Why the recorded output cannot be reused; None when its inputs are unchanged."""
    if recorded is None:
        return None
    config = _changes(recorded.get("config"), current["config"])
    if config:
        return "config changed (" + "; ".join(config[:3]) + ("; ..." if len(config) > 3 else "") + ")"
    old_files, new_files = recorded.get("files") or {}, current["files"]
    changed = [path for path in sorted(set(old_files) | set(new_files)) if old_files.get(path) != new_files.get(path)]
    if changed:
        return "input changed (" + ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "") + ")"
    return None


def load_record(cfg: CurationConfig, stage: str) -> dict | None:
    try:
        with open(_record_path(cfg, stage), encoding="utf-8") as handle:
            return json.load(handle)
    except (FileNotFoundError, ValueError):  # never recorded, or torn: the stage reruns
        return None


def save_record(cfg: CurationConfig, stage: str, inputs: dict, summary: dict | None = None) -> None:
    """`summary` None: the stage has started on these inputs; else it finished with that summary."""
    record = {**inputs, "complete": summary is not None, "summary": summary}
    write_text_atomic(_record_path(cfg, stage), json.dumps(record, indent=1, default=str))


def prepare(cfg: CurationConfig, stage: str, inputs: tuple[dict, list[str]], reusable: list[str],
            log=print) -> tuple[dict, dict | None]:
    """(the stage's current inputs, the summary to reuse when it is up to date, else None), from what the stage
    reads (`inputs`: config values, files) and the outputs a rerun would pick up (`reusable`). A stage whose inputs
    changed, or whose reusable outputs predate fingerprints, has those outputs removed."""
    current = stage_inputs(cfg, *inputs)
    recorded = load_record(cfg, stage)
    reason = stale_reason(recorded, current)
    if reason is None and recorded is not None and recorded.get("complete"):
        log(f"curate {stage}: up to date (inputs unchanged since {_record_path(cfg, stage)})")
        return current, recorded["summary"]
    leftovers = [path for path in reusable if os.path.exists(path)]
    if recorded is None and leftovers:
        reason = "its output was written before stages recorded their inputs"
    if reason is not None:
        log(f"curate {stage}: rerunning, {reason}")
        for path in leftovers:
            shutil.rmtree(path)
    return current, None
