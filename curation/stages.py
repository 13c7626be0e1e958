"""The curation stages as one table, `STAGES`: each stage's name, its one-line help, what it reads (the config
values and files that decide whether its output is up to date: `fingerprints.py`), the outputs a rerun picks up,
the function that runs it and the check after it. The CLI (`rexbert curate <stage>`, `rexbert curate run`) and
the chain (`run_all`) are loops over the table; where each stage reads and writes is `layout.Layout`. Adding a
stage: its function (cfg, progress, verbose) -> summary and its inputs beside it, its paths in `Layout`, and one
`Stage` in `STAGES`, in chain order."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable

from .config import STAND_IN_LABELERS, CurationConfig
from .domains import resolve
from .layout import Layout


def _section(cfg: CurationConfig, name: str) -> dict:
    value = getattr(cfg, name)
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def stage_sample(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .sampling import write_samples

    written = write_samples(cfg.sample, resolve(cfg.domains), Layout(cfg.output_dir).samples, progress)
    return {"documents": sum(written["per_domain"].values()), **written}


def _sample_inputs(cfg: CurationConfig, layout: Layout) -> tuple[dict, list[str]]:
    return {"domains": cfg.domains, "sample": _section(cfg, "sample")}, [cfg.sample.source]


def stage_label(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .labels import make_labeler
    from .labels.run import check_failure_rate, label_samples

    layout = Layout(cfg.output_dir)
    labeler = make_labeler(cfg.label, cache_path=layout.label_cache)
    domains = [x.finefineweb_id for x in resolve(cfg.domains)]
    summary = label_samples(layout.samples, layout.labels, labeler, domains, progress)
    check_failure_rate(summary["stats"], cfg.label.max_failure_rate, "label", layout.label_failures)
    return summary


def _label_inputs(cfg: CurationConfig, layout: Layout) -> tuple[dict, list[str]]:
    return {"domains": cfg.domains, "label": _section(cfg, "label")}, [layout.samples]


def stage_audit(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .audit import run_audit
    from .labels import make_labeler
    from .labels.run import check_failure_rate

    layout = Layout(cfg.output_dir)
    auditor = make_labeler(cfg.audit, cache_path=layout.audit_cache)
    report = run_audit(layout.labels_file, auditor, layout.audit, cfg.audit.sample_size, cfg.audit.min_kappa,
                       cfg.audit.seed, cfg.audit.examples_per_domain, progress=progress)
    check_failure_rate(report["audit_stats"], cfg.audit.max_failure_rate, "audit", layout.audit_report)
    return {k: report[k] for k in ("n", "accuracy", "kappa", "stable", "min_kappa", "worst_domain_kappa")}


def _audit_inputs(cfg: CurationConfig, layout: Layout) -> tuple[dict, list[str]]:
    return {"audit": _section(cfg, "audit")}, [layout.labels_file]


class AuditNotStableError(ValueError):
    pass


def check_audit(cfg: CurationConfig, summary: dict) -> None:
    """An audit below audit.min_kappa stops the chain (audit.enforce) or, when not enforced, prints a
    warning that says so and why the run goes on."""
    if summary["stable"]:
        return
    found = "no agreement could be measured" if summary["kappa"] is None else f"kappa {summary['kappa']:.3f}"
    problem = (f"audit {found} is below audit.min_kappa {cfg.audit.min_kappa}: the labels and the auditor disagree "
               f"(see {Layout(cfg.output_dir).audit_report})")
    if cfg.audit.enforce:
        raise AuditNotStableError(f"{problem}; revise the prompt and relabel.")
    if cfg.label.backend in STAND_IN_LABELERS and cfg.audit.backend in STAND_IN_LABELERS:
        why = (f"the labeler ({cfg.label.backend}) and auditor ({cfg.audit.backend}) are demo stand-ins for the "
               "LLMs, so the run continues; a real run with audit.enforce stops here")
    else:
        why = "audit.enforce is false, so the run continues with these labels"
    print(f"WARNING: {problem}. {why}. The dataset card records it.", file=sys.stderr, flush=True)


def stage_distill(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .distill import distill

    layout = Layout(cfg.output_dir)
    domains = [x.finefineweb_id for x in resolve(cfg.domains) if x.needs_filter]
    metadata = distill(layout.labels_file, layout.models, cfg.distill, domains, progress)
    return {domain: {"threshold": round(m["threshold"], 4), **{k: round(v, 3) for k, v in m["validation"].items()
                                                                if isinstance(v, float)}, "target_met": m["target_met"]}
            for domain, m in metadata.items()}


def _distill_inputs(cfg: CurationConfig, layout: Layout) -> tuple[dict, list[str]]:
    return {"domains": cfg.domains, "distill": _section(cfg, "distill")}, [layout.labels_file]


def stage_filter(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .pipeline import run_pipeline

    summaries = run_pipeline(cfg, progress, verbose)
    if not summaries:
        return {"submitted": cfg.executor.type}
    return {f"{row['job']}/{row['step']}": f"{row['docs_kept']:,} kept / {row['docs_dropped']:,} dropped"
            for job in summaries.values() for row in job["steps"]}


def _filter_inputs(cfg: CurationConfig, layout: Layout) -> tuple[dict, list[str]]:
    f = cfg.filter
    config = {"domains": cfg.domains, "filter": _section(cfg, "filter"),
              "sample": {"text_key": cfg.sample.text_key, "domain_key": cfg.sample.domain_key},
              "executor": {"tasks": cfg.executor.tasks, "dedup_tasks": cfg.executor.dedup_tasks}}
    return config, [f.input, layout.models, *f.blocklist.word_files, *f.blocklist.url_files,
                    *([f.tokenizer_file] if f.tokenizer_file else [])]


def _filter_reusable(layout: Layout) -> list[str]:
    return [layout.work, layout.dataset_data]  # datatrove skips tasks it logged as complete


def stage_card(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict:
    from .dataset_card import render_dataset_card

    layout = Layout(cfg.output_dir)
    unit = "tokens of " + os.path.basename(cfg.filter.tokenizer_file) if cfg.filter.tokenizer_file else \
        "whitespace-separated words (set filter.tokenizer_file for model tokens)"
    audit = json.loads(open(layout.audit_report, encoding="utf-8").read()) if os.path.exists(layout.audit_report) \
        else None
    render_dataset_card(layout, cfg.card.repo_id, cfg.card.pretty_name, cfg.card.license, unit, source=cfg.card.source,
                        audit=audit)
    return {"card": layout.card, "chart": layout.chart}


def _card_inputs(cfg: CurationConfig, layout: Layout) -> tuple[dict, list[str]]:
    return {"card": _section(cfg, "card"), "filter": {"tokenizer_file": cfg.filter.tokenizer_file}}, \
        [layout.dataset_data]


def _nothing(layout: Layout) -> list[str]:
    return []


@dataclass(frozen=True)
class Stage:
    """One row of the table. `inputs(cfg, layout)`: (the config values it reads, the files and folders it reads);
    `reusable(layout)`: outputs a rerun would pick up instead of rewriting (removed when its inputs changed);
    `check(cfg, summary)`: runs after the stage in the chain and may stop it."""

    name: str
    help: str
    run: Callable[[CurationConfig, bool, bool], dict]
    inputs: Callable[[CurationConfig, Layout], tuple[dict, list[str]]]
    reusable: Callable[[Layout], list[str]] = _nothing
    check: Callable[[CurationConfig, dict], None] | None = None


# The chain, in order: `rexbert curate <name>` for each, `rexbert curate run` for all of them.
STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("sample", "reproducible per-domain samples from FineFineWeb (or local files in its layout)",
          stage_sample, _sample_inputs),
    Stage("label", "binary relevance labels (OpenAI-compatible server; 'rules'/'provenance' backends for demos)",
          stage_label, _label_inputs),
    Stage("audit", "a stronger model relabels a sample; agreement, kappa, confusion, disagreements",
          stage_audit, _audit_inputs, check=check_audit),
    Stage("distill", "per-domain fastText classifiers, held-out validation, thresholds for a target precision",
          stage_distill, _distill_inputs),
    Stage("filter", "the datatrove pipeline: language, quality, blocklists, score threshold, MinHash dedup -> Parquet",
          stage_filter, _filter_inputs, reusable=_filter_reusable),
    Stage("card", "dataset card with stage-by-stage counts and the domain-distribution chart",
          stage_card, _card_inputs),
)}


def run_stage(name: str, cfg: CurationConfig, progress: bool = True, verbose: bool = False, log=print) -> dict:
    """One stage, unless its recorded inputs are unchanged (then its recorded summary); see `fingerprints`.
    Disk-full and permission errors name the path (`rexbert.core.outputs.OutputError`)."""
    from rexbert.core.outputs import writing

    from . import fingerprints

    stage, layout = STAGES[name], Layout(cfg.output_dir)
    inputs, up_to_date = fingerprints.prepare(cfg, name, stage.inputs(cfg, layout), stage.reusable(layout), log)
    if up_to_date is not None:
        return up_to_date
    with writing(cfg.output_dir):
        fingerprints.save_record(cfg, name, inputs)
        summary = stage.run(cfg, progress, verbose)
        if "submitted" not in summary:  # a Slurm/Ray submission has not finished yet
            fingerprints.save_record(cfg, name, inputs, summary)
    return summary


def run_all(cfg: CurationConfig, progress: bool = True, skip: tuple[str, ...] = (),
            verbose: bool = False) -> dict[str, dict]:
    """Every stage of `STAGES` in order but those in `skip`, each skipped when up to date and followed by its
    check; returns each stage's summary."""
    from tqdm.auto import tqdm

    summaries = {}
    for stage in tqdm([s for s in STAGES.values() if s.name not in skip], desc="curate run", unit="stage",
                      disable=not progress):
        summaries[stage.name] = run_stage(stage.name, cfg, progress, verbose)
        if stage.check is not None:
            stage.check(cfg, summaries[stage.name])
    return summaries
