"""Bulk CPU encoding on forked worker processes, one torch thread each, whole batches per worker.

torch's default splits every op over all cores (intra-op threads). On small encoders attention scales worse
with threads than the matrix products, most of all under int8, which speeds up only the matrix products: on
micro, 2 cores, one worker per core was fp32 +3% and int8 +18% over intra-op threads, with the same vectors
(`benchmarks/bench_cpu_workers.py`, results/cpu_workers.md). The workers are forked once the model and the
token ids exist, so they share them copy-on-write instead of receiving copies. Linux only (fork).
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch

# What the forked workers run: (encode_batch, rows), set just before the pool forks.
_JOB: tuple[Callable[[list[list[int]]], torch.Tensor], list[list[int]]] | None = None


def can_fork() -> bool:
    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def _one_thread() -> None:
    torch.set_num_threads(1)


def _encode(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    encode_batch, rows = _JOB
    with torch.inference_mode():
        return batch, encode_batch([rows[i] for i in batch]).numpy()


def encode_batches_in_workers(encode_batch: Callable[[list[list[int]]], torch.Tensor], rows: list[list[int]],
                              batches: Iterable[np.ndarray], workers: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`(batch, vectors)` for every batch of row indices, in the order the workers finish them."""
    global _JOB
    _JOB = (encode_batch, rows)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_one_thread)
    try:
        futures = [pool.submit(_encode, batch) for batch in batches]
        for future in as_completed(futures):
            yield future.result()
    except BrokenProcessPool as error:
        raise RuntimeError(f"a CPU worker process died (killed for memory?); nothing of this call was kept. Rerun "
                           f"with fewer workers than {workers}, or a smaller batch size.") from error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None
