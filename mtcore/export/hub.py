"""Pushing an export to the Hugging Face hub (``mt export ... --push-to-hub ORG/NAME``), with ``huggingface_hub``.

:func:`check_hub_target` runs before anything is exported (a repo id the hub refuses, offline mode: one line, exit 2);
:func:`push_folder` uploads the finished export folder as it is (one commit; ``--task all``: every task's folder, the
encoder and ``mtcore_export.json``). A failed upload leaves the export on disk and says how to push it again.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from mtcore.errors import MtError, UsageError

#: The values of ``HF_HUB_OFFLINE`` huggingface_hub reads as "on".
_ON = ("1", "on", "yes", "true")
#: The variables huggingface_hub reads as offline mode (either one).
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class HubError(MtError):
    """An upload to the hub that failed (exit 1: the export itself is written)."""

    exit_code = 1


def check_hub_target(repo_id: str) -> None:
    """A repo id the hub takes (``org/name``) and a hub that may be reached; else a one-line UsageError."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    offline = next((name for name in _OFFLINE_VARIABLES if os.environ.get(name, "").strip().lower() in _ON), None)
    if offline is not None:
        raise UsageError(f"--push-to-hub needs the Hugging Face hub, and {offline} is set; unset it, or export without "
                         "--push-to-hub and upload the folder later")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UsageError(f"--push-to-hub {repo_id!r} is not a hub repo id ({' '.join(str(exc).split())}); give ORG/NAME, "
                         "e.g. my-org/rubert-terra") from None
    if "/" not in repo_id:
        raise UsageError(f"--push-to-hub {repo_id!r}: give the owner too, ORG/NAME (your user name or an organisation)")


def push_folder(folder: Path, repo_id: str, *, private: bool, message: str) -> str:
    """Upload ``folder`` to the model repo ``repo_id`` (created when missing); returns its URL. Whatever stops the upload
    (refused, unreachable, timed out) is one line with the command that pushes the folder later."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    failures: tuple[type[BaseException], ...] = (HfHubHTTPError, OfflineModeIsEnabled, OSError, ValueError)
    try:
        import httpx  # huggingface_hub's transport: connection errors and timeouts are not OSErrors

        failures += (httpx.HTTPError,)
    except ImportError:  # an older huggingface_hub on requests: its errors are OSErrors
        pass
    folder = folder.expanduser()
    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message, repo_type="model")
    except failures as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        command = shlex.join(["hf", "upload", *(["--private"] if private else []), repo_id, str(folder), "."])
        raise HubError(f"could not push {folder} to the hub as {repo_id} ({reason[:300]}); the export is written there: log in "
                       f"(hf auth login, or HF_TOKEN) and push it with: {command}") from None
    return str(url)
