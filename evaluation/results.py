"""One JSON schema for every evaluation result, written without silently overwriting, rendered side by side
as markdown. Imports no torch: model cards read and render results without loading a model.

A results file is `{"schema": "rexbert-eval/1", "results": [record, ...]}`; a record:

    model, task, dataset, split, metric, value, settings (dict), seed, date, versions (dict)
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from rexbert.core.outputs import claim_output, write_text_atomic

SCHEMA = "rexbert-eval/1"
# task names in results files: tables and model cards select rows by them (GLUE tasks are glue-<config>)
MASKED_TOKEN_RECOVERY = "masked-token-recovery"
ESCI_COSENT = "esci-cosent"
ESCI_RETRIEVAL = "esci-retrieval"  # zero-shot product search with the published embeddings
ESCI_RETRIEVAL_INT8 = "esci-retrieval-int8"  # the same with int8 linear layers, against float32 (cosine, nDCG@10)
_VERSIONED = ("rexbert", "torch", "transformers", "tokenizers", "datasets", "sentence-transformers", "evaluate")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class EvalResult:
    model: str
    task: str
    dataset: str
    split: str
    metric: str
    value: float
    settings: dict = field(default_factory=dict)
    seed: int | None = None
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    versions: dict = field(default_factory=package_versions)

    def __post_init__(self) -> None:
        self.value = float(self.value)  # plain floats: numpy scalars do not survive JSON or model-index metadata


def check_output(path: str | Path | None, overwrite: bool = False) -> None:
    """Refuses an existing results file before any work is done (unless `overwrite`)."""
    if path is not None:
        claim_output(path, overwrite=overwrite, option="--output", folder=False)


def write_results(path: str | Path, results: list[EvalResult], overwrite: bool = False) -> Path:
    """Writes `results` as strict JSON; an existing file is an error unless `overwrite` (nothing is
    replaced silently), and so is a NaN/inf value (bare `NaN` is not JSON; the record is named)."""
    path = Path(path)
    check_output(path, overwrite)
    bad = [f"{r.model} {r.task}/{r.split}/{r.metric}" for r in results if not math.isfinite(r.value)]
    if bad:
        raise ValueError(f"not writing {path}: non-finite metric value for {', '.join(bad[:3])} "
                         "(degenerate predictions or labels).")
    payload = {"schema": SCHEMA, "results": [asdict(r) for r in results]}
    # atomic: a crash or a full disk never leaves half a file, nor costs the one it replaces
    return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def read_results(path: str | Path) -> list[EvalResult]:
    payload = json.loads(Path(path).read_text())
    if payload.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a RexBERT results file (schema {payload.get('schema')!r}, want {SCHEMA!r}).")
    return [EvalResult(**record) for record in payload["results"]]


def render_table(results: list[EvalResult], row_key=lambda r: r.model,
                 column_key=lambda r: f"{r.task}/{r.metric}", scale: float = 100.0, digits: int = 1) -> str:
    """A markdown table: one row per model, one column per (task, metric); values x `scale`."""
    rows = list(dict.fromkeys(row_key(r) for r in results))
    columns = list(dict.fromkeys(column_key(r) for r in results))
    cells = {(row_key(r), column_key(r)): r.value for r in results}
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        values = [f"{cells[(row, c)] * scale:.{digits}f}" if (row, c) in cells else "-" for c in columns]
        lines.append(f"| {row} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def masked_token_table(results: list[EvalResult]) -> str:
    """The masked-token recovery results side by side like the paper's Table 3: models x (column, block size, k),
    in percent."""
    return render_table(
        [r for r in results if r.task == MASKED_TOKEN_RECOVERY],
        column_key=lambda r: f"{r.settings['column']} {r.settings['block_size']} k={r.settings['k']}",
    )
