"""Tokenization as a datatrove job: each source's token shards written by `TokenizeShards`, a
pipeline step run as N tasks on a local, Slurm or Ray executor (`rexbert.core.executors`).

Task `r` of `N` reads its part of the source (a contiguous block of the local files, so a local source
runs at most one task per file; or `datasets`' split of a Hub stream), tokenizes without special tokens
and writes shards into `task-r/` (`training.shards` has the format). It is resumable twice over:
datatrove's completion markers skip finished tasks, and a task killed mid-way restarts after its last
completed shard (its manifest names only shards fully on disk), so no document is written twice. With
a cap, a task stops reading once it holds its share of the cap (`cap_tokens / N` tokens and
`min_documents / N` documents): a source is never tokenized past what the plan draws from it. A rerun
with a higher cap continues each task where it stopped. `run_tokenize_job` runs the job and merges the
tasks' manifests; `tokenize_to_shards` is the same job as one task in this process (the small local case).
"""

from __future__ import annotations

import math
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep
from tqdm.auto import tqdm

from rexbert.core.fingerprint import source_fingerprint

from .shards import (
    MANIFEST,
    MAX_DOCUMENT_BYTES,
    SET_ASIDE,
    TASK_MANIFEST,
    ReadReport,
    finished_manifest,
    local_files,
    merge_tasks,
    read_documents,
    read_json,
    shard_problem,
    task_folder,
    task_manifests,
    token_dtype,
    write_json,
)

BATCH_DOCUMENTS = 1000  # documents per tokenizer call (fewer near a cap, so reading stops close to it)


@dataclass(frozen=True)
class SourceSpec:
    """What to read: a local file/folder or a Hub id, its text column, split and Hub config (subset)."""

    source: str
    text_column: str = "text"
    split: str = "train"
    config: str | None = None


class IncompleteTokenizationError(OSError):
    """Tasks of the tokenization job did not finish; rerunning the same command resumes them."""


