"""Dataset card from the pipeline's own datatrove stats: stage-by-stage documents and tokens kept
and dropped (by reason), rejects of the reader, the domain distribution chart (paper Figure 1)."""

from __future__ import annotations

import glob
import os
from collections import Counter

from .job_stats import stat_total, load_job_stats, step_rows
from .layout import Layout
from .plots import domain_distribution_png


def domain_counts(dataset_dir: str) -> tuple[Counter, Counter]:
    """Documents and (whitespace) words per domain in the written Parquet shards."""
    import pyarrow.parquet as pq

    docs, words = Counter(), Counter()
    for path in sorted(glob.glob(os.path.join(dataset_dir, "data", "*.parquet"))):
        table = pq.read_table(path, columns=["text", "domain"])
        for text, domain in zip(table.column("text").to_pylist(), table.column("domain").to_pylist()):
            docs[domain] += 1
            words[domain] += len(text.split())
    return docs, words


def decontamination_rows(layout: Layout) -> list[str]:
    """Per eval set: texts indexed, texts too short to match, documents removed (from the filter
    job's stats); empty when decontamination did not run."""
    from .decont import load_summary

    summary = load_summary(layout.decont_index)
    if not summary:
        return []
    step = next((s for s in load_job_stats(layout, "1_filter") if "Decontamination" in s["name"]), {"stats": {}})
    stats = {k: stat_total(v) for k, v in step["stats"].items()}
    n = summary["n_grams"]
    rows = [f"Documents sharing a {n}-word n-gram (lowercased, punctuation removed) with an evaluation text "
            f"are removed. Eval texts shorter than {n} words cannot match and are counted as too short.", "",
            "| eval set | files | eval texts | too short | n-grams indexed | documents removed |",
            "|---|---|---|---|---|---|"]
    for name, s in summary["eval_sets"].items():
        files = ", ".join(os.path.basename(f) for f in s["files"])
        rows.append(f"| {name} | {files} | {s['texts']:,} | {s['too_short']:,} | {s['ngrams']:,} | "
                    f"{stats.get(f'contaminated_{name}', 0):,} |")
    return rows


def _fmt(value) -> str:
    return "-" if value is None else f"{value:,}"


def audit_note(audit: dict | None) -> str:
    """The card's account of the label audit: agreement, and a warning when it is below the minimum."""
    if audit is None:
        return "The labels were not audited."
    kappa = "unmeasured" if audit.get("kappa") is None else f"{audit['kappa']:.3f}"
    accuracy = "-" if audit.get("accuracy") is None else f"{100 * audit['accuracy']:.1f}%"
    text = (f"A second labeler (`{audit.get('audit_labeler')}`) relabelled {audit.get('n', 0):,} documents labelled by "
            f"`{audit.get('primary_labeler')}`: agreement {accuracy}, Cohen's kappa {kappa} (configured minimum "
            f"{audit.get('min_kappa')}).")
    if not audit.get("stable"):
        text += (f"\n\n> **Warning:** the audit's kappa is below the configured minimum of {audit.get('min_kappa')}: "
                 "the relevance labels behind the classifiers are not confirmed by the audit, so the filtering may "
                 "keep or drop the wrong documents.")
    return text


def render_dataset_card(layout: Layout, repo_id: str, pretty_name: str, license: str, token_unit: str = "words",
                source: str = "FineFineWeb (`m-a-p/FineFineWeb`)", audit: dict | None = None):
    """Writes `README.md` and `domain_distribution.png` into the dataset folder; returns the DatasetCard.
    `source`: where the documents came from (markdown); `audit`: the audit stage's report, if it ran."""
    from huggingface_hub import DatasetCard, DatasetCardData

    rows = step_rows(layout)
    if not rows:
        raise FileNotFoundError(f"no pipeline stats under {layout.work}: run `rexbert curate filter` first")
    docs, words = domain_counts(layout.dataset)
    if not docs:
        raise FileNotFoundError(f"no Parquet shards in {layout.dataset}/data")
    domain_distribution_png(os.path.join(layout.dataset, "domain_distribution.png"), dict(words),
                            f"{pretty_name}: domain distribution", unit="words")
    total_docs, total_words = sum(docs.values()), sum(words.values())
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
    decont_rows = decontamination_rows(layout)
    decont_section = "\n".join(["## Decontamination", "", *decont_rows, ""]) if decont_rows else ""
    data = DatasetCardData(license=license, language=["en"], pretty_name=pretty_name,
                           task_categories=["fill-mask", "text-classification"], tags=["e-commerce", "datatrove"],
                           configs=[{"config_name": "default", "data_files": [{"split": "train",
                                                                               "path": "data/*.parquet"}]}])
    content = f"""---
{data.to_yaml()}
---

# {pretty_name}

Commerce-relevant English text filtered from {source} with the
RexBERT curation pipeline (`rexbert curate`; paper §3): Table 1 domain selection, LLM relevance
labels distilled into per-domain fastText classifiers with per-domain thresholds, English language
ID, URL blocklists, boilerplate and advertisement removal, product-tuned quality filters, profanity/adult
filtering, decontamination against the evaluation sets, and MinHash near-dedup.

```python
from datasets import load_dataset
ds = load_dataset("{repo_id}", split="train")
```

License: `{license}` (that of the source documents).

Columns: `text`, `domain` (FineFineWeb domain id), `score` (classifier relevance score; empty for
directly selected domains without a classifier), `source_id`, `provenance` (JSON: source file and
line, language and its score, the stages passed).

**{total_docs:,} documents, {total_words:,} words.**

## Label audit

{audit_note(audit)}

## Domain distribution

Share of the kept text by domain, counted in whitespace-separated words:

![domain distribution](domain_distribution.png)

{chr(10).join(domain_table)}

{decont_section}
## Stage by stage

Counts come from datatrove's stats files of each job. Tokens are {token_unit}. The reader's
"dropped" are records rejected as unusable input (listed with file and line in the rejects files).

{chr(10).join(stage_table)}
"""
    card = DatasetCard(content)
    card.save(os.path.join(layout.dataset, "README.md"))
    return card
