"""One reader for raw documents, shared by every stage that reads them (curation sample and filter,
training shards): jsonl (plain, gzip or zstd), parquet and, for training, plain text one document per line.

Nothing in the input stops a run: each record that cannot become a document comes out as a `Reject`
(reason, file, line) for the caller to count and set aside. Compression and format are told by the
file's first bytes, not its name (a gzip file named `.jsonl` reads fine). A document longer than
`max_bytes` is an `oversized` reject and is never read whole into memory.

Reasons: `undecodable` (not UTF-8), `malformed_json`, `malformed_csv` (a row whose field count is not the
header's), `not_an_object`, `missing_text`, `empty_text`,
`oversized`, `unreadable_file` (truncated or corrupt compression, unreadable parquet; `line` is where
reading stopped, what came before it is kept). Callers may add their own (curation: `missing_domain`).
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

DEFAULT_MAX_BYTES = 1_000_000
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"


class MissingDecompressorError(ValueError):
    """A compressed input whose decompressor is not installed: a setup problem, not a bad record."""


@dataclass(frozen=True)
class Record:
    """A usable document: its text, the whole record (a JSON object or parquet row), where it came from."""

    text: str
    fields: dict
    file: str
    line: int


@dataclass(frozen=True)
class Reject:
    reason: str
    file: str
    line: int
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" + (f" ({self.detail})" if self.detail else "")

    def to_dict(self) -> dict:
        record = {"reason": self.reason, "file": self.file, "line": self.line}
        return record | ({"detail": self.detail[:200]} if self.detail else {})


def _decompression_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (EOFError, zlib.error, gzip.BadGzipFile)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    return errors


def sniff(handle: IO[bytes]) -> bytes:
    """The first 4 bytes of a seekable binary handle, leaving it where it was."""
    position = handle.tell()
    head = handle.read(4)
    handle.seek(position)
    return head


def decompressed(handle: IO[bytes], name: str) -> IO[bytes]:
    """`handle` itself, or a decompressing reader over it when its first bytes say gzip or zstd."""
    head = sniff(handle)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=handle, mode="rb")
    if head == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise MissingDecompressorError(f"{name} is zstd-compressed: install `zstandard` to read it "
                                           "(pip install zstandard)") from None
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(handle, closefd=False))
    return handle


TextKey = str | tuple[str, ...]  # one field, or several joined with a space (those that are strings)


def field_value(fields: dict, key: str) -> Any:
    """`fields[key]`, or for a dotted key absent as such the nested value (`fields.title` of a Vespa feed)."""
    if key in fields or "." not in key:
        return fields.get(key)
    value: Any = fields
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _joined_text(fields: dict, text_key: TextKey) -> str | None:
    if isinstance(text_key, str):
        text = fields.get(text_key)
        return text if isinstance(text, str) else None
    parts = [field_value(fields, key) for key in text_key]
    if not any(isinstance(part, str) for part in parts):
        return None
    return " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())


def _text_of(fields: Any, text_key: TextKey, file: str, line: int, max_bytes: int, size: int) -> Record | Reject:
    if size > max_bytes:
        return Reject("oversized", file, line, f"{size} bytes > max_bytes={max_bytes}")
    if not isinstance(fields, dict):
        return Reject("not_an_object", file, line, type(fields).__name__)
    text = _joined_text(fields, text_key)
    if text is None:
        return Reject("missing_text", file, line, f"no string field {text_key!r}")
    if not text.strip():
        return Reject("empty_text", file, line)
    return Record(text, fields, file, line)


def _lines(handle: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line without its newline, size); a line over `max_bytes` comes back empty with its size,
    read in bounded chunks and never held whole."""
    number = 0
    while raw := handle.readline(max_bytes + 2):
        number += 1
        if len(raw) == max_bytes + 2 and not raw.endswith(b"\n"):
            size = len(raw)
            while chunk := handle.readline(1 << 20):
                size += len(chunk.rstrip(b"\r\n"))
                if chunk.endswith(b"\n"):
                    break
            yield number, b"", size
            continue
        line = raw.rstrip(b"\r\n")
        yield number, line, len(line)