class TokenizeShards(PipelineStep):
    """Writes task `rank`'s token shards of `spec` into `folder/task-<rank>/` (see the module docstring)."""

    name = "🔢 RexBERT token shards"
    type = "🔢 - TOKENIZER"

    def __init__(self, spec: SourceSpec, tokenizer, folder: str, cap_tokens: int | None = None,
                 min_documents: int = 0, shard_documents: int = 50_000, max_bytes: int = MAX_DOCUMENT_BYTES,
                 fingerprint: dict | None = None, progress: bool = False):
        super().__init__()
        self.spec, self.tokenizer, self.folder = spec, tokenizer, str(folder)
        self.cap_tokens, self.min_documents = cap_tokens, min_documents
        self.shard_documents, self.max_bytes = shard_documents, max_bytes
        self.fingerprint, self.progress = fingerprint, progress

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        self.tokenize_task(rank, world_size)
        yield from data or ()

    def _new_task(self, rank: int, world_size: int) -> dict:
        spec = self.spec
        return {"source": spec.source, "dataset_config": spec.config, "split": spec.split,
                "text_column": spec.text_column, "fingerprint": self.fingerprint, "rank": rank, "tasks": world_size,
                "dtype": np.dtype(token_dtype(len(self.tokenizer))).name, "cap_tokens": None, "shards": [],
                "documents": 0, "tokens": 0, "skipped": {}, "done": False, "exhausted": False}

    def tokenize_task(self, rank: int, world_size: int) -> dict:
        out = task_folder(self.folder, rank)
        out.mkdir(parents=True, exist_ok=True)
        path = out / TASK_MANIFEST
        task = read_json(path) or self._new_task(rank, world_size)
        cap = None if self.cap_tokens is None else math.ceil(self.cap_tokens / world_size)
        min_documents = math.ceil(self.min_documents / world_size)
        if task["done"] and (task["exhausted"] or (cap is not None and task["cap_tokens"] is not None
                                                   and task["cap_tokens"] >= cap)):
            return task  # finished under a cap at least as high
        task["done"], task["cap_tokens"] = False, cap
        spec, dtype = self.spec, np.dtype(task["dtype"])
        report = ReadReport(limit=None)
        documents = read_documents(spec.source, spec.text_column, report, spec.split, spec.config, self.max_bytes,
                                   rank, world_size)
        for _ in range(task["documents"]):  # already in completed shards
            next(documents, None)
        report.skipped, report.problems = Counter(task["skipped"]), []  # from here on, as counted before
        # on the terminal itself: the local executor sends stderr (datatrove's logging) to its console.log
        bar = tqdm(desc=f"tokenizing {Path(spec.source).name}", unit=" docs", disable=not self.progress,
                   initial=task["documents"], file=sys.__stderr__)
        pending: list[list[int]] = []

        def write_set_aside() -> None:
            if report.problems:
                with (out / SET_ASIDE).open("a", encoding="utf-8") as handle:
                    handle.write("".join(f"{p}\n" for p in report.problems))
                report.problems.clear()

        def flush() -> None:
            if not pending:
                return
            lengths = np.fromiter((len(x) for x in pending), dtype=np.int64, count=len(pending))
            index = len(task["shards"])
            tokens_file, offsets_file = out / f"tokens-{index:05d}.npy", out / f"offsets-{index:05d}.npy"
            _save(tokens_file, np.fromiter((t for x in pending for t in x), dtype=dtype, count=int(lengths.sum())))
            _save(offsets_file, np.concatenate([[0], np.cumsum(lengths)]))
            write_set_aside()
            task["documents"] += len(pending)
            task["tokens"] += int(lengths.sum())
            task["skipped"] = dict(report.skipped)
            task["shards"].append({"file": f"{out.name}/{tokens_file.name}",
                                   "offsets": f"{out.name}/{offsets_file.name}",
                                   "documents": len(pending), "tokens": int(lengths.sum()),
                                   "documents_after": task["documents"], "tokens_after": task["tokens"],
                                   "skipped_after": task["skipped"]})
            write_json(path, task)  # the shard is complete only once the task's manifest names it
            self.stat_update("documents", value=len(pending))
            self.stat_update("tokens", value=int(lengths.sum()))
            pending.clear()

        def reached(extra_tokens: int) -> bool:
            return cap is not None and task["tokens"] + extra_tokens >= cap and \
                task["documents"] + len(pending) >= min_documents

        pending_tokens, exhausted = 0, False
        while not reached(pending_tokens):
            batch = []
            for text in documents:
                batch.append(text)
                if len(batch) >= self._batch_size(cap, task, pending, pending_tokens, min_documents):
                    break
            if len(report.problems) >= 10_000:  # a mostly broken source: keep its list on disk, not in memory
                write_set_aside()
            if not batch:
                exhausted = True
                break
            ids = self.tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
            for x in ids:
                pending.append(x)
                pending_tokens += len(x)
                if len(pending) >= self.shard_documents:
                    flush()
                    pending_tokens = 0
            bar.update(len(batch))
        flush()
        bar.close()
        task["skipped"], task["exhausted"], task["done"] = dict(report.skipped), exhausted, True
        write_set_aside()
        for reason, count in report.skipped.items():
            self.stat_update(f"set_aside_{reason}", value=count)
        write_json(path, task)
        return task

    @staticmethod
    def _batch_size(cap, task, pending, pending_tokens, min_documents) -> int:
        """Full batches far from the cap; near it, about as many documents as the cap still has room for."""
        if cap is None:
            return BATCH_DOCUMENTS
        held, count = task["tokens"] + pending_tokens, task["documents"] + len(pending)
        if count == 0:
            return 1
        room = max(math.ceil((cap - held) / (held / count or 1)), min_documents - count, 1)
        return min(BATCH_DOCUMENTS, room)


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        np.save(handle, array)
    tmp.replace(path)


# --- the job ---------------------------------------------------------------------------------------

