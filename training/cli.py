"""`rexbert train` (a phase file or a curriculum folder) and `rexbert mine-spans`."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path


from rexbert.core.arguments import positive_int as _positive_int  # 0 or -1 steps would run nothing

from rexbert.core.config_schema import ConfigError, merge

from .overrides import parse_setting, settings_to_overrides

REPORT_TO = ("tensorboard", "trackio", "wandb", "none")  # --report-to: Accelerate trackers (`run.log_with`)


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(subparsers, "train", description="Pretrain with the three-phase curriculum on Accelerate: "
                         "a phase YAML, or a folder of phase*.yaml run in order, each phase starting from the "
                         "previous one's export. Each phase exports DIR/<phase>/ (the model) and keeps its "
                         "checkpoints, logs and metrics in DIR/<phase>-run/.")
    add_train_arguments(parser)
    parser.set_defaults(func=run_train)

    tokenize = add_command(subparsers, "tokenize", description=(
        "Tokenize every source of a phase YAML or curriculum folder into the token shards `rexbert train` "
        "memory-maps, as a datatrove job of N tasks (local processes, Slurm or Ray), resumable per task. "
        "Each source is read only up to what the plan draws from it (plus 10%); small local sources whole."))
    tokenize.add_argument("--config", required=True, help="a phase YAML, or a folder of phase*.yaml")
    tokenize.add_argument("--output-dir", default=None, help="the run root `rexbert train` will use (default runs/"
                                                             "<config name>); shards go to DIR/tokens/")
    tokenize.add_argument("--executor", choices=("local", "slurm", "ray"), default="local", help="where tasks run")
    tokenize.add_argument("--tasks", type=_positive_int, help="tasks per source, each writing its own shards "
                          "(default: as many as an earlier build of the source, else 1; a local source runs at most "
                          "one per file)")
    tokenize.add_argument("--workers", type=_positive_int, default=1, help="tasks running at once")
    tokenize.add_argument("--max-steps", type=_positive_int, help="plan for this many steps per phase, as "
                                                                  "`rexbert train --max-steps` would")
    tokenize.add_argument("--set", dest="settings", metavar="KEY=VALUE", action="append", type=parse_setting,
                          default=[], help="the same config overrides as `rexbert train --set`")
    tokenize.add_argument("--max-skipped-share", type=float, help="go on when up to this share of a source's "
                          "records is set aside (default: the config's data.max_skipped_share, 0.05)")
    tokenize.add_argument("--ray-address", default="auto", help="Ray cluster (auto, host:6379, or local)")
    tokenize.add_argument("--cpus-per-task", type=_positive_int, default=1, help="Slurm/Ray CPUs per task")
    tokenize.add_argument("--mem-per-cpu-gb", type=float, default=2.0, help="Slurm/Ray memory per CPU")
    tokenize.add_argument("--slurm-partition", default="cpu", help="Slurm partition of the tasks")
    tokenize.add_argument("--slurm-time", default="24:00:00", help="Slurm time limit per task")
    tokenize.add_argument("--no-progress", action="store_true", help="no progress bars")
    tokenize.set_defaults(func=run_tokenize)

    mine = add_command(subparsers, "mine-spans")
    mine.add_argument("--source", required=True, help="text/jsonl file or folder, parquet, save_to_disk folder, Hub id")
    mine.add_argument("--text-column", default="text", help="column (or jsonl field) holding the text")
    mine.add_argument("--min-count", type=_positive_int, default=2, help="keep spans seen at least this often")
    mine.add_argument("--output", required=True, help="spans JSON for data.spans in a phase config")
    mine.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    mine.set_defaults(func=run_mine_spans)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="a phase YAML, or a folder of phase*.yaml run in order (e.g. training/configs/micro)")
    parser.add_argument("--output-dir", default=None, help="run root; phases go to DIR/<phase name> (default runs/"
                                                           "<config name>)")
    parser.add_argument("--max-steps", type=_positive_int, help="steps per phase; warmup/decay/annealing scale with it")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoints, exactly (refused "
                        "where --output-dir has none)")
    parser.add_argument("--overwrite", action="store_true", help="write phases into folders that hold files rexbert "
                        "did not write")
    parser.add_argument("--stop-after", type=_positive_int, help="checkpoint and stop after N steps in this session "
                                                       "(for time-limited jobs; rerun with --resume)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    parser.add_argument("--max-skipped-share", type=float, help="go on when up to this share of a source's records "
                        "was set aside while tokenizing (default: each phase's data.max_skipped_share, 0.05)")
    parser.add_argument("--set", dest="settings", metavar="KEY=VALUE", action="append", type=parse_setting,
                        default=[], help="override a config field, validated as the file is (repeatable): a dotted "
                        "key and a YAML value, e.g. optimizer.lr=4e-4 or batch.micro_batch_size=8; with a curriculum "
                        "folder it applies to every phase, phase2.optimizer.lr=4e-4 to phase2.yaml only")
    parser.add_argument("--report-to", nargs="+", choices=REPORT_TO, metavar="TRACKER", help="where to log the "
                        f"metrics besides metrics.jsonl: {', '.join(REPORT_TO)} (several allowed; default: each "
                        "phase's run.log_with, tensorboard in the shipped configs), through Accelerate's trackers")
    parser.add_argument("--plan", action="store_true", help="print what the run will do (steps, tokens, lengths, "
                                                           "masking, RoPE, LR, weight decay, mixture) and exit; "
                                                           "needs no data, weights or GPU")
    parser.add_argument("--json", action="store_true", help="with --plan: the plan as one JSON object")
    parser.add_argument("--world-size", type=_positive_int, help="with --plan: the number of processes to plan for "
                                                       "(default: the config's run.world_size, else 1)")


def run_train(args: argparse.Namespace) -> None:
    output = args.output_dir or str(Path("runs") / Path(args.config).resolve().stem)
    overrides = command_line_overrides(args)
    with naming_settings(args.settings):
        plan_or_train(args, output, overrides)


@contextlib.contextmanager
def naming_settings(settings: list):
    """A config error raised with `--set` settings in force says so (the file it names may be fine)."""
    try:
        yield
    except ConfigError as error:
        if not settings:
            raise
        given = " ".join(setting.text for setting in settings)
        raise ConfigError(f"{error} (with --set {given})") from None


def plan_or_train(args: argparse.Namespace, output: str, overrides: dict) -> None:
    from accelerate import PartialState

    from .budget import launch_is_main, launch_world_size
    from .curriculum import plan_curriculum, train_curriculum
    from .plan import format_plan, to_json

    if args.plan:  # sources already tokenized under the output root report their real size
        result = plan_curriculum(args.config, world_size=args.world_size, max_steps=args.max_steps, output_dir=output,
                                 overrides=overrides)
        print(to_json(result) if args.json else format_plan(result))
        return
    if args.world_size is not None or args.json:
        raise ValueError("--world-size and --json go with --plan; a run uses the processes it is launched with.")
    shown = plan_curriculum(args.config, world_size=launch_world_size(), max_steps=args.max_steps,
                            output_dir=output, overrides=overrides)  # checks every phase first
    if launch_is_main():
        print(format_plan(shown), flush=True)
    try:
        summaries = train_curriculum(args.config, output, max_steps=args.max_steps, resume=args.resume,
                                     stop_after=args.stop_after, progress=not args.no_progress,
                                     overwrite=args.overwrite, overrides=overrides)
    except KeyboardInterrupt:
        raise Interrupted(how_to_resume(args.config, output)) from None
    if not PartialState().is_main_process:
        return
    for summary in summaries:
        if "stopped_at" in summary:
            print(f"stopped at step {summary['stopped_at']}; continue with --resume")
        else:
            evaluation = ", ".join(f"{k.removeprefix('eval/')} {v:.4f}" for k, v in summary.items()
                                   if k in ("eval/loss", "eval/accuracy"))
            print(f"{summary['phase']}: {summary['steps']} steps, {summary['tokens']:,} tokens; held-out {evaluation}"
                  f" -> {Path(output) / summary['phase']}")


def command_line_overrides(args: argparse.Namespace) -> dict:
    """`--set`, then `--report-to` and `--max-skipped-share`, as one overrides mapping (`training/overrides.py`)."""
    overrides = settings_to_overrides(args.settings)
    run, data = {}, {}
    if args.report_to is not None:
        if "none" in args.report_to and len(args.report_to) > 1:
            raise ValueError(f"--report-to none logs to no tracker; it cannot go with {args.report_to}.")
        run["log_with"] = [name for name in args.report_to if name != "none"]
    if args.max_skipped_share is not None:
        if not 0 <= args.max_skipped_share <= 1:
            raise ValueError(f"--max-skipped-share must be in [0, 1], got {args.max_skipped_share}.")
        data["max_skipped_share"] = args.max_skipped_share
    return merge(overrides, {key: value for key, value in (("run", run), ("data", data)) if value})


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says where the run can continue from (`rexbert` prints it alone)."""

    def __str__(self) -> str:
        return self.args[0]


