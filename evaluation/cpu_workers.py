"""Bulk CPU encoding on forked worker processes, one torch thread each, whole batches per worker.

torch's default splits every op over all cores (intra-op threads). On small encoders attention scales worse
with threads than the matrix products, most of all under int8, which speeds up only the matrix products: on
micro, 2 cores, one worker per core was faster than intra-op threads in both precisions, with the same vectors
(`benchmarks/bench_cpu_workers.py`, results/cpu_workers.md: fp32 +3% and +6%, int8 +18% and +5% in two runs).
The workers are forked once the model and the token ids exist, so they share them copy-on-write instead of
receiving copies. Linux only (fork).

Each worker holds one batch's activations at a time, so N workers need about N times the memory of one
process. The first batch (the longest: batches come longest first) runs in the calling process, where its
memory peak is measured; only as many workers start as that peak fits into the memory the system has free.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

# Of the memory the system has available, the share the workers may plan to use (the rest: the page cache the
# input files and the parts need, and the margin of a measurement made on one batch).
MEMORY_SHARE = 0.8

# What the forked workers run: (encode_batch, rows), set just before the pool forks.
_JOB: tuple[Callable[[list[list[int]]], torch.Tensor], list[list[int]]] | None = None


def can_fork() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def _proc_kib(path: str, field: str) -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_measuring_peak(run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int | None]:
    """`run()`'s result and how many bytes this process's resident memory grew by at its peak while it ran
    (None where /proc does not tell). Where the peak counter cannot be reset it is an upper bound."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: the peak := the current resident size
    except OSError:
        pass
    before = _proc_kib("/proc/self/status", "VmRSS")
    result = run()
    peak = _proc_kib("/proc/self/status", "VmHWM")
    return result, None if before is None or peak is None else max(0, peak - before) * 1024


def workers_that_fit(wanted: int, batch_bytes: int | None) -> int:
    """At most `wanted`, as many as can each hold `batch_bytes` more in the memory the system has available."""
    available = _proc_kib("/proc/meminfo", "MemAvailable")
    if batch_bytes is None or available is None:
        return wanted
    return max(1, min(wanted, int(available * 1024 * MEMORY_SHARE // max(batch_bytes, 1))))


def _one_thread() -> None:
    torch.set_num_threads(1)


def _encode(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    encode_batch, rows = _JOB
    with torch.inference_mode():
        return batch, encode_batch([rows[i] for i in batch]).numpy()


def encode_batches_in_workers(encode_batch: Callable[[list[list[int]]], torch.Tensor], rows: list[list[int]],
                              batches: Iterable[np.ndarray], workers: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`(batch, vectors)` for every batch of row indices: the first here (its memory peak decides how many of
    the `workers` fit), the others in the order the workers finish them."""
    global _JOB
    first, *rest = batches
    vectors, batch_bytes = run_measuring_peak(lambda: encode_batch([rows[i] for i in first]))
    yield first, vectors
    fit = workers_that_fit(workers, batch_bytes)
    if fit < workers:
        logger.warning("%d CPU workers fit in the available memory (one batch took %.0f MiB), not %d", fit,
                       batch_bytes / 2**20, workers)
    workers = min(fit, len(rest))
    if workers <= 1:  # forking costs more than it gives
        yield from ((batch, encode_batch([rows[i] for i in batch])) for batch in rest)
        return
    _JOB = (encode_batch, rows)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_one_thread)
    try:
        futures = [pool.submit(_encode, batch) for batch in rest]
        for future in as_completed(futures):
            yield future.result()
    except BrokenProcessPool as error:
        raise RuntimeError(f"a CPU worker process died (killed for memory?); nothing of this call was kept. Rerun "
                           f"with fewer workers than {workers}, or a smaller batch size.") from error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None
