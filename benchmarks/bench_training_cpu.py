"""The whole training loop on CPU: `rexbert train`'s loop vs stock transformers, same data, size and time.

Stock side: what a user would otherwise write: `ModernBertForMaskedLM` + `Trainer` +
`DataCollatorForLanguageModeling` (30% masking, padding to the longest row), documents tokenized one
per row and truncated to the sequence length. RexBERT side: `training.loop.PhaseRun` (packed rows,
unpadded attention, sparse MLM head, StableAdamW, span masking). Both train the micro preset from the
same initial weights on the bundled corpus (minus held-out documents) for the same wall-clock
budget, with the same rows per step and peak LR; both are then scored on the same held-out rows with
the same masks (one document chunk a row). The data pipeline's own rates (tokenize, pack, mask) are
reported too.

    python benchmarks/bench_training_cpu.py --budget 120 --output benchmarks/results/training_cpu.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import (
    DataCollatorForLanguageModeling,
    ModernBertForMaskedLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from cpu_cli import parse_cpu_args, write_report
from modeling_rexbert import RexBertConfig, RexBertForMaskedLM
from modeling_rexbert.convert import to_modernbert_config
from modeling_rexbert.tokenization_rexbert import load_tokenizer
from training.collator import MLMCollator
from training.config import parse_config
from training.loop import PhaseRun
from training.masking import MaskingConfig
from training.packing import PackedRows
from training.shards import ShardedCorpus
from training.tokenize_job import tokenize_to_shards

CORPUS = Path(__file__).parents[1] / "rexbert" / "corpus"


def split_corpus(folder: Path, heldout_share: float) -> tuple[list[str], list[str]]:
    texts = [json.loads(line)["text"] for name in ("general.jsonl", "ecommerce.jsonl")
             for line in (CORPUS / name).read_text().splitlines()]
    heldout = set(np.random.default_rng(0).permutation(len(texts))[:int(heldout_share * len(texts))].tolist())
    train = [t for i, t in enumerate(texts) if i not in heldout]
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in train))
    return train, [t for i, t in enumerate(texts) if i in heldout]


def heldout_batches(texts: list[str], tokenizer, length: int, rows: int, batch_size: int) -> list[dict]:
    """One document chunk per row, masked once (30%, fixed seed), padded: the same for both models."""
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    chunks = [[tokenizer.cls_token_id, *doc[s:s + length - 2], tokenizer.sep_token_id]
              for doc in ids for s in range(0, len(doc), length - 2)][:rows]
    collator = MLMCollator(tokenizer, MaskingConfig(rate=0.30), seed=0, phase=0)
    batches = []
    for start in range(0, len(chunks), batch_size):
        part = [{"index": start + i, "input_ids": c, "position_ids": list(range(len(c)))}
                for i, c in enumerate(chunks[start:start + batch_size])]
        batch = collator(part)
        batch.pop("position_ids")
        batches.append(batch)
    return batches


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, batches: list[dict]) -> float:
    model.eval()
    total = count = 0.0
    for batch in batches:
        labels = batch["labels"]
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        picked = labels != -100
        total += torch.nn.functional.cross_entropy(logits[picked].float(), labels[picked], reduction="sum").item()
        count += picked.sum().item()
    return total / count


def run_rexbert(folder: Path, init: Path, args) -> tuple[RexBertForMaskedLM, dict]:
    config = parse_config({
        "name": "bench", "phase": 1,
        "model": {"init_from": str(init)},
        "data": {"sequence_length": args.length, "sources": [{"name": "corpus", "path": str(folder / "train.jsonl")}],
                 "eval_documents": 0},
        "optimizer": {"lr": args.lr, "weight_decay": 1e-5, "warmup_steps": args.warmup},
        "batch": {"micro_batch_size": args.rows},
        "run": {"max_steps": 100_000, "log_with": []},
    })
    run = PhaseRun(config, folder, Accelerator(), progress=False)
    tokens, steps, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < args.budget:
        tokens += int(run.train_step()["tokens"])
        steps += 1
    seconds = time.perf_counter() - start
    return run.accelerator.unwrap_model(run.model), {"steps": steps, "tokens": tokens, "seconds": seconds}


class StopAfter(TrainerCallback):
    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, None

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = self.start or time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.start >= self.seconds:
            control.should_training_stop = True


class CountingCollator(DataCollatorForLanguageModeling):
    """Counts the real (non-padding) tokens of every batch it builds."""

    tokens = 0

    def __call__(self, features, return_tensors=None):
        batch = super().__call__(features, return_tensors)
        CountingCollator.tokens += int(batch["attention_mask"].sum())
        return batch


def run_stock(folder: Path, init: Path, texts: list[str], tokenizer, args) -> tuple[ModernBertForMaskedLM, dict]:
    model = ModernBertForMaskedLM.from_pretrained(init)
    data = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=args.length), batched=True, remove_columns=["text"])
    collator = CountingCollator(tokenizer, mlm_probability=0.30)
    training_args = TrainingArguments(
        output_dir=str(folder / "stock"), per_device_train_batch_size=args.rows, learning_rate=args.lr,
        warmup_steps=args.warmup, lr_scheduler_type="constant_with_warmup", max_steps=100_000, report_to=[],
        save_strategy="no", logging_steps=10_000, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True, seed=0)
    stopper = StopAfter(args.budget)
    trainer = Trainer(model=model, args=training_args, train_dataset=data, data_collator=collator,
                      callbacks=[stopper])
    CountingCollator.tokens = 0
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return model, {"steps": trainer.state.global_step, "tokens": CountingCollator.tokens, "seconds": seconds}


def pipeline_rates(folder: Path, tokenizer, length: int) -> list[tuple[str, int, float]]:
    """(stage, tokens, seconds) for tokenizing into shards, best-fit packing + reading rows, masking."""
    start = time.perf_counter()
    manifest = tokenize_to_shards(folder / "train.jsonl", tokenizer, folder / "shards", progress=False)
    tokenize = time.perf_counter() - start
    corpus = ShardedCorpus(folder / "shards")
    start = time.perf_counter()
    rows = PackedRows(corpus, length, tokenizer.cls_token_id, tokenizer.sep_token_id)
    materialized = [rows[i] for i in range(len(rows))]
    pack = time.perf_counter() - start
    collator = MLMCollator(tokenizer, MaskingConfig(rate=0.30), seed=0, phase=1)
    start = time.perf_counter()
    for i in range(0, len(materialized), 16):
        collator(materialized[i:i + 16])
    mask = time.perf_counter() - start
    return [("tokenize -> shards", manifest["tokens"], tokenize), ("best-fit pack + read rows", rows.tokens, pack),
            ("span masking + collate", rows.tokens, mask)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per side")
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--rows", type=int, default=16, help="rows per optimizer step, both sides")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--heldout-rows", type=int, default=64)
    args = parse_cpu_args(parser)
    tokenizer = load_tokenizer()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train, heldout = split_corpus(folder, heldout_share=0.05)
        torch.manual_seed(0)
        RexBertForMaskedLM(RexBertConfig.from_preset(args.preset)).save_pretrained(folder / "init-rexbert")
        stock_init = ModernBertForMaskedLM(to_modernbert_config(RexBertConfig.from_pretrained(folder / "init-rexbert")))
        stock_init.load_state_dict(RexBertForMaskedLM.from_pretrained(folder / "init-rexbert").state_dict())
        stock_init.save_pretrained(folder / "init-stock")
        batches = heldout_batches(heldout, tokenizer, args.length, args.heldout_rows, args.rows)
        initial = heldout_loss(stock_init, batches)

        ours, ours_stats = run_rexbert(folder, folder / "init-rexbert", args)
        ours_loss = heldout_loss(ours, batches)
        stock, stock_stats = run_stock(folder, folder / "init-stock", train, tokenizer, args)
        stock_loss = heldout_loss(stock, batches)
        rates = pipeline_rates(folder, tokenizer, args.length)

    rate = {name: s["tokens"] / s["seconds"] for name, s in (("ours", ours_stats), ("stock", stock_stats))}
    lines = [
        f"Training loop on CPU ({args.threads} threads, torch {torch.__version__}), preset {args.preset}, "
        f"{args.rows} rows of up to {args.length} tokens per step, peak LR {args.lr}, {args.budget:.0f} s per side, "
        f"bundled corpus ({len(train)} training documents; {len(batches)} held-out batches, initial held-out "
        f"MLM loss {initial:.3f}).",
        "",
        "| loop | steps | real tokens | tokens/s | held-out MLM loss |",
        "|---|---|---|---|---|",
        f"| rexbert train (packed, unpadded, sparse head, StableAdamW) | {ours_stats['steps']} | "
        f"{ours_stats['tokens']:,} | {rate['ours']:,.0f} | {ours_loss:.3f} |",
        f"| stock Trainer + ModernBertForMaskedLM + DataCollatorForLanguageModeling | {stock_stats['steps']} | "
        f"{stock_stats['tokens']:,} | {rate['stock']:,.0f} | {stock_loss:.3f} |",
        "",
        f"Throughput ratio: **{rate['ours'] / rate['stock']:.2f}x**; held-out loss after the same budget: "
        f"{ours_loss:.3f} vs {stock_loss:.3f} ({'lower' if ours_loss < stock_loss else 'not lower'}).",
        "",
        "Data pipeline (one process):",
        "",
        "| stage | tokens | seconds | tokens/s |",
        "|---|---|---|---|",
        *[f"| {name} | {tokens:,} | {seconds:.2f} | {tokens / seconds:,.0f} |" for name, tokens, seconds in rates],
    ]
    report = "\n".join(lines)
    print(report)
    write_report(args.output, f"<!-- python benchmarks/bench_training_cpu.py --budget {args.budget:.0f} -->\n" + report)


if __name__ == "__main__":
    main()
