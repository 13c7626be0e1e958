"""`rexbert embed` and `rexbert.embed(...)`: a catalog's ids and embeddings in Parquet (`evaluation.embed_job`),
in this process or sharded over datatrove executors (local processes, Slurm, Ray), one rank per shard."""

from __future__ import annotations

import argparse
import dataclasses
import os

from evaluation.cpu_runtime import usable_cores
from evaluation.embed_job import EmbedSettings, combine, prepare, run_shard
from rexbert.core.executors import EXECUTORS, ExecutorOptions, connect_ray, incomplete_tasks


class EmbedShard:
    """A datatrove pipeline step: the chunks of its rank (picklable, so Ray and Slurm can ship it)."""

    def __init__(self, settings: EmbedSettings):
        self.settings = settings

    def __call__(self, data, rank: int = 0, world_size: int = 1):
        settings = dataclasses.replace(self.settings, device=shard_device(self.settings.device, rank))
        run_shard(settings, rank, world_size, progress=False)
        return iter(())


def shard_device(device: str | None, rank: int) -> str | None:
    """Local shards on a machine with several GPUs take one each (rank modulo the count); Slurm and Ray give
    each task its own visible GPU, which is then the only one. An explicit --device is kept."""
    import torch

    if device is None and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{rank % torch.cuda.device_count()}"
    return device


