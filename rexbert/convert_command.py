"""`rexbert convert`: RexBERT <-> stock ModernBERT checkpoint folders."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(
        subparsers, "convert",
        description="Convert a checkpoint folder (or Hub id) between RexBERT and stock ModernBERT formats. "
        "Weights are unchanged; the config and the bundled code are rewritten.",
    )
    parser.add_argument("--to", required=True, choices=["modernbert", "rexbert"], help="target format")
    parser.add_argument("source", help="checkpoint folder or Hub repo id")
    parser.add_argument("destination", help="new output folder")
    parser.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> None:
    from modeling_rexbert.convert import convert_checkpoint

    out = convert_checkpoint(args.source, args.destination, to=args.to)
    print(f"Wrote a {args.to} checkpoint to {out}")
