"""Loading evaluation data the way `datasets` users expect: a Hub id, a `save_to_disk` folder, or
local csv / json(l) / parquet / text files, with dotted names for nested columns (`fields.title`)."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from rexbert.core.data_files import DATASETS_BUILDERS
from rexbert.core.html_text import html_to_text
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
        loaded = load_dataset(DATASETS_BUILDERS[path.suffix], data_files=str(path), split="train")
    elif path.is_dir() and any((path / name).exists() for name in ("dataset_dict.json", "dataset_info.json")):
        loaded = load_from_disk(str(path))
    elif path.is_dir():
        loaded = load_dataset(str(path), split=split)  # a folder of data files
    else:
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


def column(dataset: Dataset, name: str) -> list:
    if name not in dataset.column_names:
        raise EvaluationDataError(f"column {name!r} not found; available: {dataset.column_names}.")
    return list(dataset[name])


def clean_text(value: object) -> str:
    """Product text as a reader sees it: HTML tags dropped, entities decoded, whitespace collapsed."""
    if value is None:
        return ""
    text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return html_to_text(text, one_line=True)
