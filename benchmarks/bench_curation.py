"""Curation throughput on CPU, side by side in one run: our filter + score stage and MinHash
signatures vs datatrove's stock blocks with default settings, on the bundled text; plus how many
e-commerce documents stock vs product-tuned quality thresholds drop; plus the whole filter job
(reader -> filters -> writer -> signatures) on datatrove's Local and Ray executors, same input, same
cores, as docs/s per core and their ratio.

    python benchmarks/bench_curation.py --output benchmarks/results/curation_cpu.md

One process, one thread for the step timings (numbers are per core). Each timed pass runs over fresh
copies of the documents (C4 rewrites text in place); median of --rounds after a warm-up pass. The
executor timings are wall clock over `--cores` workers, executor start-up included.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import json
import os
import platform
import shutil
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

    from curation.demo_corpus import write_demo_corpus

    write_demo_corpus(tmp, str(ROOT / "tests" / "data"))
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


def write_input(folder: str, docs, files: int) -> int:
    """`docs` as FineFineWeb-layout jsonl, spread over `files` files per domain; returns the count."""
    by_domain: dict[str, list] = {}
    for i, d in enumerate(docs):
        by_domain.setdefault(d.metadata["domain"], []).append(
            {"id": f"{d.id}-{i}", "text": d.text, "domain": d.metadata["domain"], "url": d.metadata["url"]})
    for domain, rows in by_domain.items():
        os.makedirs(os.path.join(folder, domain), exist_ok=True)
        for k in range(files):
            with open(os.path.join(folder, domain, f"{domain}_{k:06d}.jsonl"), "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows[k::files])
    return len(docs)


SIZING_TOKENS = 4.4e12  # FineFineWeb tokens that go through the filter job (paper §3)


def executor_throughput(tmp: str, docs, models: str, cores: int, bytes_per_token: float) -> list[str]:
    """The filter job (`1_filter` of the pipeline) on Local and on Ray over the same files and cores, and
    what Ray's rate means for the 4.4T-token FineFineWeb run. Each executor runs twice, over one
    few documents per task and over all of `docs`: the difference is the per-document rate without task
    start-up (loading models, the decontamination index), which a shard of a real run amortises.
    Sized by tokens, since documents vary in length."""
    import shutil

    import ray
    from datatrove.executor import LocalPipelineExecutor, RayPipelineExecutor

    from curation.config import config_from_dict
    from curation.pipeline import build_pipelines

    tasks = 2 * cores
    inputs = {"small": docs[:tasks * 3], "full": docs}  # small: 3 documents a task
    seconds = {}
    for kind in ("local", "ray"):
        if kind == "ray":
            ray.init(num_cpus=cores, include_dashboard=False)
        for size, subset in inputs.items():
            folder = os.path.join(tmp, f"executor-{kind}-{size}")
            write_input(os.path.join(folder, "input"), subset, files=tasks)
            shutil.copytree(models, os.path.join(folder, "classifiers"))
            cfg = config_from_dict({"output_dir": folder, "domains": ["hobby", "news", "photo"],
                                    "filter": {"input": os.path.join(folder, "input")}, "executor": {"tasks": tasks}})
            steps, _ = build_pipelines(cfg)["1_filter"]
            logs = os.path.join(folder, "logs")
            executor = (LocalPipelineExecutor(steps, tasks=tasks, workers=cores, logging_dir=logs) if kind == "local"
                        else RayPipelineExecutor(steps, tasks=tasks, workers=cores, logging_dir=logs, mem_per_cpu_gb=0.5))
            start = time.perf_counter()
            executor.run()
            seconds[kind, size] = time.perf_counter() - start
        if kind == "ray":
            ray.shutdown()

    def tokens(subset) -> float:
        return sum(len(d.text.encode("utf-8")) for d in subset) / bytes_per_token

    extra_docs = len(docs) - len(inputs["small"])
    extra_tokens = tokens(docs) - tokens(inputs["small"])
    rows = ["| executor | docs | tasks | cores | wall s (3 docs/task) | wall s (all) | docs/s per core "
            "(all, start-up included) | docs/s per core (start-up excluded) | tokens/s per core (start-up excluded) |",
            "|---|---|---|---|---|---|---|---|---|"]
    rate = {}
    for kind, label in (("local", "Local (multiprocess)"), ("ray", f"Ray (local instance, `ray.init(num_cpus={cores})`)")):
        small, full = seconds[kind, "small"], seconds[kind, "full"]
        marginal = max(full - small, 1e-9) * cores
        rate[kind] = extra_tokens / marginal
        rows.append(f"| {label} | {len(docs):,} | {tasks} | {cores} | {small:.1f} | {full:.1f} | "
                    f"{len(docs) / full / cores:,.0f} | {extra_docs / marginal:,.0f} | {rate[kind]:,.0f} |")
    cpu_hours = SIZING_TOKENS / rate["ray"] / 3600
    return rows + ["", f"Ray / Local, start-up excluded: {rate['ray'] / rate['local']:.2f}x. Sizing from Ray's rate: "
                   f"{SIZING_TOKENS / 1e12:.1f}T input tokens / {rate['ray']:,.0f} tokens/s per core = {cpu_hours:,.0f} "
                   f"CPU-hours for the filter job, {cpu_hours / 1000:,.0f} hours on 1,000 cores (MinHash buckets, "
                   "clustering and the write job come on top)."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=8, help="passes over the bundled corpus per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="benchmarks/results/curation_cpu.md")
    parser.add_argument("--cores", type=int, default=2, help="workers for the Local vs Ray executor comparison")
    parser.add_argument("--executor-repeat", type=int, default=20, help="passes over the corpus for that comparison")
    parser.add_argument("--skip-executors", action="store_true", help="no Local vs Ray comparison (needs ray)")
    args = parser.parse_args()

    import datatrove
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter

    from curation.config import CurationConfig, DedupConfig
    from curation.dedup import signature_step
    from curation.pipeline import filter_steps

    tmp = tempfile.mkdtemp(prefix="bench-curation-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
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
    executors = [] if args.skip_executors else [
        f"The filter job (reader, filters, decontamination, writer, MinHash signatures) on datatrove's executors, "
        f"same {args.executor_repeat}x corpus, {args.cores} cores, wall clock with executor start-up:", "",
        *executor_throughput(tmp, base * args.executor_repeat, models, args.cores, bytes_per_token), ""]
    text = "\n".join([header, "", *rows, "", extrapolation, "",
                      "Documents dropped by stock vs product-tuned quality thresholds "
                      "(`curation/filters/quality.py`), same documents:", "", *quality, "", *executors])
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
