"""Cheap fingerprints of input files, so that a cache or a stage output built from them can tell when
they changed: size, mtime and a hash of the first and last 64 KB (cheap on terabytes; an edit changes it)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_fingerprint(path: str | Path) -> str:
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 16))
        if stat.st_size > 1 << 17:
            handle.seek(-(1 << 16), 2)
            digest.update(handle.read())
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()[:16]}"


def source_fingerprint(source: str | Path) -> dict | None:
    """{file: fingerprint} of a local source (file or folder, recursively, hidden files left out);
    None when it is not a local path (a Hub id, versioned by the Hub)."""
    path = Path(source)
    if path.is_file():
        return {path.name: file_fingerprint(path)}
    if path.is_dir():
        return {str(p.relative_to(path)): file_fingerprint(p) for p in sorted(path.rglob("*"))
                if p.is_file() and not p.name.startswith(".")}
    return None
