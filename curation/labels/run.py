"""The `label` stage: every sampled record gets a binary label; failures are written out, not lost."""

from __future__ import annotations

import json
import os

from ..layout import LABEL_FAILURES_FILE, LABELS_FILE
from ..sampling import read_jsonl
from .rules import ProvenanceLabeler


class TooManyFailures(ValueError):
    """More items than `max_failure_rate` allows got no label: the run must not look like a success."""


def check_failure_rate(stats: dict, max_rate: float, what: str, where: str) -> None:
    """Raises when the share of items with no label exceeds `max_rate`; the message gives the count."""
    failed, requested = stats.get("failed", 0), stats.get("requested", 0)
    if requested and failed / requested > max_rate:
        raise TooManyFailures(f"{what}: {failed} of {requested} items got no label ({failed / requested:.0%} > "
                              f"max_failure_rate {max_rate:.0%}); details in {where}")


def label_records(records: list[dict], labeler, progress: bool = False) -> tuple[list[int | None], dict]:
    texts = [r["text"] for r in records]
    domains = [r["domain"] for r in records]
    if isinstance(labeler, ProvenanceLabeler):
        labels, stats = labeler.label(texts, domains, progress, sources=[r.get("source_label") for r in records])
    else:
        labels, stats = labeler.label(texts, domains, progress)
    return labels, stats.as_dict()


def label_samples(samples_dir: str, out_dir: str, labeler, domains: list[str], progress: bool = True) -> dict:
    """Reads `<samples_dir>/<domain>.jsonl`, writes `<out_dir>/labels.jsonl` (and `failed.jsonl` for
    records no attempt could label); returns per-domain label counts and the labeler's stats."""
    records = []
    for domain in domains:
        path = os.path.join(samples_dir, f"{domain}.jsonl")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no samples for domain {domain!r}: {path} (run `rexbert curate sample` first)")
        records += read_jsonl(path)
    labels, stats = label_records(records, labeler, progress)
    os.makedirs(out_dir, exist_ok=True)
    version = getattr(getattr(labeler, "prompt", None), "version", None)
    summary: dict = {"labeler": labeler.name, "model": labeler.model_id, "prompt_version": version, "stats": stats,
                     "domains": {}}
    with open(os.path.join(out_dir, LABELS_FILE), "w", encoding="utf-8") as ok, \
            open(os.path.join(out_dir, LABEL_FAILURES_FILE), "w", encoding="utf-8") as failed:
        for record, label in zip(records, labels):
            row = {"id": record["id"], "domain": record["domain"], "text": record["text"], "label": label,
                   "labeler": labeler.model_id, "prompt_version": version}
            (failed if label is None else ok).write(json.dumps(row, ensure_ascii=False) + "\n")
            counts = summary["domains"].setdefault(record["domain"], {"relevant": 0, "not_relevant": 0, "failed": 0})
            counts["failed" if label is None else ("relevant" if label else "not_relevant")] += 1
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary
