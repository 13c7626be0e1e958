"""Push the dataset folder (Parquet shards, card, chart) to the Hub, resumably."""

from __future__ import annotations

import os

from rexbert.core.hub_upload import upload_folder_to_hub

# upload_large_folder keeps its resume state in <folder>/.cache/huggingface/: never part of the dataset
_LOCAL_STATE = ".cache"


def files_to_upload(folder: str) -> list[tuple[str, int]]:
    """(path relative to `folder`, size in bytes), sorted; the uploader's local state left out."""
    out = []
    for root, dirs, files in os.walk(folder):
        if root == folder and _LOCAL_STATE in dirs:
            dirs.remove(_LOCAL_STATE)
        for name in files:
            path = os.path.join(root, name)
            out.append((os.path.relpath(path, folder), os.path.getsize(path)))
    return sorted(out)


def publish(folder: str, repo_id: str, private: bool = False, dry_run: bool = False, api=None,
            num_workers: int | None = None) -> list[tuple[str, int]]:
    """Creates the dataset repo and uploads `folder` resumably (rerun the same command after an interruption
    and finished files are skipped); `api` is injectable (tests pass a fake). With `dry_run`, returns what
    would be sent, touches nothing."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"dataset folder {folder} does not exist (run the pipeline first)")
    files = files_to_upload(folder)
    names = [name for name, _ in files]
    if "README.md" not in names or not any(n.endswith(".parquet") for n in names):
        raise ValueError(f"{folder} needs README.md (run `rexbert curate card`) and Parquet shards before publishing")
    if dry_run:
        return files
    upload_folder_to_hub(folder, repo_id, repo_type="dataset", commit_message="Upload Ecom-niverse", private=private,
                         resumable=True, ignore_patterns=[f"{_LOCAL_STATE}/**"], num_workers=num_workers, api=api)
    return files
