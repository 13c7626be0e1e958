"""On-disk label cache keyed by (model, prompt version, text hash): a crash or a rerun never pays
for the same label twice. sqlite: atomic commits, safe across threads with one lock."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class LabelCache:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS labels (model TEXT, prompt TEXT, hash TEXT, label INTEGER, "
                         "raw TEXT, PRIMARY KEY (model, prompt, hash))")
        self._db.commit()

    def get(self, model: str, prompt: str, text: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT label FROM labels WHERE model=? AND prompt=? AND hash=?",
                                   (model, prompt, text_hash(text))).fetchone()
        return None if row is None else int(row[0])

    def put(self, model: str, prompt: str, text: str, label: int, raw: str = "") -> None:
        with self._lock:  # committed per label: a crash loses at most the in-flight requests
            self._db.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)",
                             (model, prompt, text_hash(text), int(label), raw))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]

    def close(self) -> None:
        self._db.close()
