"""Push the dataset folder (Parquet shards, card, chart) to the Hub."""

from __future__ import annotations

import os


def files_to_upload(folder: str) -> list[str]:
    out = []
    for root, _, files in os.walk(folder):
        for name in files:
            out.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(out)


def publish(folder: str, repo_id: str, private: bool = False, dry_run: bool = False, api=None,
            commit_message: str = "Upload Ecom-niverse") -> list[str]:
    """`HfApi.create_repo` + `upload_folder`; `api` is injectable (tests pass a fake). With
    `dry_run`, returns what would be uploaded and touches nothing."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"dataset folder {folder} does not exist (run the pipeline first)")
    files = files_to_upload(folder)
    if "README.md" not in files or not any(f.endswith(".parquet") for f in files):
        raise ValueError(f"{folder} needs README.md (run `rexbert curate card`) and Parquet shards before publishing")
    if dry_run:
        return files
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset", commit_message=commit_message)
    return files
