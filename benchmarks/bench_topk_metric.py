"""Scoring cost of top-k masked-token accuracy through the shipped `evaluate` module, per input form, side by side.

`rexbert eval mlm` used to send each masked position's k best ids plus the true id ("default" form); it now sends
the true id's rank ("ranks" form). evaluate encodes every input value into Arrow in Python, so the cost follows the
number of values sent. Each form runs in its own process (peak memory is that process's), against numpy on the same
ranks as the floor.

    python benchmarks/bench_topk_metric.py [--positions 1000000] [--output benchmarks/results/topk_metric_cpu.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

K = (1, 3, 5)


def inputs(positions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks like a weak MLM's (geometric), and the equivalent 5-best id lists and true ids."""
    rng = np.random.default_rng(0)
    ranks = rng.geometric(0.3, positions) - 1
    ranked = np.tile(np.arange(1, 6), (positions, 1))
    truth = np.where(ranks < 5, ranked[np.arange(positions), np.minimum(ranks, 4)], 99)
    return ranks, ranked, truth


def run_one(form: str, positions: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from evaluation.metrics import top_k_from_ranks, top_k_recovery

    ranks, ranked, truth = inputs(positions)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if form == "ranked ids (old)":
        scores = top_k_recovery(ranked, truth, K)
    elif form == "ranks (new)":
        scores = top_k_from_ranks(ranks, K)
    else:
        scores = {k: float((ranks < k).mean()) for k in K}
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # KiB -> MiB
    return {"form": form, "seconds": seconds, "peak_growth_mib": grown, "top1": scores[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.positions)))
        return
    rows = []
    for form in ("ranked ids (old)", "ranks (new)", "numpy"):
        done = subprocess.run([sys.executable, __file__, "--child", form, "--positions", str(args.positions)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert len({round(r["top1"], 6) for r in rows}) == 1, rows  # every form scores the same
    old = rows[0]["seconds"]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"Top-k scoring of {args.positions:,} masked positions (k = 1, 3, 5), one process per form; "
             f"load average {load} (2-core machine).", "",
             "| input form | seconds | peak memory growth (MiB) | vs old |", "|---|---|---|---|"]
    lines += [f"| {r['form']} | {r['seconds']:.2f} | {r['peak_growth_mib']:.0f} | {old / r['seconds']:.1f}x |"
              for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.write_text(table + "\n")


if __name__ == "__main__":
    main()
