"""Dataset card from the pipeline's own datatrove stats: stage-by-stage documents and tokens kept
and dropped (by reason), rejects of the reader, the domain distribution chart (paper Figure 1)."""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path

from .job_stats import stat_total, load_job_stats, step_rows
from .layout import Layout
from .plots import domain_distribution_png

TEMPLATES = Path(__file__).with_name("templates")  # the card's prose (Jinja), shipped as package data


def domain_counts(data_dir: str) -> tuple[Counter, Counter]:
    """Documents and (whitespace) words per domain in the written Parquet shards (`Layout.dataset_data`)."""
    import pyarrow.parquet as pq

    docs, words = Counter(), Counter()
    for path in sorted(glob.glob(os.path.join(data_dir, "*.parquet"))):
        table = pq.read_table(path, columns=["text", "domain"])
        for text, domain in zip(table.column("text").to_pylist(), table.column("domain").to_pylist()):
            docs[domain] += 1
            words[domain] += len(text.split())
    return docs, words


def decontamination_facts(layout: Layout) -> dict | None:
    """{"n": the n-gram length, "table": per eval set, texts indexed, texts too short to match and documents
    removed (from the filter job's stats)}; None when decontamination did not run."""
    from .decont import load_summary

    summary = load_summary(layout.decont_index)
    if not summary:
        return None
    step = next((s for s in load_job_stats(layout, "1_filter") if "Decontamination" in s["name"]), {"stats": {}})
    stats = {k: stat_total(v) for k, v in step["stats"].items()}
    rows = ["| eval set | files | eval texts | too short | n-grams indexed | documents removed |",
            "|---|---|---|---|---|---|"]
    for name, s in summary["eval_sets"].items():
        files = ", ".join(os.path.basename(f) for f in s["files"])
        rows.append(f"| {name} | {files} | {s['texts']:,} | {s['too_short']:,} | {s['ngrams']:,} | "
                    f"{stats.get(f'contaminated_{name}', 0):,} |")
    return {"n": summary["n_grams"], "table": "\n".join(rows)}


def _fmt(value) -> str:
    return "-" if value is None else f"{value:,}"


def _template(name: str):
    import jinja2

    return jinja2.Template((TEMPLATES / name).read_text(encoding="utf-8"))


def audit_note(audit: dict | None) -> str:
    """The card's account of the label audit (`templates/audit_note.md`): agreement, and a warning when it is
    below the minimum."""
    facts = None if audit is None else {
        "audit_labeler": audit.get("audit_labeler"), "primary_labeler": audit.get("primary_labeler"),
        "n": f"{audit.get('n', 0):,}", "min_kappa": audit.get("min_kappa"), "stable": audit.get("stable"),
        "kappa": "unmeasured" if audit.get("kappa") is None else f"{audit['kappa']:.3f}",
        "accuracy": "-" if audit.get("accuracy") is None else f"{100 * audit['accuracy']:.1f}%"}
    return _template("audit_note.md").render(audit=facts)


def render_dataset_card(layout: Layout, repo_id: str, pretty_name: str, license: str, token_unit: str = "words",
                source: str = "FineFineWeb (`m-a-p/FineFineWeb`)", audit: dict | None = None):
    """Writes `README.md` and `domain_distribution.png` into the dataset folder; returns the DatasetCard.
    `source`: where the documents came from (markdown); `audit`: the audit stage's report, if it ran.
    The card's words are `templates/dataset_card.md` (`DatasetCard.from_template`); this assembles its numbers."""
    from huggingface_hub import DatasetCard, DatasetCardData

    rows = step_rows(layout)
    if not rows:
        raise FileNotFoundError(f"no pipeline stats under {layout.work}: run `rexbert curate filter` first")
    docs, words = domain_counts(layout.dataset_data)
    if not docs:
        raise FileNotFoundError(f"no Parquet shards in {layout.dataset_data}")
    domain_distribution_png(layout.chart, dict(words), f"{pretty_name}: domain distribution", unit="words")
    total_words = sum(words.values())
    stage_table = ["| job | step | docs in | kept | dropped | tokens kept | tokens dropped | dropped by reason |",
                   "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(r["reasons"].items())) or "-"
        stage_table.append(f"| {r['job']} | {r['step']} | {_fmt(r['docs_in'])} | {_fmt(r['docs_kept'])} | "
                           f"{_fmt(r['docs_dropped'])} | {_fmt(r['tokens_kept'])} | {_fmt(r['tokens_dropped'])} | "
                           f"{reasons} |")
    domain_table = ["| domain | documents | words | share of words |", "|---|---|---|---|"]
    for domain, n in sorted(words.items(), key=lambda kv: kv[1], reverse=True):
        domain_table.append(f"| {domain} | {docs[domain]:,} | {n:,} | {100 * n / total_words:.1f}% |")
    data = DatasetCardData(license=license, language=["en"], pretty_name=pretty_name,
                           task_categories=["fill-mask", "text-classification"], tags=["e-commerce", "datatrove"],
                           configs=[{"config_name": "default", "data_files": [{"split": "train",
                                                                               "path": "data/*.parquet"}]}])
    card = DatasetCard.from_template(
        data, template_path=str(TEMPLATES / "dataset_card.md"), pretty_name=pretty_name, repo_id=repo_id,
        license=license, source=source, token_unit=token_unit, audit_note=audit_note(audit),
        total_docs=f"{sum(docs.values()):,}", total_words=f"{total_words:,}", domain_table="\n".join(domain_table),
        decontamination=decontamination_facts(layout), stage_table="\n".join(stage_table))
    card.save(layout.card)
    return card
