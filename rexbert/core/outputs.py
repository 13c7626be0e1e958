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


# --- never destroy what the user did not create ------------------------------------------------------------
# A folder this project writes carries MANIFEST: the commands that wrote it and, for files that may be rewritten in
# place (a model card's README.md), the sha256 they had when written. Before any work, `claim_output` refuses an
# existing non-empty folder without it, and an existing file it does not record unchanged, unless --overwrite.
MANIFEST = ".rexbert-output.json"
MANIFEST_FORMAT = "rexbert-output/1"


class OutputExistsError(FileExistsError):
    """An output would replace something this project did not write; the message names it and the way out."""


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: str | Path) -> dict | None:
    """The folder's manifest, or None when this project never marked it (or the mark is unreadable)."""
    import json

    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT else None


def _written_by_us(path: Path) -> bool:
    """Whether the file at `path` is recorded in its folder's manifest with the content it has now."""
    manifest = read_manifest(path.parent) or {}
    recorded = (manifest.get("files") or {}).get(path.name)
    return recorded is not None and recorded == _sha256(path)


def _listing(folder: Path, limit: int = 3) -> str:
    names = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def claim_output(path: str | Path, *, overwrite: bool = False, option: str = "--output-dir",
                 folder: bool = True) -> Path:
    """Checks, before any work, that writing `path` destroys nothing the user made, and returns it as a Path.

    `folder`: `path` is a folder the command writes into; it may be absent, empty, marked by this project
    (`mark_output`), or anything with `overwrite`. Otherwise `path` is a file; it may be absent, recorded unchanged
    in its folder's manifest (`mark_output(..., files=[...])`), or anything with `overwrite`. Anything else raises
    `OutputExistsError` naming the path, what it holds and `option`."""
    path = Path(path)
    if overwrite or not path.exists():
        return path
    if folder:
        if not path.is_dir():
            raise OutputExistsError(f"{path} is a file, not a folder; choose another {option}.")
        if not any(path.iterdir()) or read_manifest(path) is not None:
            return path
        raise OutputExistsError(f"{path} already holds files rexbert did not write ({_listing(path)}); choose "
                                f"another {option}, or pass --overwrite to write into it anyway.")
    if path.is_dir():
        raise OutputExistsError(f"{path} is a folder, not a file; choose another {option}.")
    if _written_by_us(path):
        return path
    raise OutputExistsError(f"{path} exists; choose another {option} or pass --overwrite to replace it (rexbert "
                            "did not write it, or it was edited since).")


def mark_output(folder: str | Path, command: str, files: list[str | Path] = (), entries: bool = False) -> Path:
    """Marks `folder` as written by `command` and records the content of `files` (in it) so that a later run may
    replace them while nobody has edited them. `entries`: also records what the folder holds now (a finished
    output), so that `replace_folder` refuses to delete anything added to it since. Returns the folder."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder) or {"format": MANIFEST_FORMAT, "written_by": [], "files": {}}
    if command not in manifest["written_by"]:
        manifest["written_by"].append(command)
    for file in files:
        file = folder / Path(file).name
        if file.is_file():
            manifest.setdefault("files", {})[file.name] = _sha256(file)
    if entries:
        manifest["entries"] = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return folder


def replace_folder(path: str | Path, *, overwrite: bool = False, option: str = "--output-dir") -> Path:
    """`claim_output`, then empties the folder (it was this project's, or `overwrite` said so) for a fresh run."""
    path = claim_output(path, overwrite=overwrite, option=option)
    recorded = (read_manifest(path) or {}).get("entries") if path.is_dir() and not overwrite else None
    added = sorted({p.name for p in path.iterdir()} - set(recorded) - {MANIFEST}) if recorded is not None else []
    if added:
        raise OutputExistsError(f"{path} was written by rexbert but now also holds {', '.join(added[:3])}"
                                f"{' ...' if len(added) > 3 else ''}; choose another {option}, or pass --overwrite "
                                "to replace it anyway.")
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():  # a file where the folder goes, with --overwrite
        path.unlink()
    return path
