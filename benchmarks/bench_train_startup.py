"""`rexbert train` start-up time (process start to its first optimizer step) with a source 1x and 20x
the size of the demo's general text, side by side.

For each size: `rexbert tokenize` builds the shards (timed), then `rexbert train` is started `--repeats`
times on them; the time to the first step is when `metrics.jsonl` gets its first `train/loss` line
(after the step-0 held-out evaluation, the same at both sizes). For comparison, `rexbert train` is also
started once with no shards built, so that it tokenizes the source in its own process first (the small
local case, and what every start did before `rexbert tokenize` existed). The model is the demo's phase-1
model; each run is stopped after its first step.

    python benchmarks/bench_train_startup.py --output benchmarks/results/train_startup.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO_SOURCE = ROOT / "rexbert" / "corpus" / "general.jsonl"  # the demo's general source
PHASE = {
    "name": "phase1", "phase": 1,
    "model": {"preset": "micro", "overrides": {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 2,
                                               "initializer_range": 0.1}},
    "data": {"sequence_length": 128, "eval_documents": 100, "eval_rows": 16},
    "masking": {"rate": 0.3, "mean_span": 1.0},
    "optimizer": {"lr": 3e-3, "weight_decay": 3e-4},
    "batch": {"micro_batch_size": 16},
    "run": {"max_steps": 1000, "log_every": 1, "eval_every": 1000, "save_every": 1000, "log_with": []},
}


def rexbert(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "rexbert.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def time_tokenize(config: Path, root: Path) -> float:
    start = time.perf_counter()
    process = rexbert("tokenize", "--config", str(config), "--output-dir", str(root), "--no-progress")
    _, err = process.communicate(timeout=1800)
    if process.returncode:
        raise RuntimeError(f"rexbert tokenize failed: {err}")
    return time.perf_counter() - start


def time_to_first_step(config: Path, root: Path) -> float:
    """Seconds from starting `rexbert train` to its first logged step; the run is then stopped."""
    for old in (root / "phase1", root / "phase1-run"):
        shutil.rmtree(old, ignore_errors=True)
    metrics = root / "phase1-run" / "metrics.jsonl"
    start = time.perf_counter()
    process = rexbert("train", "--config", str(config), "--output-dir", str(root), "--no-progress")
    try:
        while True:
            if metrics.exists() and any("train/loss" in line for line in metrics.read_text().splitlines()):
                return time.perf_counter() - start
            if process.poll() is not None:
                raise RuntimeError(f"rexbert train ended before its first step: {process.stderr.read()}")
            if time.perf_counter() - start > 1800:
                raise TimeoutError("no first step in 30 minutes")
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the run is not needed past its first step
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 20], help="source sizes, in demo sources")
    parser.add_argument("--repeats", type=int, default=2, help="train starts per size on built shards")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args()
    text = DEMO_SOURCE.read_text()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for size in args.sizes:
            folder = Path(tmp) / f"x{size}"
            folder.mkdir()
            source = folder / "general.jsonl"
            source.write_text(text * size)
            config = folder / "phase1.yaml"
            phase = json.loads(json.dumps(PHASE))
            phase["data"]["sources"] = [{"name": "general", "path": str(source)}]
            config.write_text(yaml.safe_dump(phase))
            cold = time_to_first_step(config, folder / "cold")  # no shards: train tokenizes in its own process
            tokenize = time_tokenize(config, folder / "run")
            warm = [time_to_first_step(config, folder / "run") for _ in range(args.repeats)]
            manifest = json.loads(next((folder / "run" / "tokens").glob("general-*/manifest.json")).read_text())
            rows.append((size, source.stat().st_size, manifest["tokens"], tokenize, warm, cold))
            print(rows[-1], flush=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    lines = [f"<!-- python benchmarks/bench_train_startup.py {' '.join(sys.argv[1:])} -->",
             f"`rexbert train` start-up, process start to first step (demo phase-1 model, rows of 128 tokens, "
             f"{os.cpu_count()} CPU cores shared with other jobs; load: {load.split('load average:')[-1].strip()}).",
             "", "| source | size | tokens | `rexbert tokenize` | train start, shards built (each run) | "
                 "train start, tokenizing in-process |", "|---|---|---|---|---|---|"]
    for size, nbytes, tokens, tokenize, warm, cold in rows:
        lines.append(f"| {size}x demo | {nbytes / 2**20:.1f} MB | {tokens:,} | {tokenize:.1f} s | "
                     f"{', '.join(f'{w:.1f} s' for w in warm)} | {cold:.1f} s |")
    (small, *_, small_warm, small_cold), (big, *_, big_warm, big_cold) = rows[0], rows[-1]
    lines += ["", f"With shards built: {big}x / {small}x start-up = **{min(big_warm) / min(small_warm):.2f}x** "
                  f"(best of {args.repeats}); tokenizing in-process: {big_cold / small_cold:.2f}x."]
    report = "\n".join(lines)
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report + "\n")


if __name__ == "__main__":
    main()
