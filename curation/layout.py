"""Where every curation stage reads and writes under `output_dir`, and the filter stage's four jobs."""

from __future__ import annotations

import os
from dataclasses import dataclass

JOBS = ("1_filter", "2_buckets", "3_cluster", "4_write")


@dataclass(frozen=True)
class Layout:
    """Where every stage reads and writes, under `output_dir`."""

    root: str

    @property
    def work(self) -> str:
        return os.path.join(self.root, "pipeline")

    @property
    def kept(self) -> str:
        return os.path.join(self.work, "filtered")

    @property
    def minhash(self) -> str:
        return os.path.join(self.work, "minhash")

    @property
    def decont_index(self) -> str:
        return os.path.join(self.work, "decont_index")

    @property
    def rejects(self) -> str:
        return os.path.join(self.work, "rejects")

    def logs(self, job: str) -> str:
        return os.path.join(self.work, "logs", job)

    @property
    def dataset(self) -> str:
        return os.path.join(self.root, "dataset")

    @property
    def models(self) -> str:
        return os.path.join(self.root, "classifiers")
