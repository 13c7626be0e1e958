"""Writing outputs so that a full disk or a permission problem is one line naming the path, and
nothing already written is lost: files are written under a temporary name and renamed into place.

`OutputError` is an `OSError`, so `rexbert`'s command line prints it as one line without a traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# what a failed write says, by errno: a full or read-only disk, a quota, a size limit, permissions
WRITE_FAILURES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system or the process's size limit",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}


class OutputError(OSError):
    """An output could not be written; the message names the path and why."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code

    def __str__(self) -> str:
        return self.args[0]


def _free_space(path: Path) -> str:
    for folder in (path, *path.parents):
        if folder.exists():
            return f"{shutil.disk_usage(folder).free:,} bytes free there"
    return "free space unknown"


def _native_write_errors() -> tuple[type[Exception], ...]:
    try:
        from safetensors import SafetensorError
    except ImportError:
        return (RuntimeError,)
    return RuntimeError, SafetensorError


@contextmanager
def writing(path: str | Path, exact: bool = False, native_writers: bool = False) -> Iterator[None]:
    """Inside, a disk-full or permission error becomes an `OutputError` naming the file the error names
    (unless `exact`), else `path`. `native_writers`: the block only writes, through C++ writers (torch.save,
    safetensors) that report a failed write without an errno (`basic_ios::clear: iostream error`), so any
    RuntimeError there becomes an `OutputError` naming `path` too."""
    try:
        yield
    except OutputError:
        raise
    except OSError as error:
        if error.errno not in WRITE_FAILURES:
            raise
        where = path if exact else error.filename or path
        raise OutputError(f"cannot write {where}: {WRITE_FAILURES[error.errno]}", error.errno) from error
    except Exception as error:
        if not native_writers or not isinstance(error, _native_write_errors()):
            raise
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise OutputError(f"cannot write {path}: {detail} ({_free_space(Path(path))})") from error


def temporary_name(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.tmp")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """A file handle whose content replaces `path` only when the block completes; on any error the
    temporary file is removed and whatever `path` held before is untouched."""
    path = Path(path)
    tmp = temporary_name(path)
    with writing(path, exact=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
                yield handle
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)
