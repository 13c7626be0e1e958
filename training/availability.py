"""How much of each source a phase reads, against how much there is: the plan's data truth.

A source's size comes from its token shards when they are built (`manifest.json` in its cache folder,
the folder `cache_folder` names under the run root), else from `approx_tokens` in the config
(the size its dataset card states), else it is "unknown". Shards built only up to a cap (a Hub
source, a large local one) say how much is tokenized, not how large the source is: they are shown
as "shards, partial", and `data.max_passes` (training/capping.py) sizes the source from the config then. Tokens needed are the token slots the
mixture draws from it over the phase (rows x length, so [CLS]/[SEP] and padding count too, and
passes are a slight overestimate). A source read more than `REPEAT_WARNING` times gets a warning:
Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models", NeurIPS) find up to about 4
epochs of repeated data worth almost as much as fresh data, with returns falling quickly after that
(and repeated tokens worth close to nothing past about 16 epochs).
A local source path that does not exist is an error here, at plan time, before any model is built.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import ConfigError, PhaseConfig, SourceConfig
from .shards import finished_manifest

REPEAT_WARNING = 4.0  # passes over a source above which the plan warns (Muennighoff et al. 2023)


def cache_folder(root: Path, config: PhaseConfig, source: SourceConfig) -> Path:
    """Where a source's token shards live under the run root, shared by every phase that reads it."""
    parts = [config.source_path(source), source.split, source.text_column]
    key = json.dumps(parts + [source.config] if source.config is not None else parts)  # old caches keep their key
    return root / "tokens" / f"{source.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def built(folder: Path) -> tuple[int, bool] | None:
    """(tokens, whether the whole source was read) of a finished shard folder; None when its build is absent,
    unfinished or from before shards were built by tasks (the run then builds or refuses it; the plan does not
    guess)."""
    try:
        manifest = finished_manifest(folder) if folder.is_dir() else None
        return None if manifest is None else (int(manifest["tokens"]), bool(manifest["exhausted"]))
    except (ValueError, KeyError, TypeError, OSError):
        return None


def built_tokens(folder: Path) -> int | None:
    """Tokens in a source's finished shard folder (None: not built)."""
    found = built(folder)
    return None if found is None else found[0]


def check_local_sources(phase: PhaseConfig) -> None:
    """A local source that is not there is refused now, naming the field, not after the model is built."""
    for i, source in enumerate(phase.data.sources):
        if source.path is not None and not Path(phase.source_path(source)).exists():
            raise ConfigError(f"{phase.name}: data.sources[{i}].path: source {source.name!r}: "
                              f"{phase.source_path(source)} does not exist.")


def available(phase: PhaseConfig, source: SourceConfig, root: Path | None) -> tuple[int | None, str]:
    """(tokens, where the number comes from: "shards" (the whole source, tokenized), "shards, partial" (built
    up to a cap: what is tokenized, not the source's size), "config" or "unknown")."""
    found = built(cache_folder(root, phase, source)) if root is not None else None
    if found is not None:
        return found[0], "shards" if found[1] else "shards, partial"
    if source.approx_tokens is not None:
        return source.approx_tokens, "config"
    return None, "unknown"


def source_size(phase: PhaseConfig, source: SourceConfig, root: Path | None) -> tuple[int | None, str]:
    """The source's size, what `data.max_passes` caps against: the shards when they hold the whole source, else
    the config's `approx_tokens`, else None ("unknown": such a source is not capped)."""
    tokens, origin = available(phase, source, root)
    if origin == "shards, partial":
        return (source.approx_tokens, "config") if source.approx_tokens is not None else (None, "unknown")
    return tokens, origin


def describe_data(phase: PhaseConfig, needed: dict[str, int], root: Path | None,
                  requested: dict[str, int] | None = None) -> tuple[dict, list[str]]:
    """Per source: tokens needed, available (and from where) and passes; with `requested` (the tokens the
    config asked for, before `data.max_passes` capped the mixture), the passes asked too. And the warnings."""
    sources, warnings = {}, []
    for source in phase.data.sources:
        tokens, origin = available(phase, source, root)
        need = needed[source.name]
        passes = need / tokens if tokens else None
        sources[source.name] = {"needed": need, "available": tokens, "from": origin,
                                "passes": round(passes, 3) if passes is not None else "unknown"}
        if requested is not None:
            asked = requested[source.name]
            sources[source.name]["requested"] = asked
            sources[source.name]["passes_requested"] = round(asked / tokens, 3) if tokens else "unknown"
        capped = requested is not None and requested[source.name] > need
        if passes is not None and passes > REPEAT_WARNING:
            advice = "capped there by max_passes; add data to read it less" if capped else \
                "add data, lower its share or cap it (data.max_passes)"
            warnings.append(f"data.sources: {source.name!r} is read {passes:,.1f} times ({need:,} tokens needed, "
                            f"{tokens:,} available from the {origin}); past {REPEAT_WARNING:g} passes repeated "
                            f"tokens are worth much less than fresh ones (Muennighoff et al. 2023): {advice}")
    return sources, warnings


def curriculum_totals(phases: list[PhaseConfig], plans: list[dict]) -> tuple[dict, list[str]]:
    """Per source over every phase that reads it (a source is its name and where it is read from):
    tokens needed in all, available, passes; warnings past `REPEAT_WARNING` passes in all."""
    totals: dict[str, dict] = {}
    for phase, plan in zip(phases, plans):
        for source in phase.data.sources:
            data = plan["data"][source.name]
            key = f"{source.name} ({phase.source_path(source)})"
            entry = totals.setdefault(key, {"needed": 0, "available": data["available"], "from": data["from"],
                                            "phases": []})
            entry["needed"] += data["needed"]
            entry["phases"].append(phase.name)
    warnings = []
    for key, entry in totals.items():
        entry["passes"] = round(entry["needed"] / entry["available"], 3) if entry["available"] else "unknown"
        if entry["available"] and entry["passes"] > REPEAT_WARNING and len(entry["phases"]) > 1:
            warnings.append(f"{key} is read {entry['passes']:,.1f} times over {', '.join(entry['phases'])} "
                            f"(Muennighoff et al. 2023: past {REPEAT_WARNING:g} passes repeats are worth much less)")
    return totals, warnings
