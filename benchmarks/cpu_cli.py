"""The command line the CPU benchmarks share: how many threads torch may use (each table names the count) and
the markdown file the report is also written to. Imported as a sibling: the benchmarks run as scripts."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def parse_cpu_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Adds --threads and --output to the benchmark's own options, parses them, and holds torch to the threads."""
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def write_report(path: Path | None, text: str) -> None:
    """Writes the report to --output, if given."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
