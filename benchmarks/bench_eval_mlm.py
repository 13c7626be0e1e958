"""Masked-token evaluation throughput: RexBERT vs stock transformers ModernBERT, same weights, same masks, CPU.

Times `evaluation.mlm.true_token_ranks` (the model loop of `rexbert eval mlm`) for both implementations
on the ESCI sample's product titles and descriptions (HTML stripped) at block sizes 128/256/512,
interleaving the two so machine noise hits both alike. The texts are repeated `--repeat` times so
that a run lasts long enough to time.

    python benchmarks/bench_eval_mlm.py --preset micro --output benchmarks/results/eval_mlm_cpu.md
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import modeling_rexbert
from evaluation.data import clean_text, load_split
from evaluation.metrics import top_k_from_ranks
from evaluation.mlm import choose_masked_words, load_masked_lm, mask_tokens, true_token_ranks
from cpu_cli import parse_cpu_args, write_report
from modeling_rexbert.convert import convert_checkpoint

PRODUCTS = Path(__file__).parents[1] / "tests" / "data" / "esci_sample" / "sample-products.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parse_cpu_args(parser)

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        modeling_rexbert.RexBertForMaskedLM(modeling_rexbert.RexBertConfig.from_preset(args.preset)).save_pretrained(
            f"{tmp}/rexbert")
        convert_checkpoint(f"{tmp}/rexbert", f"{tmp}/stock", to="modernbert")
        ours, tokenizer = load_masked_lm(f"{tmp}/rexbert", "auto")
        stock, _ = load_masked_lm(f"{tmp}/stock", "transformers")

    data = load_split(PRODUCTS)
    texts = [clean_text(t) for name in ("fields.title", "fields.description") for t in data[name]] * args.repeat
    masks = [choose_masked_words(t, 0.15, 0, (0, i)) for i, t in enumerate(texts) if t]
    lines = [
        f"Masked-token evaluation on CPU ({args.threads} threads, torch {torch.__version__}), preset {args.preset}: "
        f"{len(masks)} ESCI-sample titles and descriptions, same weights and masks, median of {args.rounds} rounds.",
        "",
        "| block size | real tokens | masked | rexbert tok/s | stock tok/s | speed-up | top-1 equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for block_size in (128, 256, 512):
        examples = [e for m in masks for e in [mask_tokens(m, tokenizer, block_size)] if e is not None]
        real_tokens = sum(len(ids) for ids, _ in examples)
        seconds = {"rexbert": [], "stock": []}
        hits = {}
        for _ in range(args.rounds):
            for name, model in (("rexbert", ours), ("stock", stock)):
                start = time.perf_counter()
                ranks, truth = true_token_ranks(model, tokenizer, examples, args.batch_size)
                seconds[name].append(time.perf_counter() - start)
                hits[name], masked = top_k_from_ranks(ranks, (1,)), len(truth)  # scored outside the timing
        rate = {name: real_tokens / statistics.median(s) for name, s in seconds.items()}
        lines.append(f"| {block_size} | {real_tokens:,} | {masked:,} | {rate['rexbert']:,.0f} | {rate['stock']:,.0f} | "
                     f"{rate['rexbert'] / rate['stock']:.2f}x | {hits['rexbert'] == hits['stock']} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    write_report(args.output, table)


if __name__ == "__main__":
    main()
