"""Loading evaluation data the way `datasets` users expect: a Hub id, a `save_to_disk` folder, or
local csv / json(l) / parquet / text files, with dotted names for nested columns (`fields.title`)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from datasets.exceptions import DatasetGenerationError

from rexbert.core.data_files import DATASETS_BUILDERS
from rexbert.core.html_text import clean_text, product_text  # noqa: F401 (re-exported: evaluation.data.clean_text)
from rexbert.core.hub_upload import check_hub_answers
from rexbert.core.paths import check_local_or_hub, hub_failure


class EvaluationDataError(ValueError):
    """Bad evaluation input: a missing column, an unknown label, an empty split; the message names it."""


def load_split(dataset: str | Path, split: str = "test") -> Dataset:
    """One split of `dataset`: a local file or folder (a `save_to_disk` folder, or a folder of data
    files) or a Hub id. A single local file is its own split whatever `split` says."""
    check_local_or_hub(dataset, "dataset")
    path = Path(dataset).expanduser()
    if path.is_file():
        if path.suffix not in DATASETS_BUILDERS:
            raise EvaluationDataError(
                f"{path}: unsupported file type {path.suffix!r}; use {sorted(DATASETS_BUILDERS)}.")
        if path.stat().st_size == 0:
            raise EvaluationDataError(f"{path} is empty.")
        try:
            with _quiet_builder_errors():  # datasets logs the parser's traceback before raising; we name the line
                loaded = load_dataset(DATASETS_BUILDERS[path.suffix], data_files=str(path), split="train")
        except DatasetGenerationError as error:  # a malformed line: name the file and the line, not the builder
            raise EvaluationDataError(_unreadable(path, error)) from None
    elif path.is_dir() and any((path / name).exists() for name in ("dataset_dict.json", "dataset_info.json")):
        loaded = load_from_disk(str(path))
    elif path.is_dir():
        loaded = load_dataset(str(path), split=split)  # a folder of data files
    else:
        check_hub_answers(str(dataset), "dataset", repo_type="dataset")  # one line for a server that never answers
        try:
            loaded = load_dataset(str(dataset), split=split)  # a Hub id
        except (OSError, ValueError) as error:  # ConnectionError, DatasetNotFoundError (a FileNotFoundError), ...
            if isinstance(error, EvaluationDataError):
                raise
            raise hub_failure(str(dataset), "dataset", error) from None
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise EvaluationDataError(f"{dataset} has no split {split!r}; it has {sorted(loaded)}.")
        loaded = loaded[split]
    if len(loaded) == 0:
        raise EvaluationDataError(f"{dataset} (split {split!r}) is empty.")
    return loaded.flatten()  # nested columns become dotted names: fields.title


@contextlib.contextmanager
def _quiet_builder_errors():
    log = logging.getLogger("datasets")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _parses_whole(handle) -> bool:
    import json

    try:
        json.load(handle)
        return True
    except ValueError:
        return False
    finally:
        handle.seek(0)


def _unreadable(path: Path, error: Exception) -> str:
    """`path:line: what is wrong` for the first line of a jsonl or csv file that does not parse, else the cause."""
    import csv
    import json

    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        if path.suffix == ".json" and _parses_whole(handle):
            pass  # one JSON document (not JSON lines): its cause below
        elif path.suffix in (".jsonl", ".json"):
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as bad:
                        return f"{path}:{number}: not valid JSON ({bad})."
                    if not isinstance(record, dict):
                        return f"{path}:{number}: a JSON {type(record).__name__}, not an object."
        elif path.suffix in (".csv", ".tsv"):
            reader = csv.reader(handle, delimiter="\t" if path.suffix == ".tsv" else ",", strict=True)
            try:
                width = None
                for row in reader:
                    width = len(row) if width is None else width
                    if row and len(row) != width:
                        return f"{path}:{reader.line_num}: {len(row)} fields where the header has {width}."
            except csv.Error as bad:
                return f"{path}:{reader.line_num}: not valid CSV ({bad})."
    cause = error.__cause__ or error
    detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]
    return f"{path}: cannot be read as {DATASETS_BUILDERS[path.suffix]} ({detail})."


def column(dataset: Dataset, name: str) -> list:
    if name not in dataset.column_names:
        raise EvaluationDataError(f"column {name!r} not found; available: {dataset.column_names}.")
    return list(dataset[name])


