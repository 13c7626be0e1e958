"""Tokenize once into memory-mappable shards, resumably; read documents back without loading them.

A shard folder holds `tokens-NNNNN.npy` (uint32, documents back to back), `offsets-NNNNN.npy`
(int64 document boundaries) and `manifest.json` (completed shards, documents read, documents
skipped by reason). A rerun skips the documents its completed shards already hold.

Sources: local `.txt` (one document per line), `.jsonl` and `.parquet` files (gzip/zstd-compressed or
not), or folders of them, are read by the shared document reader (`rexbert.core.documents`), so a bad record
(undecodable bytes, malformed JSON, a missing text field, a truncated `.gz`, a document over
`MAX_DOCUMENT_BYTES`) is reported with its file and line and skipped; anything else `datasets` opens (a
Hub id, csv files, a `save_to_disk` folder) goes through `datasets`, streamed for Hub ids.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rexbert.core.data_files import DATASETS_BUILDERS
from rexbert.core.documents import Reject, read_file
from rexbert.core.fingerprint import source_fingerprint

MANIFEST = "manifest.json"
# read by the shared document reader (`rexbert.core.documents`), so that a bad record is reported with its file
# and line; compression is told by content, so `.gz`/`.zst` may wrap any of them
DOCUMENT_FILES = (".txt", ".jsonl", ".parquet")
# one document longer than this is set aside (`oversized`): tokenizing 50 MB at once takes gigabytes
MAX_DOCUMENT_BYTES = 10_000_000


@dataclass
class ReadReport:
    """What was set aside while reading, with where: nothing is dropped silently."""

    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str | None = None) -> None:
        self.skipped[reason] += 1
        if where is not None and len(self.problems) < 1000:
            self.problems.append(where)

    def reject(self, reject: Reject) -> None:
        self.skip(reject.reason, str(reject))


def read_documents(source: str | Path, text_column: str = "text", report: ReadReport | None = None,
                   split: str = "train", config: str | None = None,
                   max_bytes: int = MAX_DOCUMENT_BYTES) -> Iterator[str]:
    """Non-empty documents of `source`; empty/whitespace ones and bad records are counted in `report`."""
    report = report if report is not None else ReadReport()
    path = Path(source)
    files = [path] if path.is_file() and _is_document_file(path) else _document_files(path) if path.is_dir() else []
    if not files:
        for text in _read_with_datasets(str(source), text_column, split, config):
            if isinstance(text, str) and text.strip():
                yield text
            elif text is not None:
                report.skip("empty_text")
        return
    for file in files:
        plain_text = ".txt" in file.suffixes  # one document per line
        for item in read_file(str(file), None if plain_text else text_column, max_bytes, opener=open):
            if isinstance(item, Reject):
                report.reject(item)
            else:
                yield item.text


def _is_document_file(path: Path) -> bool:
    return any(suffix in DOCUMENT_FILES for suffix in path.suffixes)


def _document_files(folder: Path) -> list[Path]:
    """A folder's document files in name order, when those are all it holds (else `datasets` reads it)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return files if files and all(_is_document_file(p) for p in files) else []


def _read_with_datasets(source: str, text_column: str, split: str, config: str | None = None) -> Iterator[str]:
    from datasets import load_dataset, load_from_disk

    path = Path(source)
    if path.is_dir() and (path / "dataset_info.json").exists():
        data = load_from_disk(source)
    elif path.is_file():
        builder = DATASETS_BUILDERS.get(path.suffix)
        if builder is None:
            raise ValueError(f"{source}: unsupported file type {path.suffix!r}.")
        data = load_dataset(builder, data_files=source, split="train")
    else:
        # Hub corpora can be larger than the disk; `config` is the card's subset name (None: the default one)
        data = load_dataset(source, config, split=split, streaming=True)
    for record in data:
        if text_column not in record:
            raise ValueError(f"{source}: column {text_column!r} not found; available: {sorted(record)}.")
        yield record[text_column]


