"""The filter stage's datatrove reader over the shared document reader (`rexbert.core.documents`): every
record that cannot become a document is written to a rejects file (jsonl: reason, file, line) and
counted in datatrove's stats; the run goes on.

Reasons: those of `rexbert.core.documents` (listed in its docstring), plus `missing_domain`.
"""

from __future__ import annotations

import json
import os
from typing import IO

from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.readers.base import BaseDiskReader

from rexbert.core.documents import DEFAULT_MAX_BYTES, Record, Reject, read_handle

from .worker_state import LoadedInWorker


def count_words(text: str) -> int:
    return len(text.split())


class RobustReader(LoadedInWorker, BaseDiskReader):
    """jsonl(.gz/.zst) and parquet, record by record, in FineFineWeb's schema (`text`, `domain`, ...).

    The domain comes from the record's `domain_key`, else from the file's folder name (FineFineWeb
    keeps each domain in its own folder) when that is one of `domains`, else `default_domain`.
    `token_count` goes into the metadata so datatrove's stats report tokens kept/dropped per step;
    it is a whitespace word count unless `tokenizer_file` (a `tokenizers` JSON) is given.
    """

    name = "🛡 Robust reader"
    loaded_in_worker = {"_tokenizer": None, "_rejects": None}

    def __init__(
        self,
        data_folder: DataFolderLike,
        rejects_folder: DataFolderLike,
        max_bytes: int = DEFAULT_MAX_BYTES,
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

    # -- token counting ------------------------------------------------------------------------
    def _count_tokens(self, text: str) -> int:
        if not self.tokenizer_file:
            return count_words(text)
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(self.tokenizer_file)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    # -- rejects -------------------------------------------------------------------------------
    def _reject(self, reject: Reject) -> None:
        self.stat_update(f"rejected_{reject.reason}")
        self.stat_update("rejected")
        self._rejects.write(json.dumps(reject.to_dict()) + "\n")

    # -- records -------------------------------------------------------------------------------
    def _domain_of(self, record: dict, filepath: str) -> str | None:
        value = record.get(self.domain_key)
        if isinstance(value, str) and value:
            return value
        folder = os.path.basename(os.path.dirname(filepath))
        if folder in self.domains:
            return folder
        return self.default_domain

    def _document(self, record: Record) -> Document | None:
        domain = self._domain_of(record.fields, record.file)
        if domain is None:
            self._reject(Reject("missing_domain", record.file, record.line,
                                f"no field {self.domain_key!r} and no default domain"))
            return None
        source_id = record.fields.get(self.id_key)
        source_id = str(source_id) if source_id is not None else f"{record.file}:{record.line}"
        metadata = {"domain": domain, "source_id": source_id, "file": record.file, "line": record.line,
                    "token_count": self._count_tokens(record.text)}
        if isinstance(record.fields.get("url"), str):
            metadata["url"] = record.fields["url"]
        return Document(text=record.text, id=source_id, metadata=metadata)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        try:
            handle = self.data_folder.open(filepath, "rb", compression=None)  # compression is sniffed, not named
        except OSError as error:
            self._reject(Reject("unreadable_file", filepath, 0, f"{type(error).__name__}: {error}"))
            return
        with handle:
            for item in read_handle(handle, filepath, self.text_key, self.max_bytes):
                if isinstance(item, Reject):
                    self._reject(item)
                elif (doc := self._document(item)) is not None:
                    yield doc

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # one rejects file per task, rewritten if the task reruns (a completed task never reruns)
        with self.rejects_folder.open(f"{rank:05d}.jsonl", "w") as self._rejects:
            yield from super().run(data, rank, world_size)
