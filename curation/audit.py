"""QA loop: a stronger model relabels a sample of the labels; agreement per domain decides whether
the prompt needs another revision. Every audit is appended to a JSON log of prompt revisions."""

from __future__ import annotations

import json
import os
import random
import time

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from .labels.run import label_records
from .layout import AUDIT_REPORT_FILE
from .sampling import read_jsonl


def agreement(primary: list[int], audit: list[int]) -> dict:
    """accuracy, Cohen's kappa and the 2x2 confusion matrix (rows: primary 0/1, columns: audit 0/1)."""
    if not primary:
        return {"n": 0, "accuracy": None, "kappa": None, "confusion": [[0, 0], [0, 0]]}
    accuracy = float(accuracy_score(audit, primary))
    if len(set(primary) | set(audit)) == 1:
        kappa = 1.0  # one class on both sides, all agree: kappa is undefined (0/0), agreement is perfect
    else:
        kappa = float(cohen_kappa_score(primary, audit))
    matrix = confusion_matrix(primary, audit, labels=[0, 1]).tolist()
    return {"n": len(primary), "accuracy": accuracy, "kappa": kappa, "confusion": matrix}


def run_audit(labels_path: str, auditor, out_dir: str, sample_size: int = 500, min_kappa: float = 0.8,
              seed: int = 0, examples_per_domain: int = 5, note: str = "", progress: bool = True) -> dict:
    """Relabels a seeded sample of `labels_path` with `auditor`; writes `report.json` and appends to
    `revisions.json` in `out_dir`; `stable` is the stop criterion (kappa >= min_kappa)."""
    rows = read_jsonl(labels_path)
    if not rows:
        raise ValueError(f"{labels_path} has no labels to audit")
    sample = random.Random(seed).sample(rows, min(sample_size, len(rows)))
    audit_labels, stats = label_records(sample, auditor, progress)
    pairs = [(r, a) for r, a in zip(sample, audit_labels) if a is not None]
    report = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "prompt_version": sample[0].get("prompt_version"),
        "primary_labeler": sample[0].get("labeler"),
        "audit_labeler": auditor.model_id,
        "audit_stats": stats,
        "min_kappa": min_kappa,
        "note": note,
        **agreement([r["label"] for r, _ in pairs], [a for _, a in pairs]),
        "per_domain": {},
    }
    for domain in sorted({r["domain"] for r, _ in pairs}):
        mine = [(r, a) for r, a in pairs if r["domain"] == domain]
        disagreements = [{"id": r["id"], "primary": r["label"], "audit": a, "text": r["text"][:300]}
                         for r, a in mine if r["label"] != a]
        report["per_domain"][domain] = {
            **agreement([r["label"] for r, _ in mine], [a for _, a in mine]),
            "disagreements": disagreements[:examples_per_domain],
            "n_disagreements": len(disagreements),
        }
    kappas = [d["kappa"] for d in report["per_domain"].values()]
    report["stable"] = bool(report["kappa"] is not None and report["kappa"] >= min_kappa)
    report["worst_domain_kappa"] = float(np.min(kappas)) if kappas else None
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, AUDIT_REPORT_FILE), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    log_path = os.path.join(out_dir, "revisions.json")
    log = json.load(open(log_path, encoding="utf-8")) if os.path.exists(log_path) else []
    log.append({k: v for k, v in report.items() if k != "per_domain"}
               | {"per_domain_kappa": {d: v["kappa"] for d, v in report["per_domain"].items()}})
    with open(log_path, "w", encoding="utf-8") as f:
        json.dump(log, f, indent=2, ensure_ascii=False)
    return report
