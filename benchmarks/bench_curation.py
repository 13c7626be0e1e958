"""Curation throughput on CPU, side by side in one run: our filter + score stage and MinHash
signatures vs datatrove's stock blocks with default settings, on the bundled text; plus how many
e-commerce documents stock vs product-tuned quality thresholds drop.

    python benchmarks/bench_curation.py --output benchmarks/results/curation_cpu.md

One process, one thread (numbers are per core). Each timed pass runs over fresh copies of the
documents (C4 rewrites text in place); median of --rounds after a warm-up pass.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_corpus(tmp: str):
    from datatrove.data import Document

    from curation.demo import build_demo_corpus

    build_demo_corpus(str(ROOT / "tests" / "data"), tmp)
    docs = []
    for domain in ("hobby", "news", "photo"):
        for line in open(os.path.join(tmp, domain, f"{domain}_000000.jsonl"), encoding="utf-8"):
            r = json.loads(line)
            origin = r["url"].split("/")[3]
            meta = {"domain": domain, "source_label": r["source_label"], "origin": origin, "url": r["url"]}
            docs.append(Document(text=r["text"], id=r["id"], metadata=meta))
    return docs


def train_classifiers(tmp: str, docs) -> str:
    from curation.config import DistillConfig
    from curation.distill import distill

    labels = os.path.join(tmp, "labels.jsonl")
    with open(labels, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d.id, "domain": d.metadata["domain"], "text": d.text,
                                "label": d.metadata["source_label"]}) + "\n")
    models = os.path.join(tmp, "classifiers")
    distill(labels, models, DistillConfig(validation_fraction=0.25), ["hobby", "news"], progress=False)
    return models


def run_steps(steps, docs) -> int:
    data = iter(copy.deepcopy(docs))
    for step in steps:
        data = step.run(data, 0, 1)
    return sum(1 for _ in data) if data is not None else 0  # MinHash signatures consume and return None


def time_steps(make_steps, docs, rounds: int) -> tuple[float, int]:
    steps = make_steps()
    run_steps(steps, docs)  # warm-up: loads spaCy, py3langid, fastText
    times, kept = [], 0
    for _ in range(rounds):
        steps = make_steps()
        run_steps(steps, docs[:1])  # models load outside the timed pass
        copies = copy.deepcopy(docs)
        start = time.perf_counter()
        data = iter(copies)
        for step in steps:
            data = step.run(data, 0, 1)
        kept = sum(1 for _ in data) if data is not None else 0
        times.append(time.perf_counter() - start)
    return statistics.median(times), kept


def quality_table(docs) -> list[str]:
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter

    from curation.filters import ProductC4Filter, ProductGopherFilter

    groups = {"ESCI product listings": "shop-esci", "Amazon reviews (Hu & Liu)": "shop-reviews",
              "Epinions pros/cons lists": "shop-pros_cons", "Canon G3 reviews": "camera-reviews",
              "general text (speeches; control)": "speech"}
    rows = ["| documents | n | stock Gopher drops | stock C4 drops | stock both | tuned Gopher drops | "
            "tuned C4 drops | tuned both | main stock reasons |", "|---|---|---|---|---|---|---|---|---|"]
    for label, origin in groups.items():
        group = [d for d in docs if d.metadata["origin"] == origin]
        counts, reasons = Counter(), Counter()
        for d in group:
            results = {}
            for name, f in (("sg", GopherQualityFilter()), ("sc", C4QualityFilter()), ("tg", ProductGopherFilter()),
                            ("tc", ProductC4Filter())):
                r = f.filter(copy.deepcopy(d))
                results[name] = r is not True
                if r is not True and name.startswith("s"):
                    reasons[r[1] if isinstance(r, tuple) else "dropped"] += 1
            counts["sg"] += results["sg"]
            counts["sc"] += results["sc"]
            counts["s"] += results["sg"] or results["sc"]
            counts["tg"] += results["tg"]
            counts["tc"] += results["tc"]
            counts["t"] += results["tg"] or results["tc"]
        top = ", ".join(f"{k} {v}" for k, v in reasons.most_common(3)) or "-"
        n = len(group)
        rows.append(f"| {label} | {n} | {counts['sg']} | {counts['sc']} | "
                    f"{counts['s']} ({100 * counts['s'] / n:.0f}%) | "
                    f"{counts['tg']} | {counts['tc']} | {counts['t']} ({100 * counts['t'] / n:.0f}%) | {top} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="passes over the bundled corpus per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="benchmarks/results/curation_cpu.md")
    args = parser.parse_args()

    import datatrove
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter

    from curation.config import CurationConfig, DedupConfig
    from curation.dedup import signature_step
    from curation.pipeline import filter_steps

    tmp = tempfile.mkdtemp(prefix="bench-curation-")
    base = load_corpus(os.path.join(tmp, "corpus"))
    # the quality table: e-commerce groups and a general-text control (non-English and mirrors left out)
    ecommerce = [d for d in base
                 if not d.metadata["origin"].startswith("foreign-") and d.metadata["origin"] != "mirror"]
    models = train_classifiers(tmp, base)

    docs = base * args.repeat
    n_docs = len(docs)
    n_bytes = sum(len(d.text.encode("utf-8")) for d in docs)

    cfg = CurationConfig(output_dir=tmp, domains=["hobby", "news", "photo"])
    os.makedirs(os.path.join(tmp, "classifiers"), exist_ok=True)
    for name in os.listdir(models):
        if not os.path.exists(os.path.join(tmp, "classifiers", name)):
            os.link(os.path.join(models, name), os.path.join(tmp, "classifiers", name))

    cases = [
        ("filter + score", "ours: language ID, boilerplate, tuned Gopher + C4, blocklists, fastText score",
         lambda: filter_steps(cfg),
         "stock: GopherQualityFilter() + C4QualityFilter()", lambda: [GopherQualityFilter(), C4QualityFilter()]),
        ("MinHash signatures", "ours: 5-gram, 14x8, 64-bit, regex words",
         lambda: [signature_step(os.path.join(tmp, "ours"), DedupConfig())],
         "stock: MinhashDedupSignature() defaults",
         lambda: [MinhashDedupSignature(output_folder=os.path.join(tmp, "stock"))]),
    ]
    rows = ["| stage | implementation | docs/s per core | MB/s per core | docs out | ratio ours/stock |",
            "|---|---|---|---|---|---|"]
    measured = {}
    for stage, ours_name, ours, stock_name, stock in cases:
        t_ours, kept_ours = time_steps(ours, docs, args.rounds)
        t_stock, kept_stock = time_steps(stock, docs, args.rounds)
        measured[stage] = (t_ours, t_stock)
        for name, t, kept in ((ours_name, t_ours, kept_ours), (stock_name, t_stock, kept_stock)):
            ratio = f"{t_stock / t_ours:.2f}x" if name is ours_name else ""
            rows.append(f"| {stage} | {name} | {n_docs / t:,.0f} | {n_bytes / t / 1e6:.2f} | "
                        f"{kept if stage == 'filter + score' else '-'} | {ratio} |")

    # bytes per RexBERT token on the same text, to turn MB/s into CPU-hours per 350B tokens
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(ROOT / "modeling_rexbert" / "tokenizer" / "tokenizer.json"))
    n_tokens = sum(len(tok.encode(d.text, add_special_tokens=False).ids) for d in base)
    bytes_per_token = sum(len(d.text.encode("utf-8")) for d in base) / n_tokens
    total_s = sum(t for t, _ in measured.values())
    tokens_per_s = n_bytes / bytes_per_token / total_s
    cpu_hours = 350e9 / tokens_per_s / 3600

    header = (f"Curation throughput on CPU ({platform.processor() or platform.machine()}, 1 process, 1 thread), "
              f"datatrove {datatrove.__version__ if hasattr(datatrove, '__version__') else '0.10.1'}, Python "
              f"{platform.python_version()}: the bundled demo corpus ({len(base)} docs, "
              f"{sum(len(d.text.encode()) for d in base) / 1e3:.0f} kB) x {args.repeat}, "
              f"median of {args.rounds} rounds.")
    extrapolation = (f"Ours, filter + score then MinHash signatures: {tokens_per_s:,.0f} tokens/s per core at "
                     f"{bytes_per_token:.2f} bytes per RexBERT token on this text -> {cpu_hours:,.0f} CPU-hours per "
                     f"350B input tokens (signature stage included; MinHash buckets/cluster and I/O not included).")
    quality = quality_table(ecommerce)
    text = "\n".join([header, "", *rows, "", extrapolation, "",
                      "Documents dropped by stock vs product-tuned quality thresholds "
                      "(`curation/filters/quality.py`), same documents:", "", *quality, ""])
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
