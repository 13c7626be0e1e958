"""One way to push a local folder to the Hub, for the dataset (curation) and the model (model cards).

huggingface_hub 2.x talks to the Hub through one shared httpx client whose timeout is None: a Hub endpoint that
accepts the connection and never answers would hang `create_repo` for ever. Every call made here runs with a
timeout (`hub_timeout`) and turns a network failure into one line naming the endpoint and what to check.
"""

from __future__ import annotations

import contextlib
import os

DEFAULT_TIMEOUT_S = 60.0  # per read or write of the connection, not the whole upload
CONNECT_TIMEOUT_S = 10.0


class HubUnreachable(ConnectionError):
    """The Hub did not answer (or refused); the message names the endpoint and what to check."""


def hub_timeout() -> float:
    """Seconds a Hub request may wait on the connection: HF_HUB_DOWNLOAD_TIMEOUT where set (huggingface_hub's own
    knob, which it also applies to other requests), else DEFAULT_TIMEOUT_S."""
    try:
        value = float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") or DEFAULT_TIMEOUT_S)
    except ValueError:
        raise ValueError(f"HF_HUB_DOWNLOAD_TIMEOUT={os.environ['HF_HUB_DOWNLOAD_TIMEOUT']!r} is not a number of "
                         "seconds.") from None
    return value if value > 0 else DEFAULT_TIMEOUT_S


def _use_timeouts(seconds: float) -> None:
    """Makes huggingface_hub's shared client (built by its own factory) time out after `seconds`."""
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    timeout = httpx2.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_S))

    def bounded(request) -> None:  # many HfApi calls pass timeout=None explicitly, which overrides a client default
        if not any((request.extensions.get("timeout") or {}).values()):
            request.extensions["timeout"] = timeout.as_dict()

    def factory():
        client = default_client_factory()
        client.timeout = timeout
        client.event_hooks["request"] = [*client.event_hooks["request"], bounded]
        return client

    set_client_factory(factory)


def use_hub_timeouts() -> float:
    """Gives huggingface_hub's shared client the timeout of `hub_timeout` for every later request (model and
    dataset downloads included); returns it. Call before a Hub id is loaded."""
    seconds = hub_timeout()
    _use_timeouts(seconds)
    return seconds


def check_hub_answers(repo_id: str, what: str, repo_type: str = "model") -> None:
    """Before a Hub id is loaded: bounds every later request (`use_hub_timeouts`) and asks the Hub once about
    `repo_id`, so that a server that never answers ends in one line naming it, instead of the downloads' own
    retries (several per file, each waiting the whole timeout). Any answer (found, not found, gated) passes: the
    load reports those itself. Offline mode reads the cache only, so nothing is asked."""
    from huggingface_hub import HfApi, is_offline_mode
    from huggingface_hub.errors import HfHubHTTPError

    if is_offline_mode():
        use_hub_timeouts()
        return
    with hub_call(f"{what} {repo_id!r}"):
        try:
            HfApi().repo_info(repo_id, repo_type=repo_type, timeout=hub_timeout())
        except HfHubHTTPError:
            pass


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


@contextlib.contextmanager
def hub_call(what: str):
    """Runs Hub requests with a timeout; a timeout or connection failure becomes `HubUnreachable`, one line."""
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    seconds = use_hub_timeouts()
    checks = ("check your network, HF_ENDPOINT (now {0}), your token (HF_TOKEN or `hf auth login`) and that "
              "HF_HUB_OFFLINE is not set").format(endpoint())
    try:
        yield
    except OfflineModeIsEnabled:
        raise HubUnreachable(f"{what}: offline mode is on (HF_HUB_OFFLINE); unset it to reach {endpoint()}.") \
            from None
    except httpx2.TimeoutException as error:
        raise HubUnreachable(f"{what}: {endpoint()} did not answer within {seconds:g} s ({type(error).__name__}); "
                             f"{checks} (HF_HUB_DOWNLOAD_TIMEOUT sets the wait).") from None
    except httpx2.TransportError as error:
        detail = (str(error).splitlines() or [type(error).__name__])[0][:160]
        raise HubUnreachable(f"{what}: cannot reach {endpoint()} ({detail}); {checks}.") from None


def upload_folder_to_hub(folder: str, repo_id: str, *, repo_type: str, commit_message: str, private: bool = False,
                         resumable: bool = False, allow_patterns: list[str] | None = None,
                         ignore_patterns: list[str] | None = None, num_workers: int | None = None, api=None) -> None:
    """`HfApi.create_repo` (exist_ok) then the upload of `folder`, filtered by `allow_patterns` /
    `ignore_patterns`. `resumable`: `upload_large_folder` (multi-worker, several commits; a rerun after
    an interruption skips finished files) where huggingface_hub has it; 2.x has not, and its
    `upload_folder` is the resumable, batched upload there. Otherwise one `upload_folder` commit.
    `api` is injectable (tests pass a fake); default `HfApi()`. Network failures: `hub_call`."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    with hub_call(f"uploading {folder} to {repo_type} repo {repo_id}"):
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        patterns = {"allow_patterns": allow_patterns, "ignore_patterns": ignore_patterns}
        if resumable and hasattr(api, "upload_large_folder"):
            api.upload_large_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type, private=private,
                                    num_workers=num_workers, **patterns)
        else:
            api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type,
                              commit_message=commit_message, **patterns)
