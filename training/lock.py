"""One run per output folder: an advisory lock (`flock`) held for the whole run.

The kernel drops the lock when the holder exits, even after kill -9, so a stale lock file never
blocks a later run; the file records the holder's pid and host so a refused run can name it.
(`flock` on network filesystems is only as good as the filesystem's lock support.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path

from rexbert.core.outputs import mark_output

LOCK_FILE = ".rexbert-run.lock"


class FolderInUseError(OSError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Holds `folder`'s lock while the block runs; raises `FolderInUseError` naming the holder."""
    if not folder.exists() or not any(folder.iterdir()):  # a folder made for the run: rexbert's (outputs.claim_output)
        mark_output(folder, "rexbert train")
    path = folder / LOCK_FILE
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            raise FolderInUseError(
                f"{folder} is in use by another run (pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
                f"lock {path}); wait for it to finish or choose another --output-dir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
