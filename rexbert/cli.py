"""`rexbert <subcommand>`: thin shells over importable functions.

Each subcommand lives in its package's `cli` module as `register(subparsers)`, which adds a parser
whose `func` default runs the command. Only the module of the subcommand being run is imported
(`modeling_rexbert` alone pulls in torch and transformers), so `rexbert --help` and `--version` stay
quick; the others get a placeholder parser with the one-line help listed here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

# subcommand -> (module that registers it, the line `rexbert --help` shows)
SUBCOMMANDS = {
    "demo": ("rexbert.demo", "the whole pipeline on the bundled corpus (about 9 minutes on 2 CPU cores)"),
    "curate": ("curation.cli", "build the Ecom-niverse corpus (datatrove pipeline)"),
    "train": ("training.cli", "pretrain with the three-phase curriculum (Accelerate)"),
    "tokenize": ("training.cli", "tokenize a curriculum's sources into token shards (datatrove job: local, Slurm, Ray)"),
    "mine-spans": ("training.cli", "mine commerce spans (brands, attributes, quantities, models) for Guided MLM"),
    "eval": ("evaluation.cli", "evaluate encoders: masked-token recovery, CoSENT on ESCI, GLUE"),
    "card": ("model_cards.cli", "render model cards and publish checkpoints to the Hub"),
    "embed": ("rexbert.embed_command", "embed a product catalog into Parquet (ids + vectors), resumable, sharded"),
    "export": ("rexbert.onnx_export", "export a model folder for serving: ONNX Runtime, optionally int8"),
    "convert": ("rexbert.convert_command", "convert a checkpoint between RexBERT (remote code) and stock ModernBERT"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends each option's default to its help, unless there is none to show (None, False, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or default == [] or \
                not action.option_strings:
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """Every parser (subcommands inherit the class) shows defaults with `HelpFormatter`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def version() -> str:
    try:
        return metadata.version("rexbert")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in SUBCOMMANDS else None


def add_command(subparsers, name: str, help: str | None = None, description: str | None = None,
                **kwargs) -> argparse.ArgumentParser:
    """A subcommand parser with its one-line help (a top-level command's from `SUBCOMMANDS`) and a
    description (the help, as a sentence, unless a longer one is given)."""
    help = help or SUBCOMMANDS[name][1]
    return subparsers.add_parser(name, help=help, description=description or f"{help[0].upper()}{help[1:]}.",
                                 **kwargs)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the named subcommand fully registered, the others as placeholders.
    With `argv=None` every subcommand is registered (for tests and documentation)."""
    parser = Parser(prog="rexbert", description="RexBERT: e-commerce encoders for transformers. "
                                                "`rexbert COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"rexbert {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else _chosen(argv)
    chosen_module = SUBCOMMANDS[chosen][0] if chosen else None
    for name, (module, _) in SUBCOMMANDS.items():
        if name in subparsers.choices:  # registered with another command of its module
            continue
        if argv is None or module == chosen_module:
            importlib.import_module(module).register(subparsers)
        else:
            add_command(subparsers, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as error:  # bad input: say what, no traceback
        print(f"rexbert {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # Ctrl-C: one line (how to resume, where the command knows), no traceback
        print(f"\nrexbert {args.command}: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
