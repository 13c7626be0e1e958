"""What one step of RexBERT's default path does, op by op, against another checkout's code: counts of every
torch op and the peak of allocated CPU tensor memory (from torch.profiler's allocation events). Unlike timings
these do not depend on how busy the machine is, so a change that adds work or keeps a tensor alive longer
shows up exactly, even on a shared machine.

Same batches and model as bench_modeling_cpu.py (micro preset by default; training asks for sparse MLM logits).

    python benchmarks/profile_modeling_ops.py --baseline /tmp/baseline --output benchmarks/results/modeling_ops_vs_before.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import torch

SCENARIOS = ("infer-varlen", "train-varlen", "infer-full")


def profile_case(preset: str, scenario: str, batch_size: int, seq_len: int) -> dict:
    from bench_modeling_cpu import build, make_batch
    from torch.profiler import ProfilerActivity, profile

    train = scenario.startswith("train")
    model = build("rexbert", preset, train)
    ids, mask, labels = make_batch(scenario, batch_size, seq_len, model.config.vocab_size, seed=1234)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True) if train else None

    def step():
        if train:
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(input_ids=ids, attention_mask=mask)

    step()  # warm-up: optimizer state and caches exist before the profiled step, as in a training run
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder:  # allocation events with the running total are in the trace
        trace = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    memory = [e["args"] for e in events if e.get("name") == "[memory]"]
    start = memory[0]["Total Allocated"] - memory[0]["Bytes"]
    return {
        "ops": {e.key: e.count for e in prof.key_averages()},
        "peak_mb": (max(m["Total Allocated"] for m in memory) - start) / 2**20,
        "module": sys.modules["modeling_rexbert"].__file__,
    }


def spawn(code: Path | None, a, scenario: str) -> dict:
    cmd = [sys.executable, __file__, "--case", scenario, "--preset", a.preset,
           "--batch-size", str(a.batch_size), "--seq-len", str(a.seq_len)]
    env = dict(os.environ)
    if code is not None:  # that checkout's modeling_rexbert comes first on the path
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"case {scenario} ({code or 'this checkout'}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="checkout whose RexBERT code to compare with (required)")
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    if a.case:
        print(json.dumps(profile_case(a.preset, a.case, a.batch_size, a.seq_len)))
        return
    if a.baseline is None:
        parser.error("--baseline is required")
    lines = [
        f"One step of the default path (no attentions or hidden states asked for), {a.preset} preset, batch "
        f"{a.batch_size} x {a.seq_len}, torch {torch.__version__}: this checkout vs the RexBERT code of {a.baseline}.",
        "",
        "| scenario | torch ops (this / baseline) | ops that differ | peak allocated MB (this / baseline) |",
        "|---|---|---|---|",
    ]
    for scenario in a.scenarios.split(","):
        ours, theirs = spawn(None, a, scenario), spawn(a.baseline, a, scenario)
        assert ours["module"] != theirs["module"], "both runs imported the same modeling_rexbert"
        difference = Counter(ours["ops"])
        difference.subtract(Counter(theirs["ops"]))
        differing = ", ".join(f"{op} {n:+d}" for op, n in sorted(difference.items()) if n) or "none"
        lines.append(f"| {scenario} | {sum(ours['ops'].values()):,} / {sum(theirs['ops'].values()):,} | {differing} | "
                     f"{ours['peak_mb']:.1f} / {theirs['peak_mb']:.1f} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if a.output:
        a.output.write_text(table + "\n")


if __name__ == "__main__":
    main()
