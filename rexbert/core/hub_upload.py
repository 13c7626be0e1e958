"""One way to push a local folder to the Hub, for the dataset (curation) and the model (model cards)."""

from __future__ import annotations


def upload_folder_to_hub(folder: str, repo_id: str, *, repo_type: str, commit_message: str, private: bool = False,
                         resumable: bool = False, allow_patterns: list[str] | None = None,
                         ignore_patterns: list[str] | None = None, num_workers: int | None = None, api=None) -> None:
    """`HfApi.create_repo` (exist_ok) then the upload of `folder`, filtered by `allow_patterns` /
    `ignore_patterns`. `resumable`: `upload_large_folder` (multi-worker, several commits; a rerun after
    an interruption skips finished files) where huggingface_hub has it; 2.x has not, and its
    `upload_folder` is the resumable, batched upload there. Otherwise one `upload_folder` commit.
    `api` is injectable (tests pass a fake); default `HfApi()`."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    patterns = {"allow_patterns": allow_patterns, "ignore_patterns": ignore_patterns}
    if resumable and hasattr(api, "upload_large_folder"):
        api.upload_large_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type, private=private,
                                num_workers=num_workers, **patterns)
    else:
        api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type, commit_message=commit_message,
                          **patterns)
