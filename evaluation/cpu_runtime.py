"""Process settings for CPU inference: all cores, and freed memory kept for the next batch.

Both change the whole process, so they are applied where an encoder is loaded for bulk work
(`evaluation.embedding.load_encoder` on CPU), not on import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import torch

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# the largest mmap threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_all_cores(threads: int | None = None) -> int:
    """CPU inference on every core this process may use (torch's default can be fewer in containers), or on
    `threads` of them (several shards on one machine)."""
    threads = threads or usable_cores()
    torch.set_num_threads(threads)
    return threads


@functools.cache
def keep_freed_memory() -> bool:
    """Asks glibc to keep freed memory in the process instead of handing it back to the OS (True if it did).

    By default glibc serves large blocks with mmap and returns them (and the top of the heap) on free, so
    every batch's activations are page-faulted in again: zeroed pages, a cost proportional to the bytes
    touched. On the bench_embed catalog (micro, 2 cores, whole `rexbert embed` job, median of 4 processes
    each) it took fp32 from 10,179 to 11,536 tok/s and `--quantize int8` from 16,502 to 17,292.
    jemalloc and tcmalloc, which PyTorch's CPU performance guide recommends, behave the same way. Memory stays
    at the process's peak until it exits; a no-op (False) where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None and hasattr(libc, "gnu_get_libc_version") else None
    except OSError:
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # a fixed mmap threshold also stops glibc from lowering it again; both calls return 1 on success
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
