"""Which `datasets` builder reads a local data file, by its suffix (training sources, evaluation sets)."""

from __future__ import annotations

DATASETS_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
