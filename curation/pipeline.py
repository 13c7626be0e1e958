"""The filtering pipeline as four datatrove jobs, on Local, Slurm or Ray executors from config
(where they read and write: `layout.py`; what they did, read back from their stats: `job_stats.py`).

1 filter:  RobustReader -> language -> URL -> boilerplate -> advertisement -> Gopher -> C4 -> profanity
           -> score -> eval decontamination -> JsonlWriter (kept docs, one file per task) -> MinhashDedupSignature
2 buckets: MinhashDedupBuckets            3 cluster: MinhashDedupCluster
4 write:   kept docs of task r -> MinhashDedupFilter -> ParquetWriter (text, domain, score, source_id, provenance)

Each job has its own logging dir (stats, completions): a rerun skips every finished task.
"""

from __future__ import annotations

import json
import os

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

from . import decont, dedup
from .config import CurationConfig
from .domains import resolve
from .filters import (
    AdvertisementFilter,
    BlocklistFilter,
    BoilerplateFilter,
    DomainScoreFilter,
    OfflineLanguageFilter,
    ProductC4Filter,
    ProductGopherFilter,
    ProductURLFilter,
)
from .job_stats import job_summaries
from .layout import Layout
from .reader import RobustReader


class TaskFileReader(JsonlReader):
    """Reads exactly the file that task `rank` of the filter job wrote: MinHash signatures index
    documents by their position in that task's stream, so the filter must see the same stream
    (sharding a listing would misalign when a task wrote no file)."""

    name = "📖 Task file reader"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        name = f"{rank:05d}.jsonl.gz"
        if self.data_folder.isfile(name):
            for doc in self.read_file(name):
                self.update_doc_stats(doc)
                yield doc


def _provenance_adapter(steps: list[str]):
    def adapter(self, document) -> dict:
        meta = document.metadata
        provenance = {
            "file": meta.get("file"), "line": meta.get("line"), "language": meta.get("language"),
            "language_score": meta.get("language_score"), "stages": steps,
        }
        return {"text": document.text, "domain": meta.get("domain"), "score": meta.get("score"),
                "source_id": meta.get("source_id", document.id), "provenance": json.dumps(provenance)}

    return adapter


def output_schema():
    import pyarrow as pa

    return pa.schema([("text", pa.string()), ("domain", pa.string()), ("score", pa.float64()),
                      ("source_id", pa.string()), ("provenance", pa.string())])


def filter_steps(cfg: CurationConfig, decont_index: str | None = None) -> list:
    """The filter + score steps (also what the benchmark times); decontamination last (after the
    score has dropped most documents, so the fewest are hashed) when an index folder is given."""
    domains = resolve(cfg.domains)
    f, b = cfg.filter, cfg.filter.blocklist
    steps = [
        OfflineLanguageFilter(languages=tuple(f.languages), min_score=f.min_language_score),
        ProductURLFilter(domain_files=tuple(b.url_files), word_files=tuple(b.url_word_files),
                         phrase_files=tuple(b.url_phrase_files), soft_word_threshold=b.soft_url_words),
        BoilerplateFilter(max_boilerplate_ratio=f.boilerplate_max_ratio),
        AdvertisementFilter(max_ratio=f.advertisement_max_ratio),
        ProductGopherFilter(**f.gopher),
        ProductC4Filter(**f.c4),
        BlocklistFilter(word_files=tuple(b.word_files), allow_files=tuple(b.allow_word_files), min_hits=b.min_hits),
        DomainScoreFilter(Layout(cfg.output_dir).models, [d.finefineweb_id for d in domains if d.needs_filter],
                          [d.finefineweb_id for d in domains if not d.needs_filter]),
    ]
    if decont_index:
        steps.append(decont.EvalDecontFilter(decont_index, f.decontaminate.n_grams))
    return steps


def build_decont_index(cfg: CurationConfig) -> str | None:
    """The eval-set index the filter job reads (None when decontamination is off)."""
    d = cfg.filter.decontaminate
    if not d.enabled:
        return None
    folder = Layout(cfg.output_dir).decont_index
    decont.build_index(d.eval_sets or decont.bundled_eval_sets(), folder, d.n_grams)
    return folder


