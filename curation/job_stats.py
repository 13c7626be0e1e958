"""What each job of the filter stage did, read back from datatrove's stats files: documents and tokens
kept and dropped per step, by reason (`rexbert curate` prints it; the dataset card tabulates it)."""

from __future__ import annotations

import glob
import json
import os

from .layout import JOBS, Layout


def stat_total(value) -> int:
    """A stats value as a number: datatrove writes some as {"total": n, ...}."""
    return int(value.get("total", 0)) if isinstance(value, dict) else int(value)


def load_job_stats(layout: Layout, job: str) -> list[dict]:
    """datatrove's merged `stats.json` of a job; the per-task files summed when it is missing."""
    path = os.path.join(layout.logs(job), "stats.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    merged: list[dict] = []
    for task_file in sorted(glob.glob(os.path.join(layout.logs(job), "stats", "*.json"))):
        with open(task_file, encoding="utf-8") as f:
            for i, step in enumerate(json.load(f)):
                if i == len(merged):
                    merged.append({"name": step["name"], "stats": {}})
                for key, value in step["stats"].items():
                    merged[i]["stats"][key] = merged[i]["stats"].get(key, 0) + stat_total(value)
    return merged


def step_rows(layout: Layout) -> list[dict]:
    """One row per counting step: documents in/kept/dropped, tokens in/kept/dropped, drop reasons."""
    rows = []
    for job in JOBS:
        raw = load_job_stats(layout, job)
        steps = [{k: stat_total(v) for k, v in step["stats"].items()} for step in raw]
        names = [step["name"].split(": ", 1)[-1] for step in raw]
        tokens_in = None
        for i, (name, stats) in enumerate(zip(names, steps)):
            if "total" in stats and ("forwarded" in stats or "dropped" in stats):
                kept_tokens = stats.get("doc_len_tokens")
                dropped_tokens = stats.get("dropped_tokens")
                if kept_tokens is None and dropped_tokens is not None:
                    kept_tokens = 0  # one of our filters that dropped everything
                elif kept_tokens is None:
                    # datatrove's MinHash filter keeps no length stats: the next writer's are the same docs
                    kept_tokens = next((s["doc_len_tokens"] for s in steps[i + 1:] if "doc_len_tokens" in s), 0)
                    dropped_tokens = tokens_in - kept_tokens if tokens_in is not None else None
                elif dropped_tokens is None:
                    dropped_tokens = 0
                tokens_in = kept_tokens
                reasons = {k[len("dropped_"):]: v for k, v in stats.items()
                           if k.startswith("dropped_") and not k.startswith("dropped_tokens")}
                if not reasons and stats.get("dropped") and "MinHash" in name:
                    reasons = {"near_duplicate": stats["dropped"]}
                rows.append({"job": job, "step": name, "docs_in": stats["total"],
                             "docs_kept": stats.get("forwarded", stats["total"] - stats.get("dropped", 0)),
                             "docs_dropped": stats.get("dropped", 0), "tokens_kept": kept_tokens,
                             "tokens_dropped": dropped_tokens, "reasons": reasons})
            elif "doc_len_tokens" in stats and "total" not in stats:
                tokens_in = stats["doc_len_tokens"]  # a reader: what the next filter receives
            if name.endswith("reader") and job == "1_filter":
                rejected = {k[len("rejected_"):]: v for k, v in stats.items() if k.startswith("rejected_")}
                docs = stats.get("documents", 0)
                rows.append({"job": job, "step": name, "docs_in": docs + stats.get("rejected", 0), "docs_kept": docs,
                             "docs_dropped": stats.get("rejected", 0), "tokens_kept": stats.get("doc_len_tokens", 0),
                             "tokens_dropped": None, "reasons": rejected})
    return rows


def job_summaries(layout: Layout) -> dict[str, dict]:
    """Per job: its steps' rows (what `rexbert curate` prints at the end)."""
    out: dict[str, dict] = {}
    for row in step_rows(layout):
        out.setdefault(row["job"], {"steps": []})["steps"].append(row)
    return out
