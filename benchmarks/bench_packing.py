"""Best-fit packing at start-up: the reference (`split_documents` + `best_fit_pack`, Python per piece) vs
`pack_rows` (numpy, one pass per piece length), side by side in one run, on the bundled corpus's document
lengths repeated 1x, 20x and 200x (the demo's general source, then sources 20 and 200 times its size). Both
give the same rows (checked here on every size, as `tests/train/test_training_packing.py` does on more cases).

    python benchmarks/bench_packing.py --output benchmarks/results/packing_cpu.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modeling_rexbert import load_tokenizer  # noqa: E402
from training.packing import best_fit_pack, pack_rows, split_documents  # noqa: E402
from training.shards import ShardedCorpus  # noqa: E402
from training.tokenize_job import tokenize_to_shards  # noqa: E402


def timed(function, *args, repeats: int = 3):
    """Best of `repeats` (the machine is shared: a single run can be descheduled for a while)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 20, 200])
    parser.add_argument("--row-length", type=int, default=128)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tokenize_to_shards(ROOT / "rexbert" / "corpus" / "general.jsonl", load_tokenizer(), tmp, progress=False)
        lengths = ShardedCorpus(tmp).lengths
    rows = []
    pack_rows(lengths[:10], args.row_length), best_fit_pack(split_documents(lengths[:10], args.row_length),
                                                            args.row_length)  # warm-up: first calls not timed
    for size in args.sizes:
        tiled = np.tile(lengths, size)
        reference_s, reference = timed(lambda: best_fit_pack(split_documents(tiled, args.row_length),
                                                             args.row_length))
        numpy_s, layout = timed(pack_rows, tiled, args.row_length)
        same = len(layout) == len(reference) and all(layout.row(i) == reference[i] for i in range(len(layout)))
        rows.append((size, len(tiled), len(layout), reference_s, numpy_s, same))
        print(rows[-1], flush=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.split("load average:")[-1].strip()
    lines = [f"<!-- python benchmarks/bench_packing.py {' '.join(sys.argv[1:])} -->",
             f"Packing the bundled general corpus's document lengths, repeated, into rows of {args.row_length} tokens, best of 3 "
             f"({os.cpu_count()} CPU cores shared with other jobs; load: {load}).", "",
             "| source | documents | rows | reference (Python per piece) | `pack_rows` (numpy) | ratio | same rows |",
             "|---|---|---|---|---|---|---|"]
    for size, documents, count, reference_s, numpy_s, same in rows:
        lines.append(f"| {size}x demo | {documents:,} | {count:,} | {reference_s:.3f} s | {numpy_s:.3f} s | "
                     f"{reference_s / numpy_s:.1f}x | {'yes' if same else 'NO'} |")
    report = "\n".join(lines)
    print(report)
    if args.output:
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