def embed_to_parquet(settings: EmbedSettings, executor: ExecutorOptions | None = None, progress: bool = True):
    """Encodes every missing chunk (here, or in `executor.tasks` shards) and writes `settings.output`;
    returns the `EmbedSummary`. Slurm: submits the shards and returns None (rerun to combine when done)."""
    prepare(settings)
    if executor is None or executor.type == "local" and executor.tasks == 1:
        run_shard(settings, progress=progress)
        return combine(settings)
    threads = settings.threads  # shards running side by side share the cores
    if threads is None and executor.type == "local":
        threads = max(1, usable_cores() // max(1, min(executor.workers, executor.tasks)))
    elif threads is None:
        threads = executor.cpus_per_task
    shard = EmbedShard(dataclasses.replace(settings, threads=threads))
    runner = executor.build([shard], str(settings.parts / "logs"))
    if executor.type == "ray":
        connect_ray(os.environ.get("RAY_ADDRESS") or "local", field="RAY_ADDRESS")
    runner.run()
    if executor.type == "slurm":
        return None
    missing = incomplete_tasks(runner)
    if missing:
        raise RuntimeError(f"embed shard(s) {missing} did not complete (see {settings.parts}/logs); rerun the "
                           "same command to resume: finished chunks are kept")
    return combine(settings)


def embed(model: str, input: str, output: str, text_columns=("title", "description"), id_column: str = "id",
          prompt: str | None = None, dtype: str = "float32", normalize: bool = False, batch_size: int = 32,
          chunk_rows: int = 10_000, max_length: int | None = None, device: str | None = None,
          executor: str = "local", tasks: int = 1, workers: int = 1, trust_remote_code: bool = False,
          threads: int | None = None, quantize: str | None = None, progress: bool = True,
          cpu_workers: int | None = None):
    """Embeds `input` (a jsonl / parquet / csv file or a folder of them) with `model` into `output` (Parquet:
    `id`, `embedding`) and returns it as a `datasets.Dataset` (memory-mapped from the Parquet file)."""
    from datasets import Dataset

    settings = EmbedSettings(model=model, input=input, output=output, text_columns=tuple(text_columns),
                             id_column=id_column, prompt=prompt, dtype=dtype, normalize=normalize,
                             batch_size=batch_size, chunk_rows=chunk_rows, max_length=max_length, device=device,
                             threads=threads, trust_remote_code=trust_remote_code, quantize=quantize,
                             cpu_workers=cpu_workers)
    summary = embed_to_parquet(settings, ExecutorOptions(type=executor, tasks=tasks, workers=workers), progress)
    if summary is None:
        raise RuntimeError("the Slurm shards were submitted; rerun when they are done to combine and load them.")
    return Dataset.from_parquet(summary.output)


def register(subparsers: argparse._SubParsersAction) -> None:
    from rexbert.cli import add_command

    parser = add_command(subparsers, "embed", description="Embed a product catalog (jsonl, parquet or csv files) "
                         "into Parquet: one row per input row, its id and its vector. Streams the input in chunks, "
                         "resumes after an interruption (rerun the same command), sets bad rows aside with file "
                         "and line, and says how many rows were longer than the model's max_seq_length.")
    parser.add_argument("--model", required=True, help="model folder or Hub id")
    parser.add_argument("--input", required=True, help="a jsonl / parquet / csv file, or a folder of them")
    parser.add_argument("--output", required=True, help="output Parquet file (parts beside it: OUTPUT.parts/)")
    parser.add_argument("--text-columns", default="title,description",
                        help="columns joined (with a space) into the text to embed")
    parser.add_argument("--id-column", default="id", help="the column that identifies a row")
    parser.add_argument("--prompt", help="a prompt name from the model's sentence-transformers config "
                        "(e.g. query) or the text to put before every row")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="stored vector type")
    parser.add_argument("--normalize", action="store_true", help="L2-normalise the vectors")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per forward pass (length-sorted)")
    parser.add_argument("--chunk-rows", type=int, default=10_000, help="input rows per part (the unit of resume)")
    parser.add_argument("--max-length", type=int, help="tokens per row (default: the model's max_seq_length)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--quantize", choices=["int8"], help="CPU: dynamic int8 linear layers (faster, vectors "
                        "within cosine 0.99 of float32 on the measured models; see benchmarks/README.md)")
    parser.add_argument("--threads", type=int, help="CPU cores to use per shard (default: all cores, shared by the "
                        "shards running at once); one worker process each unless --cpu-workers says otherwise")
    parser.add_argument("--cpu-workers", type=int, help="CPU: forked processes of one thread each, whole batches "
                        "each, the same vectors (Linux). Default: one per thread (--threads), as many as fit in "
                        "memory; 1 runs one process on all its threads (benchmarks/results/cpu_workers.md)")
    parser.add_argument("--executor", default="local", choices=EXECUTORS, help="where the shards run")
    parser.add_argument("--tasks", type=int, default=1, help="shards (one datatrove rank each)")
    parser.add_argument("--workers", type=int, default=1, help="shards running at once")
    parser.add_argument("--cpus-per-task", type=int, default=1, help="Slurm/Ray: CPU cores per shard")
    parser.add_argument("--mem-per-cpu-gb", type=float, default=2.0, help="Slurm/Ray: memory per core")
    parser.add_argument("--trust-remote-code", action="store_true", help="run the code a non-RexBERT folder ships")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_embed)


def run_embed(args: argparse.Namespace) -> None:
    settings = EmbedSettings(model=args.model, input=args.input, output=args.output,
                             text_columns=tuple(c.strip() for c in args.text_columns.split(",") if c.strip()),
                             id_column=args.id_column, prompt=args.prompt, dtype=args.dtype,
                             normalize=args.normalize, batch_size=args.batch_size, chunk_rows=args.chunk_rows,
                             max_length=args.max_length, device=args.device, threads=args.threads,
                             trust_remote_code=args.trust_remote_code, quantize=args.quantize,
                             cpu_workers=args.cpu_workers)
    executor = ExecutorOptions(type=args.executor, tasks=args.tasks, workers=args.workers,
                               cpus_per_task=args.cpus_per_task, mem_per_cpu_gb=args.mem_per_cpu_gb,
                               job_name="rexbert-embed")
    summary = embed_to_parquet(settings, executor, progress=not args.no_progress)
    if summary is None:
        print(f"Submitted {args.tasks} Slurm shard(s); rerun the same command when they finish to write {args.output}")
        return
    print("\n".join(summary.lines()))
