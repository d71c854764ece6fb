"""What a distributed launch (``torchrun``, ``accelerate launch``) prints: the main process speaks.

Every process of a DDP run builds the same plan from the same config and data, so every warning
and every user error would otherwise be printed once per process. Read from the launcher's
environment (``RANK``, ``WORLD_SIZE``), so it works before any process group exists (config
mistakes are found before one is made):

* :func:`main_process_warnings`: the other processes drop Python warnings, the main one shows them;
* :func:`let_the_main_process_report`: a process other than the main one that fails waits
  :data:`REPORT_DELAY_S` seconds before it reports and exits. The same mistake fails on the main
  process too, which reports it, removes what the start wrote, and exits at once; the launcher
  then stops the others before they print (torchrun checks every 0.1 s). A failure of one process
  alone is still reported, by that process, after the wait.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds a non-main process waits before it reports an error (see the module docstring).
REPORT_DELAY_S = 5.0


def world_size() -> int:
    """Processes of the launch (``WORLD_SIZE``; 1 outside a distributed launch)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1").strip() or 1))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """False on the other ranks of a distributed launch (``RANK`` > 0)."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


@contextmanager
def main_process_warnings() -> Iterator[None]:
    """Python warnings raised inside are shown by the main process only."""
    if is_main_process():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def let_the_main_process_report(error: BaseException, delay: float | None = None) -> None:
    """On a non-main process of a distributed launch, wait before ``error`` is reported (once per error;
    not for an interrupt such as Ctrl-C, which every process gets)."""
    if not isinstance(error, Exception) or is_main_process() or world_size() < 2 or getattr(error, "_mt_report_waited", False):
        return
    try:
        error._mt_report_waited = True  # type: ignore[attr-defined]
    except AttributeError:  # an exception without a __dict__
        pass
    time.sleep(REPORT_DELAY_S if delay is None else delay)


def report_at_once(error: BaseException) -> BaseException:
    """Mark ``error`` as this process's own (an out-of-memory of one GPU): reported without the wait of
    :func:`let_the_main_process_report`, so it comes before the other processes' consequences of it."""
    try:
        error._mt_report_waited = True  # type: ignore[attr-defined]
    except AttributeError:
        pass
    return error


#: What a collective's error says when another process of the launch is gone (gloo, NCCL, the store).
_PEER_GONE = ("closed by peer", "reset by peer", "broken pipe", "connection refused", "gloo", "nccl", "heartbeat", "socket timeout")


def is_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective failing because another process stopped (not this one's own fault)."""
    try:
        import torch.distributed as dist

        if isinstance(error, getattr(dist, "DistError", ())):
            return True
    except ImportError:  # a torch built without distributed support
        pass
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(word in text for word in _PEER_GONE)