def build_pipelines(cfg: CurationConfig) -> dict[str, tuple[list, int]]:
    """job name -> (pipeline steps, number of tasks)."""
    layout = Layout(cfg.output_dir)
    f = cfg.filter
    if not f.input:
        raise ValueError("config field 'filter.input' is empty: name the folder of jsonl/parquet files to filter")
    if not os.path.exists(f.input) and "://" not in f.input:
        raise FileNotFoundError(f"filter.input {f.input!r} does not exist")
    domain_ids = [d.finefineweb_id for d in resolve(cfg.domains)]
    reader = RobustReader(f.input, layout.rejects, max_bytes=f.max_bytes, domains=domain_ids,
                          default_domain=f.default_domain, tokenizer_file=f.tokenizer_file,
                          glob_pattern=f.glob_pattern, text_key=cfg.sample.text_key, domain_key=cfg.sample.domain_key)
    steps = filter_steps(cfg, build_decont_index(cfg))
    stage_names = [type(s).__name__ for s in steps] + ["MinhashDedup"]
    tasks = cfg.executor.tasks
    return {
        "1_filter": ([reader, *steps, JsonlWriter(layout.kept, output_filename="${rank}.jsonl"),
                      dedup.signature_step(layout.minhash, f.dedup)], tasks),
        "2_buckets": ([dedup.buckets_step(layout.minhash, f.dedup)], f.dedup.num_buckets * cfg.executor.dedup_tasks),
        "3_cluster": ([dedup.cluster_step(layout.minhash, f.dedup)], 1),
        "4_write": ([TaskFileReader(layout.kept), dedup.filter_step(layout.minhash),
                     ParquetWriter(layout.dataset_data, output_filename="train-${rank}.parquet",
                                   adapter=_provenance_adapter(stage_names), schema=output_schema(),
                                   max_file_size=512 * 2**20)], tasks),
    }


def build_executors(cfg: CurationConfig, verbose: bool = False) -> dict:
    """job name -> executor; each depends on the one before (Slurm/Ray chain them as dependent jobs).
    Local jobs write datatrove's console output to their logs folder unless `verbose`."""
    from rexbert.core.executors import build_executor

    layout = Layout(cfg.output_dir)
    ex = cfg.executor
    executors, previous = {}, None
    for job, (steps, tasks) in build_pipelines(cfg).items():
        executors[job] = previous = build_executor(
            ex.type, steps, tasks, layout.logs(job), workers=ex.workers, job_name=f"ecomniverse-{job}",
            depends=previous, quiet=not verbose, slurm=vars(ex.slurm), ray=vars(ex.ray))
    return executors


class IncompleteJobError(RuntimeError):
    """Tasks of a job did not complete (after the executor's retries); a rerun resumes them."""


def connect_ray(address: str) -> None:
    """`ray.init` for `executor.ray.address` (see `rexbert.core.executors.connect_ray`)."""
    from rexbert.core.executors import connect_ray as connect

    connect(address, "executor.ray.address")


def run_executors(executors: dict, progress: bool = True) -> None:
    """Runs the jobs one after another, each to completion, so a job whose tasks failed for good stops
    the chain with an error instead of its dependants waiting on it."""
    from tqdm.auto import tqdm

    for job, executor in tqdm(executors.items(), desc="curate filter", unit="job", disable=not progress):
        executor.run()
        missing = executor.get_incomplete_ranks(range(executor.world_size))
        if missing:
            raise IncompleteJobError(
                f"job {job}: task(s) {missing} did not complete (see {executor.logging_dir.path}/logs); "
                "rerun the same command to resume: finished tasks are skipped, never redone")


def run_pipeline(cfg: CurationConfig, progress: bool = True, verbose: bool = False) -> dict[str, dict]:
    """Runs the four jobs and returns a summary per job. Local and Ray: one job after another, each to
    completion; a local job's datatrove log and stats go to `<work>/logs/<job>/console.log` (and the
    console too with `verbose`). Slurm: submits the chain of dependent arrays and returns at once ({})."""
    executors = build_executors(cfg, verbose)
    if cfg.executor.type == "slurm":
        list(executors.values())[-1].run()
        return {}
    if cfg.executor.type == "ray":
        connect_ray(cfg.executor.ray.address)
    run_executors(executors, progress)
    return job_summaries(Layout(cfg.output_dir))
