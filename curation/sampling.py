"""Reproducible per-domain samples from FineFineWeb (or local files in its schema), read record by
record with the shared document reader (`rexbert.core.documents`) and shuffled by `datasets`' seeded
streaming shuffle, so a 4.4T-token source is never downloaded whole and no bad line stops the run:
every reject is counted and written to `<samples>/rejects.jsonl` with its file and line."""

from __future__ import annotations

import glob
import json
import os
from collections import Counter

from rexbert.core.documents import Record, Reject, read_file
from rexbert.core.outputs import atomic_open
from rexbert.core.paths import check_local_or_hub

from .config import SampleConfig
from .domains import FINEFINEWEB_REPO, Domain

# which files of a folder are documents; their compression and format are told by content, not name
_LOCAL_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.jsonl.zst", "*.json", "*.json.gz", "*.parquet")
REJECTS_FILE = "rejects.jsonl"


def domain_files(source: str, domain: Domain) -> list[str]:
    """The files holding `domain`'s records. source: a Hub dataset id (FineFineWeb layout:
    `<domain>/*.jsonl`), a local folder in the same layout, or one local file with a domain column."""
    did = domain.finefineweb_id
    if os.path.isdir(source):
        files = sorted({f for pattern in _LOCAL_PATTERNS
                        for f in glob.glob(os.path.join(source, did, "**", pattern), recursive=True)})
        if not files:
            raise FileNotFoundError(f"no jsonl/parquet files for domain {did!r} under {os.path.join(source, did)}")
        return files
    if os.path.isfile(source):
        return [source]
    check_local_or_hub(source, "sample.source")  # a missing folder is a missing path, not an unknown Hub dataset
    from huggingface_hub import HfFileSystem

    pattern = f"datasets/{source or FINEFINEWEB_REPO}/{did}/*.jsonl"
    return sorted(f"hf://{path}" for path in HfFileSystem().glob(pattern))


def domain_records(cfg: SampleConfig, domain: Domain, rejects: list[Reject] | None = None):
    """A streaming `datasets.IterableDataset` of the domain's usable records (the record's fields and its
    file:line); rejects are appended to `rejects` as the stream is read."""
    from datasets import IterableDataset

    did, single_file = domain.finefineweb_id, os.path.isfile(cfg.source)
    rejects = rejects if rejects is not None else []

    def records(files: list[str]):
        for path in files:
            for item in read_file(path, cfg.text_key, cfg.max_bytes):
                if isinstance(item, Reject):
                    rejects.append(item)
                elif not single_file or item.fields.get(cfg.domain_key) == did:
                    yield {"record": json.dumps(_scalars(item)), "where": f"{item.file}:{item.line}"}

    # a list in gen_kwargs is what `datasets` shards and shuffles the order of
    return IterableDataset.from_generator(records, gen_kwargs={"files": domain_files(cfg.source, domain)})


def _scalars(record: Record) -> dict:
    return {k: v for k, v in record.fields.items() if isinstance(v, (str, int, float, bool)) or v is None}


def sample_domain(cfg: SampleConfig, domain: Domain, rejects: list[Reject] | None = None) -> list[dict]:
    """`cfg.per_domain` records, the same ones for the same (source, seed): a seeded shuffle of the files
    and a shuffle buffer over their records, then the first N."""
    stream = domain_records(cfg, domain, rejects).shuffle(seed=cfg.seed, buffer_size=cfg.shuffle_buffer)
    out = []
    for index, row in enumerate(stream):
        record = json.loads(row["record"])
        record["text"] = record[cfg.text_key]
        record["domain"] = domain.finefineweb_id
        record["id"] = str(record.get("id", f"{domain.finefineweb_id}-{index}"))
        out.append(record)
        if len(out) >= cfg.per_domain:
            break
    return out


def write_samples(cfg: SampleConfig, domains: list[Domain], out_dir: str, progress: bool = True) -> dict:
    """Writes `<out_dir>/<domain>.jsonl` for each domain and `<out_dir>/rejects.jsonl` (what was set aside,
    with file:line); returns the counts per domain and the rejects by reason."""
    from tqdm.auto import tqdm

    counts, rejects = {}, []
    for domain in tqdm(domains, desc="sample", unit="domain", disable=not progress):
        records = sample_domain(cfg, domain, rejects)
        with atomic_open(os.path.join(out_dir, f"{domain.finefineweb_id}.jsonl")) as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        counts[domain.finefineweb_id] = len(records)
    rejects_path = os.path.join(out_dir, REJECTS_FILE)
    with atomic_open(rejects_path) as f:
        for reject in rejects:
            f.write(json.dumps(reject.to_dict()) + "\n")
    return {"per_domain": counts, "rejected": dict(Counter(r.reason for r in rejects)), "rejects_file": rejects_path}


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
