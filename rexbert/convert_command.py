"""`rexbert convert`: RexBERT <-> stock ModernBERT checkpoint folders."""

from __future__ import annotations

import argparse
import os
import shutil


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(
        subparsers, "convert",
        description="Convert a checkpoint folder (or Hub id) between RexBERT and stock ModernBERT formats. "
        "Weights are unchanged; the config and the bundled code are rewritten.",
    )
    parser.add_argument("--to", required=True, choices=["modernbert", "rexbert"], help="target format")
    parser.add_argument("source", help="checkpoint folder or Hub repo id")
    parser.add_argument("destination", help="new output folder (an existing one only if rexbert wrote it)")
    parser.add_argument("--overwrite", action="store_true", help="replace DESTINATION even if rexbert did not write "
                        "it (deletes what it holds)")
    parser.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> None:
    from modeling_rexbert.convert import convert_checkpoint
    from rexbert.core.outputs import claim_output, mark_output, replace_folder
    from rexbert.core.weights import check_weight_files

    destination = claim_output(args.destination, overwrite=args.overwrite, option="destination")  # before any work
    check_weight_files(args.source)
    # written beside, then swapped in: a failed conversion leaves the old folder whole
    partial = destination.resolve().with_name(f"{destination.resolve().name}.converting")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        convert_checkpoint(args.source, partial, to=args.to)
        mark_output(partial, "rexbert convert", entries=True)
        replace_folder(destination, overwrite=args.overwrite, option="destination")
        os.replace(partial, destination)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"Wrote a {args.to} checkpoint to {destination}")
