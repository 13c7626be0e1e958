"""Token shards: the format, the document reader that feeds them, and memory-mapped reading.

A source's shard folder holds one sub-folder per tokenization task, `task-NNNNN/`, with
`tokens-NNNNN.npy` (uint16 when the vocabulary fits, else uint32; documents back to back),
`offsets-NNNNN.npy` (int64 document boundaries, so packing knows where each document starts),
`task.json` (the completed shards, documents and tokens, records set aside by reason, whether the
task is done) and `set-aside.txt` (file:line: reason of each record set aside). Once every task is
done, `manifest.json` lists all shards in task order with the totals; `ShardedCorpus` reads it and
checks each file before memory-mapping it. The shards are written by `training.tokenize_job`.

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

from rexbert.core.data_files import DATASETS_BUILDERS
from rexbert.core.documents import Reject, read_file

MANIFEST = "manifest.json"
TASK_MANIFEST = "task.json"
SET_ASIDE = "set-aside.txt"  # file:line: reason, one record set aside per line
# read by the shared document reader (`rexbert.core.documents`), so that a bad record is reported with its file
# and line; compression is told by content, so `.gz`/`.zst` may wrap any of them
DOCUMENT_FILES = (".txt", ".jsonl", ".parquet")
# one document longer than this is set aside (`oversized`): tokenizing 50 MB at once takes gigabytes
MAX_DOCUMENT_BYTES = 10_000_000


class ShardError(ValueError):
    """A shard folder that cannot be read as built: names the file and what is wrong with it."""


@dataclass
class ReadReport:
    """What was set aside while reading, with where: nothing is dropped silently."""

    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    limit: int | None = 1000  # where-lines kept (None: all; the tokenization job drains them to a file)

    def skip(self, reason: str, where: str | None = None) -> None:
        self.skipped[reason] += 1
        if where is not None and (self.limit is None or len(self.problems) < self.limit):
            self.problems.append(where)

    def reject(self, reject: Reject) -> None:
        self.skip(reject.reason, str(reject))


def token_dtype(vocab_size: int) -> type:
    """uint16 when every token id fits (RexBERT's 50,368 do): half the disk and page cache of uint32."""
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def task_folder(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"task-{rank:05d}"


def local_files(source: str | Path) -> list[Path]:
    """The document files the shared reader reads for `source` ([] when `datasets` reads it)."""
    path = Path(source)
    if path.is_file() and _is_document_file(path):
        return [path]
    return _document_files(path) if path.is_dir() else []


def read_documents(source: str | Path, text_column: str = "text", report: ReadReport | None = None,
                   split: str = "train", config: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES,
                   rank: int = 0, world_size: int = 1) -> Iterator[str]:
    """Non-empty documents of `source` (task `rank`'s part of it when split over `world_size` tasks: a
    contiguous block of the local files in name order, or `datasets`' split by node); empty/whitespace
    ones and bad records are counted in `report`."""
    report = report if report is not None else ReadReport()
    files = local_files(source)
    if not files:
        for text in _read_with_datasets(str(source), text_column, split, config, rank, world_size):
            if isinstance(text, str) and text.strip():
                yield text
            elif text is not None:
                report.skip("empty_text")
        return
    # contiguous blocks keep the documents of all tasks, concatenated in task order, in file-name order
    for file in files[rank * len(files) // world_size:(rank + 1) * len(files) // world_size]:
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


def _read_with_datasets(source: str, text_column: str, split: str, config: str | None = None, rank: int = 0,
                        world_size: int = 1) -> Iterator[str]:
    from datasets import load_dataset, load_from_disk
    from datasets.distributed import split_dataset_by_node

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
        try:
            data = load_dataset(source, config, split=split, streaming=True)
        except (OSError, ValueError) as error:  # offline, unknown id, no access, wrong config or split
            where = f"Hub dataset {source!r} (config {config!r}, split {split!r})"
            raise OSError(f"{where} cannot be read: {error}. Check the id, config and split on its card, your "
                          "token (HF_TOKEN) for gated data, and HF_HUB_OFFLINE / HF_ENDPOINT.") from None
    if world_size > 1:  # a map-style dataset in contiguous blocks; a stream by its files (else every n-th record)
        data = data.shard(world_size, rank, contiguous=True) if hasattr(data, "flatten_indices") else \
            split_dataset_by_node(data, rank=rank, world_size=world_size)
    for record in data:
        if text_column not in record:
            raise ValueError(f"{source}: column {text_column!r} not found; available: {sorted(record)}.")
        yield record[text_column]


# --- manifests -------------------------------------------------------------------------------------

def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise ShardError(f"{path}: not valid JSON ({error}); delete it to rebuild what it describes.") from None


def write_json(path: Path, value: dict) -> None:
    """Written whole or not at all: a shard counts only once the manifest naming it is on disk."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)


def task_manifests(folder: str | Path) -> list[dict | None]:
    """Each task's `task.json` in rank order (None for a task that wrote nothing yet); [] before any task."""
    folder = Path(folder)
    first = next(iter(sorted(folder.glob(f"task-*/{TASK_MANIFEST}"))), None)
    if first is None:
        return []
    tasks = read_json(first)["tasks"]
    return [read_json(task_folder(folder, rank) / TASK_MANIFEST) for rank in range(tasks)]


def merge_tasks(folder: str | Path) -> dict | None:
    """Writes and returns `manifest.json` once every task is done (None while any is not)."""
    folder = Path(folder)
    tasks = task_manifests(folder)
    if not tasks or not all(t is not None and t["done"] for t in tasks):
        return None
    first = tasks[0]
    shards, skipped, set_aside = [], Counter(), []
    for rank, task in enumerate(tasks):
        shards += [{**s, "task": rank} for s in task["shards"]]
        skipped.update(task["skipped"])
        listing = task_folder(folder, rank) / SET_ASIDE
        if listing.exists():
            set_aside.append(listing.read_text())
    (folder / SET_ASIDE).write_text("".join(set_aside))
    manifest = {key: first[key] for key in ("source", "dataset_config", "split", "text_column", "fingerprint",
                                            "tasks", "cap_tokens", "dtype")}
    manifest |= {"shards": shards, "documents": sum(t["documents"] for t in tasks),
                 "tokens": sum(t["tokens"] for t in tasks), "skipped": dict(skipped),
                 "exhausted": all(t["exhausted"] for t in tasks), "set_aside_file": str(folder / SET_ASIDE),
                 "problems": "".join(set_aside).splitlines()[:100]}  # the first ones; all are in the file
    write_json(folder / MANIFEST, manifest)
    return manifest


def finished_manifest(folder: str | Path) -> dict | None:
    """The manifest of a finished build (merging the tasks' ones if that was not done yet), else None."""
    manifest = read_json(Path(folder) / MANIFEST)
    if manifest is not None and "tasks" not in manifest:
        return None  # written before shards were built by tasks: rebuilt by the tokenization job
    return manifest if manifest is not None else merge_tasks(folder)


def available_tokens(folder: str | Path) -> int | None:
    """Tokens in a finished shard folder (what a plan can draw from it), None when it is not built."""
    manifest = finished_manifest(folder) if Path(folder).is_dir() else None
    return None if manifest is None else int(manifest["tokens"])


def shard_problem(folder: Path, shard: dict) -> str | None:
    """What is wrong with a shard's files as its manifest describes them, or None."""
    for name, expected in ((shard["file"], shard["tokens"]), (shard["offsets"], shard["documents"] + 1)):
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        try:
            size = np.load(path, mmap_mode="r").shape[0]
        except (ValueError, OSError, EOFError) as error:
            return f"{path} is truncated or unreadable ({error})"
        if size != expected:
            return f"{path} is truncated or altered ({size:,} entries, the manifest says {expected:,})"
    return None


class ShardedCorpus:
    """Documents of a finished shard folder, memory-mapped: `len()`, `lengths`, `document(i)`.
    A missing, truncated or unreadable shard file is a `ShardError` naming it."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        manifest = finished_manifest(folder)
        if manifest is None:
            raise ShardError(f"{folder}: no finished token shards ({MANIFEST} missing).")
        self.tokens, offsets = [], []
        for shard in manifest["shards"]:
            problem = shard_problem(folder, shard)
            if problem is not None:
                raise ShardError(problem)
            self.tokens.append(np.load(folder / shard["file"], mmap_mode="r"))
            offsets.append(np.load(folder / shard["offsets"]))
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

