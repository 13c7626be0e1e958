"""`rexbert <subcommand>`: thin shells over importable functions.

Each subcommand lives in its package's `cli` module as `register(subparsers)`, which adds a parser
whose `func` default runs the command; imports stay lazy so `rexbert --help` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module that registers it
SUBCOMMANDS = {
    "convert": "modeling_rexbert.cli",
    "eval": "evaluation.cli",
    "card": "model_cards.cli",
    "train": "training.cli",
    "mine-spans": "training.cli",
    "curate": "curation.cli",
    "demo": "rexbert.demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rexbert", description="RexBERT: e-commerce encoders for transformers.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in dict.fromkeys(SUBCOMMANDS.values()):
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as error:  # bad input: say what, no traceback
        print(f"rexbert {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