def _read_lines(handle: IO[bytes], name: str, text_key: TextKey | None, max_bytes: int) -> Iterator[Record | Reject]:
    """jsonl, or (`text_key=None`) plain text with one document per line; blank lines are separators."""
    number = 0
    try:
        for number, raw, size in _lines(handle, max_bytes):
            if size > max_bytes:
                yield Reject("oversized", name, number, f"{size} bytes > max_bytes={max_bytes}")
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield Reject("undecodable", name, number, f"byte {error.start}: {error.reason}")
                continue
            if text_key is None:
                yield Record(text, {"text": text}, name, number)
                continue
            try:
                fields = json.loads(text)
            except json.JSONDecodeError as error:
                yield Reject("malformed_json", name, number, error.msg)
                continue
            yield _text_of(fields, text_key, name, number, max_bytes, size)
    except _decompression_errors() as error:  # a truncated .gz: keep what came before, say where it stopped
        yield Reject("unreadable_file", name, number + 1, f"{type(error).__name__}: {error}")


def _read_parquet(handle: IO[bytes], name: str, text_key: TextKey, max_bytes: int) -> Iterator[Record | Reject]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = 0
    try:
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=1000):
            for fields in batch.to_pylist():
                row += 1
                text = _joined_text(fields, text_key)
                size = len(text.encode("utf-8", "surrogatepass")) if text is not None else 0
                yield _text_of(fields, text_key, name, row, max_bytes, size)
    except (pa.ArrowException, OSError) as error:  # corrupt footer or page
        yield Reject("unreadable_file", name, row + 1, f"{type(error).__name__}: {error}")


def _read_csv(handle: IO[bytes], name: str, text_key: TextKey, max_bytes: int) -> Iterator[Record | Reject]:
    """CSV with a header row; `line` is the physical line a row ends on (quoted fields may span lines)."""
    import csv

    reader = csv.reader(io.TextIOWrapper(handle, encoding="utf-8", errors="strict", newline=""))
    try:
        header = next(reader, None)
        for row in reader if header else ():
            if not any(row):
                continue
            if len(row) != len(header):
                yield Reject("malformed_csv", name, reader.line_num, f"{len(row)} fields, the header has {len(header)}")
                continue
            fields = dict(zip(header, row))
            yield _text_of(fields, text_key, name, reader.line_num, max_bytes, sum(len(v) for v in row))
    except (csv.Error, UnicodeDecodeError) as error:  # a csv reader cannot skip past a broken row
        yield Reject("unreadable_file", name, reader.line_num + 1, f"{type(error).__name__}: {error}")


def read_handle(handle: IO[bytes], name: str, text_key: TextKey | None = "text",
                max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Record | Reject]:
    """Records and rejects of one open, seekable binary file; `name` is how rejects name it.
    `text_key=None`: plain text, one document per line; a tuple of keys: those fields joined with a space.
    A name ending in `.csv` (or `.csv.gz`, `.csv.zst`) is read as CSV with a header row."""
    if sniff(handle) == PARQUET_MAGIC and text_key is not None:
        yield from _read_parquet(handle, name, text_key, max_bytes)
        return
    try:
        stream = decompressed(handle, name)
    except OSError as error:
        yield Reject("unreadable_file", name, 0, f"{type(error).__name__}: {error}")
        return
    if text_key is not None and name.lower().endswith((".csv", ".csv.gz", ".csv.zst")):
        yield from _read_csv(stream, name, text_key, max_bytes)
        return
    yield from _read_lines(stream, name, text_key, max_bytes)


def read_file(path: str, text_key: TextKey | None = "text", max_bytes: int = DEFAULT_MAX_BYTES,
              opener: Callable[..., IO[bytes]] | None = None) -> Iterator[Record | Reject]:
    """`read_handle` over `path`, opened with `opener(path, "rb")` (default: fsspec, so `hf://` and other
    remote paths work); a file that cannot be opened is one `unreadable_file` reject."""
    if opener is None:
        import fsspec

        def opener(p, mode):
            return fsspec.open(p, mode).open()
    try:
        handle = opener(path, "rb")
    except OSError as error:
        yield Reject("unreadable_file", path, 0, f"{type(error).__name__}: {error}")
        return
    with handle:
        yield from read_handle(handle, path, text_key, max_bytes)
