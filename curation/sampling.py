"""Reproducible per-domain samples from FineFineWeb (or local files in its schema), streamed with
`datasets` so a 4.4T-token source is never downloaded whole."""

from __future__ import annotations

import glob
import json
import os

from .config import SampleConfig
from .domains import FINEFINEWEB_REPO, Domain

_LOCAL_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.json", "*.parquet")


def _builder(files: list[str]) -> str:
    return "parquet" if all(f.endswith(".parquet") for f in files) else "json"


def domain_stream(source: str, domain: Domain, domain_key: str = "domain"):
    """A streaming `datasets.IterableDataset` of one domain's records.

    source: a Hub dataset id (FineFineWeb layout: `<domain>/*.jsonl`), a local folder in the same
    layout, or one local jsonl/parquet file with a `domain_key` column.
    """
    from datasets import load_dataset

    did = domain.finefineweb_id
    if os.path.isdir(source):
        files = sorted(f for p in _LOCAL_PATTERNS
                       for f in glob.glob(os.path.join(source, did, "**", p), recursive=True))
        if not files:
            raise FileNotFoundError(f"no jsonl/parquet files for domain {did!r} under {os.path.join(source, did)}")
        return load_dataset(_builder(files), data_files=files, split="train", streaming=True)
    if os.path.isfile(source):
        stream = load_dataset(_builder([source]), data_files=[source], split="train", streaming=True)
        return stream.filter(lambda row: row.get(domain_key) == did)
    # Hub: FineFineWeb keeps each domain in its own folder of jsonl files
    return load_dataset(source or FINEFINEWEB_REPO, data_files=f"{did}/*.jsonl", split="train", streaming=True)


def sample_domain(cfg: SampleConfig, domain: Domain) -> list[dict]:
    """`cfg.per_domain` records, the same ones for the same (source, seed): a seeded shuffle buffer
    over the stream, then the first N with usable text."""
    stream = domain_stream(cfg.source, domain, cfg.domain_key).shuffle(seed=cfg.seed, buffer_size=cfg.shuffle_buffer)
    out = []
    for index, row in enumerate(stream):
        text = row.get(cfg.text_key)
        if not isinstance(text, str) or not text.strip():
            continue
        record = {k: v for k, v in row.items() if isinstance(v, (str, int, float, bool)) or v is None}
        record["text"] = text
        record["domain"] = domain.finefineweb_id
        record.setdefault("id", f"{domain.finefineweb_id}-{index}")
        record["id"] = str(record["id"])
        out.append(record)
        if len(out) >= cfg.per_domain:
            break
    return out


def write_samples(cfg: SampleConfig, domains: list[Domain], out_dir: str, progress: bool = True) -> dict[str, int]:
    """Writes `<out_dir>/<domain>.jsonl` for each domain; returns the counts."""
    from tqdm.auto import tqdm

    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for domain in tqdm(domains, desc="sample", unit="domain", disable=not progress):
        records = sample_domain(cfg, domain)
        with open(os.path.join(out_dir, f"{domain.finefineweb_id}.jsonl"), "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        counts[domain.finefineweb_id] = len(records)
    return counts


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
