"""One function per stage, each taking the validated config and returning a summary dict; the CLI
and `run_all` are thin loops over these."""

from __future__ import annotations

import json
import os
import sys

from .config import STAND_IN_LABELERS, CurationConfig
from .domains import resolve
from .layout import Layout


def _dirs(cfg: CurationConfig) -> dict[str, str]:
    root = cfg.output_dir
    return {"samples": os.path.join(root, "samples"), "labels": os.path.join(root, "labels"),
            "audit": os.path.join(root, "audit")}


def stage_sample(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .sampling import write_samples

    written = write_samples(cfg.sample, resolve(cfg.domains), _dirs(cfg)["samples"], progress)
    return {"documents": sum(written["per_domain"].values()), **written}


def stage_label(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .labels import make_labeler
    from .labels.run import check_failure_rate, label_samples

    d = _dirs(cfg)
    labeler = make_labeler(cfg.label, cache_path=os.path.join(d["labels"], "cache.sqlite"))
    domains = [x.finefineweb_id for x in resolve(cfg.domains)]
    summary = label_samples(d["samples"], d["labels"], labeler, domains, progress)
    check_failure_rate(summary["stats"], cfg.label.max_failure_rate, "label", os.path.join(d["labels"], "failed.jsonl"))
    return summary


def stage_audit(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .audit import run_audit
    from .labels import make_labeler
    from .labels.run import check_failure_rate

    d = _dirs(cfg)
    auditor = make_labeler(cfg.audit, cache_path=os.path.join(d["audit"], "cache.sqlite"))
    report = run_audit(os.path.join(d["labels"], "labels.jsonl"), auditor, d["audit"], cfg.audit.sample_size,
                       cfg.audit.min_kappa, cfg.audit.seed, cfg.audit.examples_per_domain, progress=progress)
    check_failure_rate(report["audit_stats"], cfg.audit.max_failure_rate, "audit",
                       os.path.join(d["audit"], "report.json"))
    return {k: report[k] for k in ("n", "accuracy", "kappa", "stable", "min_kappa", "worst_domain_kappa")}


def stage_distill(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .distill import distill

    d = _dirs(cfg)
    domains = [x.finefineweb_id for x in resolve(cfg.domains) if x.needs_filter]
    metadata = distill(os.path.join(d["labels"], "labels.jsonl"), Layout(cfg.output_dir).models, cfg.distill, domains,
                       progress)
    return {domain: {"threshold": round(m["threshold"], 4), **{k: round(v, 3) for k, v in m["validation"].items()
                                                                if isinstance(v, float)}, "target_met": m["target_met"]}
            for domain, m in metadata.items()}


def stage_filter(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .pipeline import run_pipeline

    summaries = run_pipeline(cfg, progress, verbose)
    if not summaries:
        return {"submitted": cfg.executor.type}
    return {f"{row['job']}/{row['step']}": f"{row['docs_kept']:,} kept / {row['docs_dropped']:,} dropped"
            for job in summaries.values() for row in job["steps"]}


def stage_card(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .dataset_card import render_dataset_card

    layout = Layout(cfg.output_dir)
    unit = "tokens of " + os.path.basename(cfg.filter.tokenizer_file) if cfg.filter.tokenizer_file else \
        "whitespace-separated words (set filter.tokenizer_file for model tokens)"
    report = os.path.join(_dirs(cfg)["audit"], "report.json")
    audit = json.loads(open(report, encoding="utf-8").read()) if os.path.exists(report) else None
    render_dataset_card(layout, cfg.card.repo_id, cfg.card.pretty_name, cfg.card.license, unit, source=cfg.card.source,
                        audit=audit)
    return {"card": os.path.join(layout.dataset, "README.md"),
            "chart": os.path.join(layout.dataset, "domain_distribution.png")}


STAGES = {"sample": stage_sample, "label": stage_label, "audit": stage_audit, "distill": stage_distill,
          "filter": stage_filter, "card": stage_card}


class AuditNotStableError(ValueError):
    pass


def check_audit(cfg: CurationConfig, summary: dict) -> None:
    """An audit below audit.min_kappa stops the chain (audit.enforce) or, when not enforced, prints a
    warning that says so and why the run goes on."""
    if summary["stable"]:
        return
    found = "no agreement could be measured" if summary["kappa"] is None else f"kappa {summary['kappa']:.3f}"
    problem = (f"audit {found} is below audit.min_kappa {cfg.audit.min_kappa}: the labels and the auditor disagree "
               f"(see {os.path.join(_dirs(cfg)['audit'], 'report.json')})")
    if cfg.audit.enforce:
        raise AuditNotStableError(f"{problem}; revise the prompt and relabel.")
    if cfg.label.backend in STAND_IN_LABELERS and cfg.audit.backend in STAND_IN_LABELERS:
        why = (f"the labeler ({cfg.label.backend}) and auditor ({cfg.audit.backend}) are demo stand-ins for the "
               "LLMs, so the run continues; a real run with audit.enforce stops here")
    else:
        why = "audit.enforce is false, so the run continues with these labels"
    print(f"WARNING: {problem}. {why}. The dataset card records it.", file=sys.stderr, flush=True)


def run_stage(name: str, cfg: CurationConfig, progress: bool = True, verbose: bool = False, log=print) -> dict:
    """One stage, unless its recorded inputs are unchanged (then its recorded summary); see `fingerprints`.
    Disk-full and permission errors name the path (`rexbert.core.outputs.OutputError`)."""
    from rexbert.core.outputs import writing

    from . import fingerprints

    inputs, up_to_date = fingerprints.prepare(cfg, name, log)
    if up_to_date is not None:
        return up_to_date
    with writing(cfg.output_dir):
        fingerprints.save_record(cfg, name, inputs)
        summary = STAGES[name](cfg, progress, verbose)
        if "submitted" not in summary:  # a Slurm/Ray submission has not finished yet
            fingerprints.save_record(cfg, name, inputs, summary)
    return summary


def run_all(cfg: CurationConfig, progress: bool = True, skip: tuple[str, ...] = (),
            verbose: bool = False) -> dict[str, dict]:
    """sample -> label -> audit -> distill -> filter -> card, each skipped when up to date; returns each
    stage's summary."""
    from tqdm.auto import tqdm

    summaries = {}
    for name in tqdm([s for s in STAGES if s not in skip], desc="curate run", unit="stage", disable=not progress):
        summaries[name] = run_stage(name, cfg, progress, verbose)
        if name == "audit":
            check_audit(cfg, summaries[name])
    return summaries