def how_to_resume(config: str, output: str) -> str:
    """One line: the newest checkpoint under `output`, and the command that continues from it."""
    from .checkpoints import list_checkpoints

    found = sorted((c for state in Path(output).glob("*-run") for c in list_checkpoints(state / "checkpoints")),
                   key=lambda c: c.stat().st_mtime)
    if not found:
        return f"interrupted before the first checkpoint; rerun `rexbert train --config {config} --output-dir {output}`"
    return (f"interrupted; the newest checkpoint is {found[-1]}: continue with `rexbert train --config {config} "
            f"--output-dir {output} --resume`")


def run_tokenize(args: argparse.Namespace) -> None:
    from .curriculum import load_phases
    from .source_shards import set_aside_summary
    from .tokenize_run import tokenize_curriculum

    if args.max_skipped_share is not None and not 0 <= args.max_skipped_share <= 1:
        raise ValueError(f"--max-skipped-share must be in [0, 1], got {args.max_skipped_share}.")
    with naming_settings(args.settings):
        phases = load_phases(args.config, args.max_steps, settings_to_overrides(args.settings), default_world_size=1)
    output = Path(args.output_dir or str(Path("runs") / Path(args.config).resolve().stem))
    slurm = {"partition": args.slurm_partition, "time": args.slurm_time, "cpus_per_task": args.cpus_per_task,
             "mem_per_cpu_gb": args.mem_per_cpu_gb}
    ray = {"cpus_per_task": args.cpus_per_task, "mem_per_cpu_gb": args.mem_per_cpu_gb}
    built = tokenize_curriculum(phases, output, executor=args.executor, tasks=args.tasks, workers=args.workers,
                                max_skipped_share=args.max_skipped_share, progress=not args.no_progress,
                                slurm=slurm, ray=ray, ray_address=args.ray_address)
    for need, manifest in built:
        if manifest is None:
            print(f"{need.name}: submitted to Slurm; rerun this command once the jobs end to check them")
            continue
        extent = "whole source" if need.cap_tokens is None else \
            f"{'whole source, ' if manifest['exhausted'] else ''}cap {need.cap_tokens:,} = the plan's " \
            f"{round(need.tokens):,} + 10%"
        print(f"{need.name}: {manifest['documents']:,} documents, {manifest['tokens']:,} tokens ({extent}) "
              f"-> {need.folder}")
        summary = set_aside_summary(need.name, manifest)
        if summary:
            print(f"  {summary}")


def run_mine_spans(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from .shards import ReadReport, read_documents
    from rexbert.core.outputs import claim_output

    from .spans import mine_spans, save_spans

    claim_output(args.output, overwrite=args.overwrite, option="--output", folder=False)  # before the mining
    report = ReadReport()
    texts = tqdm(read_documents(args.source, args.text_column, report), desc="mining spans", unit=" docs")
    spans = mine_spans(texts, min_count=args.min_count)
    path = save_spans(spans, args.output)
    print(json.dumps({kind: len(found) for kind, found in spans.items()}), f"-> {path}")
    if report.skipped:
        print(f"set aside: {dict(report.skipped)}")
