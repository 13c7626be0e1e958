"""What a model folder's own training run recorded, for its card: `rexbert train` exports a phase to `<root>/<phase>/`
and keeps `<root>/<phase>-run/` beside it with `phase_config.json` (the phase's resolved config) and
`training_summary.json` (steps, tokens). A phase that started from an earlier one (`model.init_from`) leads to
that one's record, so a curriculum's card shows every phase. Read as files (the training package is not imported)."""

from __future__ import annotations

import json
from pathlib import Path

RUN_SUFFIX = "-run"
CONFIG_FILE = "phase_config.json"
SUMMARY_FILE = "training_summary.json"
UNKNOWN = "unknown"


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _phase_record(model_dir: Path) -> dict | None:
    """{"config", "summary"} of the phase exported to `model_dir`, or None when no run folder records it. The
    config is the run folder's, else (runs from before it was written there) its newest checkpoint's."""
    state = model_dir.parent / f"{model_dir.name}{RUN_SUFFIX}"
    config = _read_json(state / CONFIG_FILE)
    if config is None:
        checkpoints = sorted((state / "checkpoints").glob(f"*/{CONFIG_FILE}")) if state.is_dir() else []
        config = _read_json(checkpoints[-1]) if checkpoints else None
    if config is None:
        return None
    return {"config": config, "summary": _read_json(state / SUMMARY_FILE) or {}}


def recorded_phases(model_dir: str | Path, limit: int = 16) -> list[dict]:
    """The phases that made `model_dir`, first phase first (empty when nothing is recorded)."""
    model_dir, phases = Path(model_dir), []
    while len(phases) < limit:
        record = _phase_record(model_dir)
        if record is None:
            break
        phases.insert(0, record)
        start = (record["config"].get("model") or {}).get("init_from")
        if not start:
            break
        earlier = model_dir.parent / start  # a phase name under the same root, or a folder
        model_dir = earlier if earlier.is_dir() else Path(start).expanduser()
    return phases


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else UNKNOWN


def _data(config: dict) -> str:
    data = config.get("data") or {}
    sources = [f"{s.get('name', '?')}" + (f" ({s['weight']:g})" if len(data.get("sources") or []) > 1 and
                                          isinstance(s.get("weight"), (int, float)) else "")
               for s in (data.get("sources") or []) + (data.get("add_sources") or []) if isinstance(s, dict)]
    anneal = data.get("anneal_to") or {}
    text = ", ".join(sources) or UNKNOWN
    if anneal:
        text += " annealed to " + ", ".join(f"{k} {v:.0%}" for k, v in anneal.items() if isinstance(v, (int, float)))
    return text


def _masking(config: dict) -> str:
    masking = config.get("masking") or {}
    rate, guided = masking.get("rate"), masking.get("guided_fraction")
    if not isinstance(rate, (int, float)):
        return UNKNOWN
    return f"{rate:.0%}" + (f", Guided MLM on {guided:.0%} of rows" if guided else "")


def _schedule(config: dict) -> str:
    optimizer = config.get("optimizer") or {}
    lr = optimizer.get("lr")
    if not isinstance(lr, (int, float)):
        return UNKNOWN
    parts = [f"peak {lr:g}"]
    for key, word in (("warmup_steps", "warmup"), ("decay_steps", "decay")):
        if optimizer.get(key):
            parts.append(f"{optimizer[key]:,} {word} steps")
    return ", ".join(parts)


def recipe_table(phases: list[dict]) -> str:
    """A markdown table, one column per phase: data, sequence length, masking, learning rate, steps (tokens)."""
    rows = {
        "data": [_data(p["config"]) for p in phases],
        "sequence length": [_count((p["config"].get("data") or {}).get("sequence_length")) for p in phases],
        "masking": [_masking(p["config"]) for p in phases],
        "learning rate": [_schedule(p["config"]) for p in phases],
        "steps (tokens)": [f"{_count(p['summary'].get('steps'))} ({_count(p['summary'].get('tokens'))})"
                           if p["summary"] else "not finished" for p in phases],
    }
    lines = ["| | " + " | ".join(str(p["config"].get("name", f"phase {i + 1}")) for i, p in enumerate(phases)) + " |",
             "|---" * (len(phases) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows.items()]
    return "\n".join(lines)


def recorded_run(model_dir: str | Path) -> dict | None:
    """What the card says about the run that made `model_dir` (the prose is in the card template): the number
    of phases, the recipe table, total steps and tokens (None unless every phase recorded them) and the longest
    sequence length, numbers formatted; None when nothing is recorded."""
    phases = recorded_phases(model_dir)
    if not phases:
        return None
    lengths = [(p["config"].get("data") or {}).get("sequence_length") for p in phases]
    steps = [p["summary"].get("steps") for p in phases]
    tokens = [p["summary"].get("tokens") for p in phases]
    counted = all(isinstance(n, int) for n in steps + tokens)
    return {"phases": len(phases), "table": recipe_table(phases),
            "steps": f"{sum(steps):,}" if counted else None, "tokens": f"{sum(tokens):,}" if counted else None,
            "longest": _count(max((n for n in lengths if isinstance(n, int)), default=None))}
