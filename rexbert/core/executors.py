"""datatrove executors by name (local processes, Slurm arrays, Ray tasks), for jobs that shard their work into
`tasks` ranks: a pipeline step receives (data, rank, world_size) and does its rank's share. datatrove marks a
finished rank in `logging_dir`, so a rerun of the same job skips it."""

from __future__ import annotations

from dataclasses import dataclass, field

EXECUTOR_TYPES = ("local", "slurm", "ray")


@dataclass
class ExecutorOptions:
    type: str = "local"
    tasks: int = 1
    workers: int = 1
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    slurm_partition: str = "cpu"
    slurm_time: str = "24:00:00"
    slurm_qos: str = "normal"
    sbatch_args: dict = field(default_factory=dict)
    job_name: str = "rexbert"


def build_executor(pipeline: list, logging_dir: str, options: ExecutorOptions):
    """A datatrove executor that runs `pipeline` as `options.tasks` ranks on `options.type`."""
    if options.type not in EXECUTOR_TYPES:
        raise ValueError(f"executor {options.type!r}: choose one of {', '.join(EXECUTOR_TYPES)}.")
    common = dict(pipeline=pipeline, tasks=options.tasks, logging_dir=logging_dir)
    if options.type == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(**common, workers=min(options.workers, options.tasks))
    if options.type == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(**common, time=options.slurm_time, partition=options.slurm_partition,
                                     cpus_per_task=options.cpus_per_task, mem_per_cpu_gb=options.mem_per_cpu_gb,
                                     qos=options.slurm_qos, sbatch_args=options.sbatch_args or None,
                                     job_name=options.job_name, workers=options.workers)
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(**common, workers=options.workers, cpus_per_task=options.cpus_per_task,
                               mem_per_cpu_gb=options.mem_per_cpu_gb)


def incomplete_ranks(executor) -> list[int]:
    return list(executor.get_incomplete_ranks(range(executor.world_size)))
