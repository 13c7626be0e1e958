"""Ingestion that survives bad input: every record that cannot become a document is written to a
rejects file (jsonl: reason, file, line) and counted in datatrove's stats; the run goes on.

Reasons: `undecodable` (not UTF-8), `malformed_json`, `not_an_object`, `missing_text`,
`empty_text`, `oversized` (more than `max_bytes`), `missing_domain`, `unreadable_file`.
"""

from __future__ import annotations

import json
import os
from typing import IO, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.readers.base import BaseDiskReader

REJECT_REASONS = (
    "undecodable", "malformed_json", "not_an_object", "missing_text", "empty_text", "oversized", "missing_domain",
    "unreadable_file",
)


def count_words(text: str) -> int:
    return len(text.split())


class RobustReader(BaseDiskReader):
    """jsonl(.gz/.zst) and parquet, record by record, in FineFineWeb's schema (`text`, `domain`, ...).

    The domain comes from the record's `domain_key`, else from the file's folder name (FineFineWeb
    keeps each domain in its own folder) when that is one of `domains`, else `default_domain`.
    `token_count` goes into the metadata so datatrove's stats report tokens kept/dropped per step;
    it is a whitespace word count unless `tokenizer_file` (a `tokenizers` JSON) is given.
    """

    name = "🛡 Robust reader"

    def __init__(
        self,
        data_folder: DataFolderLike,
        rejects_folder: DataFolderLike,
        max_bytes: int = 1_000_000,
        domain_key: str = "domain",
        domains: list[str] | None = None,
        default_domain: str | None = None,
        tokenizer_file: str | None = None,
        glob_pattern: str | None = None,
        limit: int = -1,
        text_key: str = "text",
        id_key: str = "id",
    ):
        super().__init__(data_folder, limit=limit, text_key=text_key, id_key=id_key, glob_pattern=glob_pattern)
        self.rejects_folder = get_datafolder(rejects_folder)
        self.max_bytes = max_bytes
        self.domain_key = domain_key
        self.domains = set(domains or [])
        self.default_domain = default_domain
        self.tokenizer_file = tokenizer_file
        self._tokenizer = None
        self._rejects: IO | None = None

    def __getstate__(self):
        # loaded models/handles stay out of pickles and deep copies (executors serialize steps)
        state = self.__dict__.copy()
        state.update({"_tokenizer": None, "_rejects": None})
        return state

    # -- token counting ------------------------------------------------------------------------
    def _count_tokens(self, text: str) -> int:
        if not self.tokenizer_file:
            return count_words(text)
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(self.tokenizer_file)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    # -- rejects -------------------------------------------------------------------------------
    def _reject(self, reason: str, filepath: str, line: int, detail: str = "") -> None:
        self.stat_update(f"rejected_{reason}")
        self.stat_update("rejected")
        record = {"reason": reason, "file": filepath, "line": line}
        if detail:
            record["detail"] = detail[:200]
        self._rejects.write(json.dumps(record) + "\n")

    # -- records -------------------------------------------------------------------------------
    def _domain_of(self, record: dict, filepath: str) -> str | None:
        value = record.get(self.domain_key)
        if isinstance(value, str) and value:
            return value
        folder = os.path.basename(os.path.dirname(filepath))
        if folder in self.domains:
            return folder
        return self.default_domain

    def _document(self, record, filepath: str, line: int, size: int) -> Document | None:
        if size > self.max_bytes:
            self._reject("oversized", filepath, line, f"{size} bytes > max_bytes={self.max_bytes}")
            return None
        if not isinstance(record, dict):
            self._reject("not_an_object", filepath, line, type(record).__name__)
            return None
        text = record.get(self.text_key)
        if not isinstance(text, str):
            self._reject("missing_text", filepath, line, f"no string field {self.text_key!r}")
            return None
        if not text.strip():
            self._reject("empty_text", filepath, line)
            return None
        domain = self._domain_of(record, filepath)
        if domain is None:
            self._reject("missing_domain", filepath, line, f"no field {self.domain_key!r} and no default domain")
            return None
        source_id = record.get(self.id_key)
        source_id = str(source_id) if source_id is not None else f"{filepath}:{line}"
        metadata = {"domain": domain, "source_id": source_id, "file": filepath, "line": line,
                    "token_count": self._count_tokens(text)}
        if isinstance(record.get("url"), str):
            metadata["url"] = record["url"]
        return Document(text=text, id=source_id, metadata=metadata)

    def _read_jsonl(self, filepath: str) -> Iterator[Document]:
        with self.data_folder.open(filepath, "rb", compression="infer") as f:
            for line_no, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue  # blank separator lines are not records
                if len(raw) > self.max_bytes:  # before decoding: never parse a 10 MB line
                    self._reject("oversized", filepath, line_no, f"{len(raw)} bytes > max_bytes={self.max_bytes}")
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    self._reject("undecodable", filepath, line_no, str(error))
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as error:
                    self._reject("malformed_json", filepath, line_no, str(error))
                    continue
                doc = self._document(record, filepath, line_no, len(raw))
                if doc is not None:
                    yield doc

    def _read_parquet(self, filepath: str) -> Iterator[Document]:
        import pyarrow.parquet as pq

        with self.data_folder.open(filepath, "rb") as f:
            row = 0
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1000):
                for record in batch.to_pylist():
                    row += 1
                    text = record.get(self.text_key)
                    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else 0
                    doc = self._document(record, filepath, row, size)
                    if doc is not None:
                        yield doc

    def read_file(self, filepath: str) -> DocumentsPipeline:
        reader = self._read_parquet if filepath.endswith(".parquet") else self._read_jsonl
        try:
            yield from reader(filepath)
        except (OSError, EOFError, ValueError) as error:  # truncated gzip, corrupt parquet footer, ...
            self._reject("unreadable_file", filepath, 0, f"{type(error).__name__}: {error}")

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # one rejects file per task, rewritten if the task reruns (a completed task never reruns)
        with self.rejects_folder.open(f"{rank:05d}.jsonl", "w") as self._rejects:
            yield from super().run(data, rank, world_size)
