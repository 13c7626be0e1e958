"""`rexbert curate <stage>`: one subcommand per stage of `stages.STAGES` (sample, label, audit, distill, filter,
card), `run` for the chain, and publish and demo-data."""

from __future__ import annotations

import argparse
import json

CONFIG_HELP = "YAML config (see curation/configs/)"


def _stage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help=CONFIG_HELP)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true",
                        help="also print datatrove's log and stats (always written to the run's pipeline/logs/)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an output_dir that holds files rexbert did not write")


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    from .stages import STAGES

    parser = add_command(subparsers, "curate", description="Build Ecom-niverse (paper section 3) on datatrove: each "
                         "stage alone, or `run` for the chain; every stage reads one YAML config "
                         "(curation/configs/).")
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage in STAGES.values():  # the table of stages: one subcommand each
        p = add_command(stages, stage.name, help=stage.help)
        _stage_options(p)
        p.set_defaults(func=run_stage)
    run = add_command(stages, "run", help=f"the whole chain: {', '.join(STAGES)}")
    _stage_options(run)
    run.add_argument("--skip", default="", help="comma-separated stages to skip (e.g. sample,label to reuse labels)")
    run.set_defaults(func=run_chain)
    publish = add_command(stages, "publish",
                          help="push the dataset folder to the Hub (create_repo + upload_large_folder, resumable)")
    publish.add_argument("--config", required=True, help=CONFIG_HELP)
    publish.add_argument("--repo-id", help="default: card.repo_id from the config")
    publish.add_argument("--private", action="store_true", help="create the dataset repo as private")
    publish.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    publish.set_defaults(func=run_publish)
    demo = add_command(stages, "demo-data", help="write the bundled demo corpus in FineFineWeb's layout")
    demo.add_argument("--data-dir", help="the test samples folder (tests/data) instead of the bundled corpus")
    demo.add_argument("--out", required=True, help="output folder (<domain>/*.jsonl); new, empty or rexbert's")
    demo.add_argument("--overwrite", action="store_true", help="write into an --out that holds files rexbert did not "
                      "write")
    demo.set_defaults(func=run_demo_data)


def _print_summary(summaries: dict[str, dict]) -> None:
    print("\n== curation summary ==")
    for stage, summary in summaries.items():
        print(f"[{stage}]")
        for key, value in summary.items():
            print(f"  {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


def _claimed(cfg, args: argparse.Namespace):
    """`cfg`, once its output_dir is known to be new, empty or this project's (or --overwrite); marked ours."""
    from rexbert.core.outputs import claim_output, mark_output

    claim_output(cfg.output_dir, overwrite=args.overwrite, option="output_dir (in the config)")
    mark_output(cfg.output_dir, "rexbert curate")
    return cfg


def run_stage(args: argparse.Namespace) -> None:
    from .config import load_curation_config
    from .stages import run_stage

    cfg = _claimed(load_curation_config(args.config), args)
    _print_summary({args.stage: run_stage(args.stage, cfg, not args.no_progress, args.verbose)})


def run_chain(args: argparse.Namespace) -> None:
    from .config import load_curation_config
    from .stages import STAGES, run_all

    skip = tuple(s for s in args.skip.split(",") if s)
    unknown = [s for s in skip if s not in STAGES]
    if unknown:
        raise ValueError(f"--skip: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    _print_summary(run_all(_claimed(load_curation_config(args.config), args), not args.no_progress, skip, args.verbose))


def run_publish(args: argparse.Namespace) -> None:
    from .config import load_curation_config
    from .layout import Layout
    from .publish import publish

    cfg = load_curation_config(args.config)
    repo_id = args.repo_id or cfg.card.repo_id
    files = publish(Layout(cfg.output_dir).dataset, repo_id, private=args.private, dry_run=args.dry_run)
    verb = "would upload" if args.dry_run else "uploaded"
    total = sum(size for _, size in files)
    print(f"{verb} {len(files)} file(s) to dataset repo {repo_id} ({total:,} bytes):")
    for name, size in files:
        print(f"  {name}  ({size:,} bytes)")


def run_demo_data(args: argparse.Namespace) -> None:
    from rexbert.core.outputs import claim_output, mark_output

    from .demo_corpus import write_demo_corpus

    claim_output(args.out, overwrite=args.overwrite, option="--out")
    counts = write_demo_corpus(args.out, args.data_dir)
    mark_output(args.out, "rexbert curate demo-data")
    print(f"wrote {sum(counts.values())} documents to {args.out}: {counts}")
