"""How bulk CPU embedding should use the cores, side by side in one run: one process whose torch ops each
use every core (intra-op threads, what `rexbert embed` does today) vs one forked worker process per core,
each with one thread, the length-sorted batches dealt to them in turn. fp32 and `--quantize int8`, the
same model, the same tokenized rows; the script checks that every strategy gives the same vectors.

It also runs both precisions on a single thread: the int8 speed-up at one core is the one that worker
processes can keep, and where it is higher than at all cores, something in the model scales worse with
intra-op threads under int8 (on micro: attention, which int8 does not speed up).

    python benchmarks/bench_cpu_workers.py --repeat 4 --output benchmarks/results/cpu_workers.md
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import write_catalog, write_models
from cpu_cli import write_report

from evaluation.cpu_runtime import usable_cores
from evaluation.embedding import encode_ids, load_encoder, tokenize


def encode_on(model, rows: list[list[int]], threads: int, workers: int = 1) -> np.ndarray:
    """`rexbert embed`'s encoder: `threads` intra-op threads, or `workers` forked processes (`--cpu-workers`)."""
    torch.set_num_threads(threads)
    return encode_ids(model, rows, workers=workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--rows", type=int, default=655, help="catalog rows (bench_embed's ESCI products)")
    parser.add_argument("--repeat", type=int, default=4, help="timed passes of each case, round robin")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    cores = usable_cores()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    uptime = subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-workers-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    catalog = work / "catalog.jsonl"
    write_catalog(catalog, args.rows)
    folder = write_models(args.preset, work)["rexbert"]
    models = {}
    for precision, quantize in (("fp32", None), ("int8", "int8")):
        models[precision], tokenizer = load_encoder(folder, device="cpu", quantize=quantize)
    texts = [json.loads(line)["text"] for line in catalog.open()]
    rows = tokenize(tokenizer, texts, 512)[0]
    tokens = sum(map(len, rows))
    cases = {f"{precision}, {label}": run for precision, model in models.items() for label, run in (
        (f"1 process x {cores} threads", lambda m=model: encode_on(m, rows, cores)),
        (f"{cores} processes x 1 thread", lambda m=model: encode_on(m, rows, cores, workers=cores)),
        ("1 process x 1 thread", lambda m=model: encode_on(m, rows, 1)),
    )}
    reference = {precision: encode_on(model, rows, cores) for precision, model in models.items()}
    for name, run in cases.items():
        if not np.array_equal(run(), reference[name.split(",")[0]]):
            raise SystemExit(f"{name}: vectors differ from the intra-op run")
    speeds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            speeds[name].append(tokens / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in speeds.items()}
    command = f"`python benchmarks/bench_cpu_workers.py {' '.join(sys.argv[1:])}`"
    header = (f"{command}, {started}: {args.preset}, {len(rows)} rows, {tokens:,} real tokens (cut to 512), batch 32 "
              f"length-sorted, torch {torch.__version__}, {cores} cores, median of "
              f"{args.repeat} round-robin passes. Load at start: `{uptime}`. Every strategy gave the same vectors "
              "(np.array_equal).")
    title = "## Bulk CPU embedding: intra-op threads vs one worker process per core (`benchmarks/bench_cpu_workers.py`)"
    lines = [title, "", header, "", "| case | real tokens/s (median [range]) | int8 vs fp32, same strategy |",
             "|---|---|---|"]
    for name in cases:
        precision, strategy = name.split(", ")
        ratio = f"{median[name] / median['fp32, ' + strategy]:.2f}x" if precision == "int8" else ""
        lines.append(f"| {name} | {median[name]:,.0f} [{min(speeds[name]):,.0f}-{max(speeds[name]):,.0f}] | {ratio} |")
    lines += ["", f"Load at end: os.getloadavg() = {tuple(round(x, 2) for x in os.getloadavg())}."]
    report = "\n".join(lines)
    print(report)
    write_report(args.output, report)


if __name__ == "__main__":
    main()
