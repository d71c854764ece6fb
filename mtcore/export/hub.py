"""Pushing an export to the Hugging Face hub (``mt export ... --push-to-hub ORG/NAME``), with ``huggingface_hub``.

:func:`check_hub_target` runs before anything is exported (a repo id the hub refuses, offline mode: one line, exit 2);
:func:`push_folder` uploads the finished export folder as it is (one commit; ``--task all``: every task's folder, the
encoder and ``mtcore_export.json``). A failed upload leaves the export on disk and says how to push it again.
"""

from __future__ import annotations

import os
from pathlib import Path

from mtcore.errors import MtError, UsageError

#: The values of ``HF_HUB_OFFLINE`` huggingface_hub reads as "on".
_ON = ("1", "on", "yes", "true")


class HubError(MtError):
    """An upload to the hub that failed (exit 1: the export itself is written)."""

    exit_code = 1


def check_hub_target(repo_id: str) -> None:
    """A repo id the hub takes (``org/name``) and a hub that may be reached; else a one-line UsageError."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _ON:
        raise UsageError("--push-to-hub needs the Hugging Face hub, and HF_HUB_OFFLINE is set; unset it, or export without "
                         "--push-to-hub and upload the folder later")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UsageError(f"--push-to-hub {repo_id!r} is not a hub repo id ({' '.join(str(exc).split())}); give ORG/NAME, "
                         "e.g. my-org/rubert-terra") from None
    if "/" not in repo_id:
        raise UsageError(f"--push-to-hub {repo_id!r}: give the owner too, ORG/NAME (your user name or an organisation)")


def push_folder(folder: Path, repo_id: str, *, private: bool, message: str) -> str:
    """Upload ``folder`` to the model repo ``repo_id`` (created when missing); returns its URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=message, repo_type="model")
    except (HfHubHTTPError, OfflineModeIsEnabled, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise HubError(f"could not push {folder} to the hub as {repo_id} ({reason[:300]}); the export is written there: log in "
                       f"(hf auth login, or HF_TOKEN) and push it with: hf upload {repo_id} {folder} .") from None
    return str(url)
