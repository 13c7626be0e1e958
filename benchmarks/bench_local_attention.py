"""Local (sliding-window) attention on CPU, side by side in one run: the three ways the sdpa backend can attend
a rectangle of documents with a +-64 window, on the same inputs, forward only (inference) and forward + backward.

  rectangle    the whole `(n, heads, L, L)` rectangle with the band mask (below 5 blocks of 64 tokens)
  slices       each 64-token block of queries against the slice of keys within its reach, as views (from 5 blocks)
  windows      each block against its own and the two neighbouring key blocks, copied once (training, 16+ blocks)

All three are exact (the script checks they agree within 1e-5); the model picks by length and by whether a
backward pass follows (`modeling_rexbert.unpadding.LOCAL_SLICES_FROM` / `LOCAL_BLOCKS_FROM`), and this is the
measurement behind those thresholds. Milliseconds per call, best of `--repeat`.

    python benchmarks/bench_local_attention.py --output benchmarks/results/local_attention_cpu.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import torch

from modeling_rexbert import attention_rexbert
from modeling_rexbert.unpadding import AttentionBucket

HALF_WINDOW, BLOCK, SCALE = 64, 64, 0.125
# (heads, rows, lengths): micro's 4 heads of 64 and base's 12, rows per rectangle as length-sorted batches give
SHAPES = [(4, 32, (192, 256, 384, 512, 1024)), (12, 8, (192, 256, 384, 512, 1024, 2048, 4096))]


def attend(way: str, q, k, v, bucket: AttentionBucket) -> torch.Tensor:
    if way == "rectangle":
        return attention_rexbert._sdpa(q, k, v, bucket._full_mask(HALF_WINDOW), 0.0, SCALE)
    if way == "slices":
        return attention_rexbert._attend_local_slices(attention_rexbert._sdpa, q, k, v, bucket, HALF_WINDOW, BLOCK,
                                                      0.0, SCALE)
    return attention_rexbert._attend_local_blocks(attention_rexbert._sdpa, q, k, v,
                                                  bucket._block_mask(HALF_WINDOW, BLOCK), BLOCK, 0.0, SCALE)


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    ways = ("rectangle", "slices", "windows")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = ["## Local attention on CPU (`benchmarks/bench_local_attention.py`)", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {torch.get_num_threads()} threads, torch "
             f"{torch.__version__}, fp32, window +-{HALF_WINDOW}, blocks of {BLOCK}; best of {args.repeat}. "
             f"Load at start: `{uptime}`.", "",
             "| heads x rows | tokens | pass | rectangle ms | slices ms | windows ms | slices vs rectangle | "
             "slices vs windows |", "|---|---|---|---|---|---|---|---|"]
    for heads, rows, lengths in SHAPES:
        for length in lengths:
            bucket = AttentionBucket(rows, length, torch.device("cpu"), None, None, None)
            torch.manual_seed(0)
            q, k, v = (torch.randn(rows, length, heads, 64).transpose(1, 2) for _ in range(3))
            with torch.inference_mode():
                outs = {way: attend(way, q, k, v, bucket) for way in ways}
                for way in ways[1:]:
                    torch.testing.assert_close(outs[way], outs["rectangle"], atol=1e-5, rtol=0)
                infer = {way: best_ms(lambda w=way: attend(w, q, k, v, bucket), args.repeat) for way in ways}
            leaves = [x.detach().requires_grad_() for x in (q, k, v)]

            def train(way):
                attend(way, *leaves, bucket).sum().backward()

            trained = {way: best_ms(lambda w=way: train(w), max(2, args.repeat // 2)) for way in ways}
            for name, ms in (("forward", infer), ("forward + backward", trained)):
                lines.append(f"| {heads} x {rows} | {length:,} | {name} | {ms['rectangle']:.1f} | {ms['slices']:.1f} | "
                             f"{ms['windows']:.1f} | {ms['rectangle'] / ms['slices']:.2f}x | "
                             f"{ms['windows'] / ms['slices']:.2f}x |")
            print(lines[-2], lines[-1], sep="\n", flush=True)
    lines += ["", f"Load at end: os.getloadavg() = {tuple(round(x, 2) for x in os.getloadavg())}."]
    if args.output:
        args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
