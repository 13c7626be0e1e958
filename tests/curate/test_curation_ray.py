"""The filter pipeline and the MinHash stages on datatrove's Ray executor, on a local Ray instance
(2 CPUs, started and stopped here): output identical to the Local executor's, also when workers are
killed mid-task (Ray retries the task) and when a task keeps dying (a clear error; the rerun resumes
and never redoes a finished task)."""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from conftest import curation_test_config, ray_with_checkout_on_path  # noqa: E402
from curation.config import DistillConfig  # noqa: E402
from curation.layout import Layout  # noqa: E402
from curation.pipeline import IncompleteJobError, build_executors, run_executors, run_pipeline  # noqa: E402

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # a local Ray instance


class KillWorker:
    """A pipeline step for fault injection: on task `rank`, when document number `after` arrives (or
    at once when the step gets no documents, e.g. after a MinHash stage wrote its files), SIGKILLs the
    Ray actor running the task and itself: a worker lost mid-task. The first `times` attempts die.
    Every attempt of every rank is logged in `log_dir`, so tests can count how often a task ran."""

    def __init__(self, log_dir: str, job: str, rank: int = -1, after: int = 0, times: int = 1):
        self.log_dir, self.job, self.rank, self.after, self.times = log_dir, job, rank, after, times

    def __call__(self, data, rank: int = 0, world_size: int = 1):
        attempt = len(glob.glob(os.path.join(self.log_dir, f"{self.job}-{rank}-*")))
        Path(self.log_dir, f"{self.job}-{rank}-{attempt}").touch()
        doomed = rank == self.rank and attempt < self.times
        for i, doc in enumerate(data or ()):
            if doomed and i == self.after:
                self.kill()
            yield doc
        if doomed:
            self.kill()

    @staticmethod
    def kill():
        os.kill(os.getppid(), signal.SIGKILL)  # the Ray actor (datatrove runs each task in a child of it)
        os.kill(os.getpid(), signal.SIGKILL)


