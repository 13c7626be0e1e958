"""RexBERT vs stock transformers ModernBERT on CPU: same weights, same batches, side by side.

Scenarios (each for every preset asked for):
  train-varlen   MLM step (forward, backward, AdamW step; 30% of real tokens masked) on
                 product-text-like lengths padded to --seq-len (about three quarters padding)
  infer-varlen   encoder forward (`AutoModel`), same batches, no grad
  train-full / infer-full   the same on full rows without padding
  infer-long     encoder forward on 2 full rows of 4,096 tokens (context-extension lengths, where
                 local attention's window matters most)

Peers: `rexbert` (ours, sdpa; training asks for sparse MLM logits, as training/loop.py does),
`stock-sparse` (ModernBertForMaskedLM, sdpa, sparse_prediction=True) and `stock` (its default: dense
logits). With `--baseline DIR`, peer `baseline` is the RexBERT code of another checkout (e.g. main) run
the same way, so a change to the model is measured against the code before it in one run. Each case
runs in its own subprocess so that its peak memory (max RSS above the process's state after setup) is
its own. Besides wall-clock tokens/s, each case records CPU seconds per step (all threads, `time.process_time`):
on a busy shared machine the "x peer (CPU time)" ratio moves much less than the wall-clock one.

    python benchmarks/bench_modeling_cpu.py --presets micro,mini --output benchmarks/results/modeling_cpu.md
    python benchmarks/bench_modeling_cpu.py --presets micro --peers rexbert --baseline /work/main
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from cpu_cli import parse_cpu_args, write_report

SCENARIOS = ("train-varlen", "infer-varlen", "train-full", "infer-full", "infer-long")
LONG_BATCH = (2, 4096)  # (rows, tokens) of the infer-long scenario
PEERS = ("rexbert", "baseline", "stock-sparse", "stock")
MASK_RATE = 0.30


def product_lengths(batch_size: int, seq_len: int, seed: int) -> list[int]:
    """Lengths like tokenized product titles + descriptions: log-normal, median ~80 tokens, capped."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.exp(torch.randn(batch_size, generator=gen) * 0.8 + math.log(80)).round().clamp(8, seq_len)
    lengths[0] = seq_len  # the longest product sets the padded width, as in a real batch
    return [int(x) for x in lengths]


