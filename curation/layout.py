"""The map of a curation output folder: every path a stage reads or writes, derived from `output_dir`
(the stages themselves, what each reads and runs, are the table in `stages.py`); the filter stage's four jobs."""

from __future__ import annotations

import os
from dataclasses import dataclass

JOBS = ("1_filter", "2_buckets", "3_cluster", "4_write")
# files one stage writes into the folder it is given and a later stage reads (the writers name them from here)
LABELS_FILE, LABEL_FAILURES_FILE, AUDIT_REPORT_FILE = "labels.jsonl", "failed.jsonl", "report.json"


@dataclass(frozen=True)
class Layout:
    """Where every stage reads and writes, under `root` (the config's `output_dir`)."""

    root: str

    def _under(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    # sample: samples/<domain>.jsonl, samples/rejects.jsonl (sampling.REJECTS_FILE)
    @property
    def samples(self) -> str:
        return self._under("samples")

    # label: labels/{labels,failed}.jsonl, labels/summary.json, labels/cache.sqlite
    @property
    def labels(self) -> str:
        return self._under("labels")

    @property
    def labels_file(self) -> str:
        return os.path.join(self.labels, LABELS_FILE)

    @property
    def label_failures(self) -> str:
        return os.path.join(self.labels, LABEL_FAILURES_FILE)

    @property
    def label_cache(self) -> str:
        return os.path.join(self.labels, "cache.sqlite")

    # audit: audit/report.json, audit/revisions.json, audit/cache.sqlite
    @property
    def audit(self) -> str:
        return self._under("audit")

    @property
    def audit_report(self) -> str:
        return os.path.join(self.audit, AUDIT_REPORT_FILE)

    @property
    def audit_cache(self) -> str:
        return os.path.join(self.audit, "cache.sqlite")

    # distill: classifiers/<domain>.{bin,json} and their PNGs
    @property
    def models(self) -> str:
        return self._under("classifiers")

    # filter: pipeline/ (the four datatrove jobs' working files) -> dataset/data/*.parquet
    @property
    def work(self) -> str:
        return self._under("pipeline")

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
        """The folder `rexbert curate publish` uploads."""
        return self._under("dataset")

    @property
    def dataset_data(self) -> str:
        return os.path.join(self.dataset, "data")

    # card: dataset/README.md, dataset/domain_distribution.png
    @property
    def card(self) -> str:
        return os.path.join(self.dataset, "README.md")

    @property
    def chart(self) -> str:
        return os.path.join(self.dataset, "domain_distribution.png")

    # every stage: what its output was built from (`fingerprints.py`)
    def fingerprint(self, stage: str) -> str:
        return self._under("fingerprints", f"{stage}.json")