def _stale_reason(manifest: dict, fingerprint: dict | None) -> str | None:
    if fingerprint is None:
        return None
    if "fingerprint" not in manifest:
        return "it was written before caches recorded their input's fingerprint"
    old = manifest["fingerprint"] or {}
    changed = sorted(name for name in set(old) | set(fingerprint) if old.get(name) != fingerprint.get(name))
    return f"its input changed ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''})" if changed else None


def tokenize_to_shards(source: str | Path, tokenizer, out_dir: str | Path, text_column: str = "text",
                       shard_documents: int = 50_000, progress: bool = True, split: str = "train",
                       config: str | None = None) -> dict:
    """Tokenizes `source` (no special tokens) into shards in `out_dir`; resumes after completed shards.
    A cache whose local input files changed since (size, mtime or content) is rebuilt, saying why."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    fingerprint = source_fingerprint(source)
    if manifest_path.exists():
        existing = json.loads(manifest_path.read_text())
        if existing["source"] != str(source) or existing["text_column"] != text_column:
            raise ValueError(f"{out_dir} holds shards of {existing['source']!r} ({existing['text_column']!r}); "
                             "use another folder for another source.")
        reason = _stale_reason(existing, fingerprint)
        if reason is not None:
            print(f"token cache {out_dir} is stale: {reason}; tokenizing {source} again")
            for old in [*out_dir.glob("tokens-*.npy"), *out_dir.glob("offsets-*.npy"), manifest_path]:
                old.unlink()
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {
        "source": str(source), "text_column": text_column, "shards": [], "documents": 0, "tokens": 0, "skipped": {},
        "fingerprint": fingerprint}
    report = ReadReport(Counter(manifest["skipped"]))
    documents = read_documents(source, text_column, report, split, config)
    for _ in range(manifest["documents"]):  # already in completed shards
        next(documents, None)
    bar = tqdm(desc=f"tokenizing {Path(str(source)).name}", unit=" docs", disable=not progress,
               initial=manifest["documents"])
    pending: list[str] = []

    def flush() -> None:
        if not pending:
            return
        ids = tokenizer(pending, add_special_tokens=False, verbose=False)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        index = len(manifest["shards"])
        np.save(out_dir / f"tokens-{index:05d}.npy", np.fromiter((t for x in ids for t in x), dtype=np.uint32,
                                                                 count=int(lengths.sum())))
        np.save(out_dir / f"offsets-{index:05d}.npy", np.concatenate([[0], np.cumsum(lengths)]))
        manifest["shards"].append({"index": index, "documents": len(ids), "tokens": int(lengths.sum())})
        manifest["documents"] += len(ids)
        manifest["tokens"] += int(lengths.sum())
        manifest["skipped"] = dict(report.skipped)
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.replace(manifest_path)  # the shard is complete only once the manifest names it
        bar.update(len(ids))
        pending.clear()

    for text in documents:
        pending.append(text)
        if len(pending) >= shard_documents:
            flush()
    flush()
    manifest["skipped"] = dict(report.skipped)
    manifest["problems"] = report.problems[:100]
    manifest_path.write_text(json.dumps(manifest, indent=1))
    bar.close()
    return manifest


class ShardedCorpus:
    """Documents of a shard folder, memory-mapped: `len()`, `lengths`, `document(i)`."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        manifest = json.loads((folder / MANIFEST).read_text())
        self.tokens = [np.load(folder / f"tokens-{s['index']:05d}.npy", mmap_mode="r") for s in manifest["shards"]]
        offsets = [np.load(folder / f"offsets-{s['index']:05d}.npy") for s in manifest["shards"]]
        self._shard_of = np.concatenate([np.full(len(o) - 1, i) for i, o in enumerate(offsets)]) if offsets else \
            np.zeros(0, dtype=np.int64)
        self._local = np.concatenate([np.arange(len(o) - 1) for o in offsets]) if offsets else np.zeros(0, np.int64)
        self._offsets = offsets
        self.lengths = np.concatenate([np.diff(o) for o in offsets]) if offsets else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def document(self, i: int) -> np.ndarray:
        shard, local = self._shard_of[i], self._local[i]
        start, end = self._offsets[shard][local], self._offsets[shard][local + 1]
        return np.asarray(self.tokens[shard][start:end], dtype=np.int64)
