"""datatrove executors (local, Slurm, Ray) from a few plain settings: one way to choose where a job's
tasks run, shared by curation's filter jobs and training's tokenization job.

`build_executor` returns an executor whose tasks are resumable (datatrove's completion markers under
`logging_dir`: a rerun skips finished tasks); `connect_ray` joins the Ray cluster a Ray executor needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXECUTORS = ("local", "slurm", "ray")


def build_executor(kind: str, pipeline: list, tasks: int, logging_dir: str, *, workers: int = 1,
                   job_name: str = "rexbert", depends=None, quiet: bool = True, slurm: dict | None = None,
                   ray: dict | None = None):
    """An executor of `kind` (local | slurm | ray) running `pipeline` as `tasks` tasks.
    Local: at most `workers` at once (1: in this process, one after another); `quiet` sends datatrove's
    console output to `<logging_dir>/console.log`. `slurm`: partition, time, cpus_per_task,
    mem_per_cpu_gb, qos, sbatch_args. `ray`: cpus_per_task, mem_per_cpu_gb."""
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r} is unknown; choose one of {', '.join(EXECUTORS)}.")
    common = dict(pipeline=pipeline, tasks=tasks, logging_dir=logging_dir, depends=depends)
    if kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        from .quiet_executor import QuietLocalExecutor

        executor_class = QuietLocalExecutor if quiet else LocalPipelineExecutor
        return executor_class(**common, workers=min(workers, tasks))
    if kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        s = slurm or {}
        return SlurmPipelineExecutor(**common, time=s.get("time", "24:00:00"), partition=s.get("partition", "cpu"),
                                     cpus_per_task=s.get("cpus_per_task", 1), mem_per_cpu_gb=s.get("mem_per_cpu_gb", 2),
                                     qos=s.get("qos") or "normal", sbatch_args=s.get("sbatch_args") or None,
                                     job_name=job_name, workers=workers)
    from datatrove.executor import RayPipelineExecutor

    r = ray or {}
    return RayPipelineExecutor(**common, workers=workers, cpus_per_task=r.get("cpus_per_task", 1),
                               mem_per_cpu_gb=r.get("mem_per_cpu_gb", 2.0))


def connect_ray(address: str, field: str = "executor.ray.address") -> None:
    """`ray.init` for `address` unless this process is already connected; an unreachable cluster is an
    error that names the address (and the setting `field` it came from) and what to do."""
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False)
    except (ConnectionError, TimeoutError, RuntimeError) as error:
        raise ConnectionError(
            f"{field} {address!r}: cannot reach a Ray cluster ({error}). Start one with "
            "`ray start --head` (and `ray start --address HEAD:6379` on each worker node), set RAY_ADDRESS or "
            f"{field}, or use address: local for a cluster on this machine only") from None


def incomplete_tasks(executor) -> list[int]:
    """The tasks of `executor` without a completion marker."""
    return executor.get_incomplete_ranks(range(executor.world_size))


@dataclass
class ExecutorOptions:
    """The settings of `build_executor` as one value, for jobs that take them from a command line or an API."""
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

    def build(self, pipeline: list, logging_dir: str, quiet: bool = True):
        slurm = dict(partition=self.slurm_partition, time=self.slurm_time, cpus_per_task=self.cpus_per_task,
                     mem_per_cpu_gb=self.mem_per_cpu_gb, qos=self.slurm_qos, sbatch_args=self.sbatch_args)
        return build_executor(self.type, pipeline, self.tasks, logging_dir, workers=self.workers,
                              job_name=self.job_name, quiet=quiet, slurm=slurm,
                              ray=dict(cpus_per_task=self.cpus_per_task, mem_per_cpu_gb=self.mem_per_cpu_gb))
