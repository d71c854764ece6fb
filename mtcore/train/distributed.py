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
