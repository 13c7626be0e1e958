"""`rexbert eval <task>`: masked-token recovery today; each task is a thin shell over `evaluation.*`."""

from __future__ import annotations

import argparse


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate encoders on the paper's benchmarks")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)

    mlm = tasks.add_parser("mlm", help="top-k masked-token recovery (paper Table 3) for any masked LM")
    mlm.add_argument("--model", action="append", required=True, help="folder or Hub id; repeat to compare models")
    mlm.add_argument("--dataset", required=True, help="Hub id, save_to_disk folder, or csv/jsonl/parquet file")
    mlm.add_argument("--split", default="test")
    mlm.add_argument("--text-columns", default="product_title,product_description",
                     help="comma-separated; nested fields as dotted names (fields.title)")
    mlm.add_argument("--block-sizes", type=_ints, default=[128, 256, 512])
    mlm.add_argument("--k", type=_ints, default=[1, 3, 5])
    mlm.add_argument("--mask-rate", type=float, default=0.15)
    mlm.add_argument("--seed", type=int, default=0)
    mlm.add_argument("--batch-size", type=int, default=16)
    mlm.add_argument("--max-texts", type=int, help="evaluate the first N rows only")
    mlm.add_argument("--implementation", choices=["auto", "transformers"], default="auto",
                     help="auto: ModernBERT-architecture checkpoints run on RexBERT's implementation")
    mlm.add_argument("--output", help="write results JSON here")
    mlm.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    mlm.set_defaults(func=run_mlm)

    render = tasks.add_parser("render", help="print several results files side by side")
    render.add_argument("files", nargs="+")
    render.set_defaults(func=run_render)


def run_mlm(args: argparse.Namespace) -> None:
    from .mlm import evaluate_masked_lm, table3
    from .results import write_results

    results = evaluate_masked_lm(
        args.model, args.dataset, args.text_columns.split(","), args.block_sizes, args.k, split=args.split,
        rate=args.mask_rate, seed=args.seed, batch_size=args.batch_size, max_texts=args.max_texts,
        implementation=args.implementation,
    )
    print(table3(results))
    if args.output:
        print(f"Wrote {write_results(args.output, results, overwrite=args.overwrite)}")


def run_render(args: argparse.Namespace) -> None:
    from .mlm import table3
    from .results import read_results, render_table

    results = [r for path in args.files for r in read_results(path)]
    masked = [r for r in results if r.task == "masked-token-recovery"]
    other = [r for r in results if r.task != "masked-token-recovery"]
    if masked:
        print(table3(masked))
    if other:
        print(render_table(other))