def _clear(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _stale_reason(built: dict, fingerprint: dict | None) -> str | None:
    if fingerprint is None:
        return None
    if "fingerprint" not in built:
        return "it was written before caches recorded their input's fingerprint"
    old = built["fingerprint"] or {}
    changed = sorted(name for name in set(old) | set(fingerprint) if old.get(name) != fingerprint.get(name))
    return f"its input changed ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''})" if changed else None


def check_folder(folder: Path, spec: SourceSpec, fingerprint: dict | None, tasks: int | None) -> int:
    """The number of tasks to run: the existing build's (another number is refused), else `tasks` or 1.
    Refuses a folder holding another source; empties one whose input changed or that predates tasks."""
    built = read_json(folder / MANIFEST)
    if built is None:
        first = task_manifests(folder)
        built = first[0] if first and first[0] is not None else None
    if built is None:
        return tasks or 1
    if built["source"] != spec.source or built["text_column"] != spec.text_column:
        raise ValueError(f"{folder} holds shards of {built['source']!r} ({built['text_column']!r}); "
                         "use another folder for another source.")
    reason = _stale_reason(built, fingerprint) or (
        None if "tasks" in built else "it was written before token shards were built by tasks")
    if reason is not None:
        print(f"token cache {folder} is stale: {reason}; tokenizing {spec.source} again")
        _clear(folder)
        return tasks or 1
    if tasks is not None and built["tasks"] != tasks:
        raise ValueError(f"{folder} was tokenized in {built['tasks']} task(s); rerun with --tasks {built['tasks']} to "
                         "resume or extend it (or delete the folder to start over).")
    return built["tasks"]


def repair(folder: Path) -> list[str]:
    """Cuts each task's manifest back to before its first missing or damaged shard, so that a rerun redoes
    that shard and what follows it in that task only; returns what was found."""
    found = []
    for rank, task in enumerate(task_manifests(folder)):
        if task is None:
            continue
        bad = next((i for i, shard in enumerate(task["shards"]) if shard_problem(folder, shard)), None)
        if bad is None:
            continue
        found.append(shard_problem(folder, task["shards"][bad]))
        kept = task["shards"][:bad]
        last = kept[-1] if kept else {"documents_after": 0, "tokens_after": 0, "skipped_after": {}}
        task.update(shards=kept, documents=last["documents_after"], tokens=last["tokens_after"],
                    skipped=last["skipped_after"], done=False, exhausted=False)
        write_json(task_folder(folder, rank) / TASK_MANIFEST, task)
        for marker in folder.glob(f"logs/*/completions/{rank:05d}"):
            marker.unlink()
    if found:
        (folder / MANIFEST).unlink(missing_ok=True)
    return found


def covers(manifest: dict | None, cap_tokens: int | None) -> bool:
    """Whether a finished build holds what a cap asks for (all of the source when the cap is None)."""
    if manifest is None:
        return False
    if manifest["exhausted"]:
        return True
    return cap_tokens is not None and manifest["cap_tokens"] is not None and \
        manifest["cap_tokens"] * manifest["tasks"] >= cap_tokens


def run_tokenize_job(spec: SourceSpec, tokenizer, folder: str | Path, *, cap_tokens: int | None = None,
                     min_documents: int = 0, tasks: int | None = None, executor: str = "local", workers: int = 1,
                     slurm: dict | None = None, ray_address: str = "auto", ray: dict | None = None,
                     shard_documents: int = 50_000, progress: bool = True) -> dict | None:
    """Builds (or resumes, or extends to a higher cap) `spec`'s shards in `folder` in `tasks` tasks (None:
    as many as the existing build, else 1) and returns the merged manifest; None for Slurm, which only
    submits the job (a later run merges the finished tasks)."""
    from rexbert.core.executors import build_executor, connect_ray, incomplete_tasks

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = local_files(spec.source)
    if files and tasks is not None:  # a local source is split by file: one task per file at most
        tasks = min(tasks, len(files))
    fingerprint = source_fingerprint(spec.source)
    tasks = check_folder(folder, spec, fingerprint, tasks)
    for problem in repair(folder):
        print(f"token cache: {problem}; re-tokenizing from the shard before it (finished shards are kept)")
    manifest = finished_manifest(folder)
    if covers(manifest, cap_tokens):
        return manifest
    (folder / MANIFEST).unlink(missing_ok=True)  # extended below
    step = TokenizeShards(spec, tokenizer, str(folder), cap_tokens, min_documents, shard_documents,
                          fingerprint=fingerprint, progress=progress and executor == "local" and workers == 1)
    logs = folder / "logs" / f"cap-{cap_tokens if cap_tokens is not None else 'all'}"
    job = build_executor(executor, [step], tasks, str(logs), workers=workers,
                         job_name=f"rexbert-tokenize-{folder.name}", slurm=slurm, ray=ray)
    if executor == "ray":
        connect_ray(ray_address, "--ray-address")
    job.run()
    if executor == "slurm":
        return None
    missing = incomplete_tasks(job)
    if missing:
        raise IncompleteTokenizationError(f"tokenizing {spec.source}: task(s) {missing} did not finish (see "
                                          f"{logs}/logs); rerun the same command to resume: finished shards are kept")
    return merge_tasks(folder)


def tokenize_to_shards(source: str | Path, tokenizer, out_dir: str | Path, text_column: str = "text",
                       shard_documents: int = 50_000, progress: bool = True, split: str = "train",
                       config: str | None = None, cap_tokens: int | None = None) -> dict:
    """Tokenizes `source` (no special tokens) into `out_dir` in this process: the job above as one task
    on a local executor; resumes after completed shards."""
    return run_tokenize_job(SourceSpec(str(source), text_column, split, config), tokenizer, out_dir,
                            cap_tokens=cap_tokens, shard_documents=shard_documents, progress=progress)