def make_batch(scenario: str, batch_size: int, seq_len: int, vocab: int, seed: int):
    if scenario == "infer-long":
        batch_size, seq_len = LONG_BATCH
    lengths = product_lengths(batch_size, seq_len, seed) if "varlen" in scenario else [seq_len] * batch_size
    gen = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(5, vocab - 100, (batch_size, seq_len), generator=gen)
    mask = (torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids[mask == 0] = 50283
    labels = torch.full_like(ids, -100)
    chosen = (torch.rand(ids.shape, generator=gen) < MASK_RATE) & mask.bool()
    labels[chosen] = ids[chosen]
    ids = ids.masked_fill(chosen, 50284)
    return ids, mask, labels


def build(peer: str, preset: str, train: bool):
    import modeling_rexbert
    from modeling_rexbert.convert import to_modernbert_config
    from transformers import ModernBertForMaskedLM

    torch.manual_seed(0)
    # sparse_prediction: what the training loop asks for (older RexBERT code predicted sparsely whatever it said)
    config = modeling_rexbert.RexBertConfig.from_preset(preset, attn_implementation="sdpa", sparse_prediction=True)
    ours = modeling_rexbert.RexBertForMaskedLM(config)
    if peer in ("rexbert", "baseline"):
        model = ours if train else ours.model
    else:
        stock_config = to_modernbert_config(config, sparse_prediction=peer == "stock-sparse")
        stock = ModernBertForMaskedLM(stock_config)
        stock.load_state_dict(ours.state_dict())
        model = stock if train else stock.model
    return model.train(train)


def reset_peak_rss() -> None:
    """Restarts the kernel's peak-RSS counter (Linux >= 4.0), so setup does not count as the step's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def run_case(peer: str, preset: str, scenario: str, batch_size: int, seq_len: int, steps: int) -> dict:
    train = scenario.startswith("train")
    model = build(peer, preset, train)
    ids, mask, labels = make_batch(scenario, batch_size, seq_len, model.config.vocab_size, seed=1234)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True) if train else None

    def step():
        if train:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss)
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
        return None

    gc.collect()
    baseline = current_rss_mb()
    reset_peak_rss()
    step()  # warm-up (allocator, oneDNN kernels)
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    seconds = statistics.median(times)
    real_tokens = int(mask.sum())
    return {
        "peer": peer, "preset": preset, "scenario": scenario, "seconds_per_step": seconds,
        "real_tokens_per_s": real_tokens / seconds, "real_tokens": real_tokens,
        # CPU seconds (all threads) per step: the work done, much less moved by other processes than wall time
        "real_tokens_per_cpu_s": real_tokens / statistics.median(cpu_times),
        # the fastest step: on a busy shared machine, the least disturbed measurement of the code itself
        "best_real_tokens_per_s": real_tokens / min(times),
        "padding_fraction": 1 - real_tokens / mask.numel(), "peak_mb_above_setup": peak_rss_mb() - baseline,
    }


def spawn(peer, preset, scenario, a) -> dict:
    cmd = [sys.executable, __file__, "--case", f"{peer}:{preset}:{scenario}", "--batch-size", str(a.batch_size),
           "--seq-len", str(a.seq_len), "--steps", str(a.steps), "--threads", str(a.threads)]
    env = dict(os.environ)
    if peer == "baseline":  # the other checkout's modeling_rexbert comes first on the path
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(a.baseline), env.get("PYTHONPATH")]))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"case {peer}:{preset}:{scenario} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(results: list[dict], a) -> str:
    peers = [p for p in PEERS if any(r["peer"] == p for r in results)]
    others = [p for p in peers if p != "rexbert"]
    baseline = f" baseline: RexBERT code of {a.baseline}." if a.baseline else ""
    lines = [
        f"RexBERT vs stock ModernBERT (transformers, sdpa) on CPU, {a.threads} threads, torch {torch.__version__}; "
        f"batch {a.batch_size} x {a.seq_len} ({LONG_BATCH[0]} x {LONG_BATCH[1]} for infer-long), "
        f"median of {a.steps} steps after one warm-up, median of {a.repeat} alternating runs.{baseline} "
        f"Shared machine: load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1 / 5 / 15 min) "
        "when the table was written.",
        "",
        "| preset | scenario | padding | " + " | ".join(f"{p} tok/s" for p in peers) + " | "
        + " | ".join(f"x {p}" for p in others) + " | " + " | ".join(f"x {p} (CPU time)" for p in others)
        + " | peak MB " + " / ".join(peers) + " |",
        "|---|---|---|" + "---|" * (len(peers) + 2 * len(others) + 1),
    ]
    by_key = {(r["preset"], r["scenario"], r["peer"]): r for r in results}
    for preset in a.presets:
        for scenario in SCENARIOS:
            row = {p: by_key.get((preset, scenario, p)) for p in peers}
            if row.get("rexbert") is None:
                continue

            def cell(peer, key="real_tokens_per_s", fmt="{:,.0f}"):
                return fmt.format(row[peer][key]) if row[peer] else "-"

            def ratio(peer, key="real_tokens_per_s"):
                if not row[peer] or key not in row[peer]:
                    return "-"
                if key == "real_tokens_per_cpu_s":  # each side's median over its runs (the row is the median wall run)
                    ours_cpu, theirs_cpu = (statistics.median(row[p]["runs_tok_per_cpu_s"]) for p in ("rexbert", peer))
                    return f"{ours_cpu / theirs_cpu:.2f}x"
                return f"{row['rexbert'][key] / row[peer][key]:.2f}x"

            lines.append(
                f"| {preset} | {scenario} | {row['rexbert']['padding_fraction']:.0%} | "
                + " | ".join(cell(p) for p in peers) + " | " + " | ".join(ratio(p) for p in others) + " | "
                + " | ".join(ratio(p, "real_tokens_per_cpu_s") for p in others) + " | "
                + " / ".join(cell(p, "peak_mb_above_setup", "{:,.0f}") for p in peers) + " |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="micro,mini")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--peers", default="rexbert,stock-sparse,stock", help="which of rexbert, stock-sparse, stock")
    parser.add_argument("--baseline", type=Path, help="also run the RexBERT code of this checkout (peer 'baseline')")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case, peers alternating; the median is kept")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    a = parse_cpu_args(parser)  # a --case subprocess gets --threads too
    if a.case:
        peer, preset, scenario = a.case.split(":")
        print(json.dumps(run_case(peer, preset, scenario, a.batch_size, a.seq_len, a.steps)))
        return
    a.presets = a.presets.split(",")
    results = []
    for preset in a.presets:
        for scenario in a.scenarios.split(","):
            chosen = a.peers.split(",") + (["baseline"] if a.baseline else [])
            # stock-sparse and stock differ only in the MLM head, which inference does not run
            skipped = () if scenario.startswith("train") else ("stock-sparse",)
            peers = [p for p in PEERS if p in chosen and p not in skipped]
            runs = {peer: [] for peer in peers}
            for repeat in range(a.repeat):  # peers alternate, so a busy spell of the machine hits both
                for peer in peers if repeat % 2 == 0 else peers[::-1]:
                    result = spawn(peer, preset, scenario, a)
                    runs[peer].append(result)
                    print(f"{preset:6s} {scenario:13s} {peer:13s} {result['real_tokens_per_s']:>10,.0f} real tok/s "
                          f"(best step {result['best_real_tokens_per_s']:,.0f}; "
                          f"{result['real_tokens_per_cpu_s']:,.0f} per CPU-s) "
                          f"{result['peak_mb_above_setup']:>8,.0f} MB", flush=True)
            for peer in peers:  # the run with the median speed
                ranked = sorted(runs[peer], key=lambda r: r["real_tokens_per_s"])
                results.append({**ranked[len(ranked) // 2], "runs_tok_s": [r["real_tokens_per_s"] for r in runs[peer]],
                                "runs_tok_per_cpu_s": [r["real_tokens_per_cpu_s"] for r in runs[peer]],
                                "runs_peak_mb": [r["peak_mb_above_setup"] for r in runs[peer]]})
    table = render(results, a)
    print("\n" + table)
    write_report(a.output, table)
    if a.output:  # the measurements behind the table
        a.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