def attempts(log_dir: str, job: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for path in glob.glob(os.path.join(log_dir, f"{job}-*")):
        rank = int(os.path.basename(path).split("-")[1])
        counts[rank] = counts.get(rank, 0) + 1
    return counts


@pytest.fixture(scope="module")
def trained(curation_corpus):
    """The demo corpus (`corpus/`) and per-domain classifiers (`classifiers/`) distilled from its provenance labels."""
    from curation.distill import distill

    corpus, root = curation_corpus, curation_corpus.parent
    labels = root / "labels.jsonl"
    with open(labels, "w", encoding="utf-8") as out:
        for path in sorted(corpus.glob("*/*.jsonl")):
            for line in open(path, encoding="utf-8"):
                r = json.loads(line)
                out.write(json.dumps({"id": r["id"], "domain": r["domain"], "text": r["text"],
                                      "label": r["source_label"]}) + "\n")
    distill(str(labels), str(root / "classifiers"), DistillConfig(validation_fraction=0.25), ["hobby", "news"],
            progress=False)
    return root


def make_cfg(trained: Path, out: Path, kind: str):
    shutil.copytree(trained / "classifiers", out / "classifiers")
    return curation_test_config(out, trained / "corpus", filter={"dedup": {"num_buckets": 4}},
                                executor={"type": kind, "workers": 1 if kind == "local" else 2,
                                          "ray": {"address": "local", "mem_per_cpu_gb": 0.25}})


def outputs(layout: Layout) -> dict:
    """Everything the four jobs wrote, by file: Parquet rows, kept documents, MinHash removal ids."""
    import pyarrow.parquet as pq

    out = {}
    for path in sorted(glob.glob(os.path.join(layout.dataset, "data", "*.parquet"))):
        out[os.path.relpath(path, layout.root)] = pq.read_table(path).to_pylist()
    for path in sorted(glob.glob(os.path.join(layout.kept, "*.jsonl.gz"))):
        out[os.path.relpath(path, layout.root)] = gzip.open(path, "rt", encoding="utf-8").read()
    for path in sorted(glob.glob(os.path.join(layout.minhash, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            out[os.path.relpath(path, layout.root)] = Path(path).read_bytes()
    return out


@pytest.fixture(scope="module")
def local_output(trained):
    cfg = make_cfg(trained, trained / "local", "local")
    run_pipeline(cfg, progress=False)
    result = outputs(Layout(cfg.output_dir))
    ids = [row["source_id"] for key, rows in result.items() if key.endswith(".parquet") for row in rows]
    assert len(ids) > 50 and len(ids) == len(set(ids))
    return result


@pytest.fixture(scope="module")
def ray_cluster():
    yield from ray_with_checkout_on_path(str(Path(__file__).parent), str(Path(__file__).parents[1]))  # workers import this module's fault step (and its conftest)


def test_an_unreachable_ray_cluster_is_an_error_naming_the_address(monkeypatch):
    from curation.pipeline import connect_ray

    def refuse(**kwargs):
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(ConnectionError, match=r"executor.ray.address 'auto': cannot reach a Ray cluster .*ray start --head"):
        connect_ray("auto")


def _inject(executors: dict, log_dir: str, faults: dict) -> None:
    """faults: job -> (position in its pipeline, KillWorker kwargs)."""
    for job, (position, kwargs) in faults.items():
        executors[job].pipeline.insert(position, KillWorker(log_dir, job, **kwargs))


def test_ray_output_equals_local_after_workers_are_killed_mid_task(trained, local_output, ray_cluster, tmp_path):
    cfg = make_cfg(trained, tmp_path / "out", "ray")
    log_dir = str(tmp_path / "attempts")
    os.makedirs(log_dir)
    executors = build_executors(cfg)
    _inject(executors, log_dir, {
        "1_filter": (1, dict(rank=1, after=20)),  # mid-stream: part of the task's files already written
        "2_buckets": (1, dict(rank=2)),  # after the bucket files are written, before completion is marked
        "4_write": (1, dict(rank=0, after=5)),
    })
    run_executors(executors, progress=False)
    assert outputs(Layout(cfg.output_dir)) == local_output
    # each killed task ran twice; every other task once
    assert attempts(log_dir, "1_filter") == {0: 1, 1: 2}
    assert attempts(log_dir, "2_buckets") == {0: 1, 1: 1, 2: 2, 3: 1}
    assert attempts(log_dir, "4_write") == {0: 2, 1: 1}

    # a rerun finds every task complete: nothing runs, nothing is rewritten
    layout = Layout(cfg.output_dir)
    files = [p for p in glob.glob(os.path.join(layout.root, "**", "*"), recursive=True)
             if os.path.isfile(p) and "/logs/" not in p]
    before = {p: os.stat(p).st_mtime_ns for p in files}
    executors = build_executors(cfg)
    _inject(executors, log_dir, {job: (1, dict(times=0)) for job in ("1_filter", "2_buckets", "4_write")})
    run_executors(executors, progress=False)
    assert {p: os.stat(p).st_mtime_ns for p in files} == before
    assert attempts(log_dir, "1_filter") == {0: 1, 1: 2}


def test_a_task_that_keeps_dying_is_an_error_and_the_rerun_resumes_it(trained, local_output, ray_cluster, tmp_path):
    cfg = make_cfg(trained, tmp_path / "out", "ray")
    log_dir = str(tmp_path / "attempts")
    os.makedirs(log_dir)
    executors = build_executors(cfg)
    _inject(executors, log_dir, {"1_filter": (1, dict(rank=1, after=20, times=99))})
    with pytest.raises(IncompleteJobError, match=r"job 1_filter: task\(s\) \[1\] did not complete.*rerun"):
        run_executors(executors, progress=False)
    assert attempts(log_dir, "1_filter") == {0: 1, 1: 4}  # datatrove resubmits a lost task 3 times

    executors = build_executors(cfg)
    _inject(executors, log_dir, {"1_filter": (1, dict(times=0))})
    run_executors(executors, progress=False)
    assert attempts(log_dir, "1_filter") == {0: 1, 1: 5}  # the finished task 0 was not redone
    assert outputs(Layout(cfg.output_dir)) == local_output
