"""Graceful preemption: SIGTERM or SIGUSR1 stops training after the current step, with a checkpoint.

SLURM (``--signal=USR1@90``, and SIGTERM before the kill), Kubernetes and preemptible cloud
machines send a signal and kill the job some seconds later. While :func:`~mtcore.train.loop.train_loop`
runs, :class:`Preemption` catches SIGTERM and SIGUSR1 (main thread only; the previous handlers
come back when the loop ends, also on an error). The handler only sets a host-side flag; the
loop reads it between steps (no device read), and then:

* one process: the run stops right after the step it is in (with any evaluation or checkpoint
  due at that step);
* several processes (DDP): every rank must stop at the same step, or the others would wait
  forever in the next collective. The flag rides along the examples/tokens reduction of the next
  logging step (``logging.every``; no extra collective), so all ranks learn at the same step
  whether any of them was signalled: the stop comes at most ``logging.every`` steps later.

Then every process writes a full checkpoint of that step (the same kind ``checkpoint.every``
writes, built in a temporary folder and renamed, so ``--resume`` continues exactly), the main
process logs a ``preempted`` event, trackers are closed (W&B: marked preempting, exit code 143)
and :class:`Preempted` is raised; ``mt train`` prints one line and exits with
:data:`EXIT_CODE` (143 = 128 + SIGTERM, what a process killed by SIGTERM reports). No
``summary.json`` and no ``model/`` are written: the run directory looks like one that is still
running, which ``--resume`` (and ``--seeds --resume``) continue. A second signal while the
checkpoint is written is ignored. Ctrl-C (SIGINT) is left alone: it interrupts at once.

Outside the loop, ``mt train`` keeps a signal instead of dying of it (:class:`KeptSignals`, for the
whole command): one that comes while the run is being built (data read and tokenized, model
loaded, checkpoint restored) or between two ``--seeds`` runs is handed to the next loop, which
stops after its first step with a checkpoint, as above. Without it SIGTERM killed the process
silently while starting (SIGUSR1 too: exit 138), leaving a half-started run folder. One process
only: under torchrun (``WORLD_SIZE`` > 1) a worker that fails while starting makes torchrun send
SIGTERM to the others, which must stop at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from mtcore.errors import MtError

#: ``mt train``'s exit code after a graceful preemption: 128 + SIGTERM, as if the signal had killed it.
EXIT_CODE = 128 + int(signal.SIGTERM)


def preemption_signals() -> tuple[signal.Signals, ...]:
    """SIGTERM and (where the platform has it) SIGUSR1."""
    found = [signal.SIGTERM]
    if hasattr(signal, "SIGUSR1"):
        found.append(signal.SIGUSR1)
    return tuple(found)


class Preempted(MtError):
    """Training stopped on SIGTERM/SIGUSR1 after writing a checkpoint; ``--resume`` continues it."""

    exit_code = EXIT_CODE

    def __init__(self, step: int, checkpoint: str | Path, run_dir: str | Path, signal_name: str) -> None:
        self.step, self.checkpoint, self.run_dir, self.signal_name = step, Path(checkpoint), Path(run_dir), signal_name
        super().__init__(f"preempted at step {step} ({signal_name}): checkpoint written to {self.checkpoint}; "
                         f"continue with --resume (Trainer(..., output_dir={str(self.run_dir)!r}, resume=True))")


#: A preemption signal ``mt train`` received outside a training loop, for the next loop (0: none).
_kept = 0
#: True while :class:`KeptSignals` is active (``mt train``); the Python API keeps the default handlers.
_keeping = False


def _keep(signum: int, frame: FrameType | None) -> None:
    global _kept
    if not _kept:
        _kept = signum


def _stop_starting(signum: int, frame: FrameType | None) -> None:
    """Under torchrun, a signal while the run starts (torchrun stopping the workers because one failed): stop at
    once, through the start's cleanup (what it wrote is removed), rather than be killed half-way."""
    if os.environ.get("RANK", "0").strip() in ("", "0"):
        print(f"error: {signal.Signals(signum).name} received while the run was starting: stopping "
              "(what the start wrote is removed)", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


class KeptSignals:
    """``mt train``'s handlers outside its training loops: a SIGTERM/SIGUSR1 is kept for the next loop, which stops
    after its first step with a checkpoint (:class:`Preemption` takes it), instead of killing the process while it
    starts. Under torchrun (several processes) the signal stops the process at once instead, through the start's
    cleanup (:func:`_stop_starting`). Main thread only; the previous handlers come back at the end."""

    def __init__(self) -> None:
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> KeptSignals:
        global _kept, _keeping
        # one process only: torchrun sends SIGTERM to the other workers when one fails while starting, and they must stop
        several = int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        if threading.current_thread() is threading.main_thread():
            _kept, _keeping = 0, not several
            for sig in preemption_signals():
                try:
                    self._previous[sig] = signal.getsignal(sig)
                    signal.signal(sig, _stop_starting if several else _keep)
                except (OSError, RuntimeError, ValueError):
                    self._previous.pop(sig, None)
        return self

    def __exit__(self, *exc: Any) -> None:
        global _kept, _keeping
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        _kept, _keeping = 0, False


class Preemption:
    """The signal flag of one training loop; a context manager that installs and restores the handlers."""

    def __init__(self, processes: int = 1) -> None:
        self.processes = processes
        self.signum = 0  # the first preemption signal received (0: none); set by the handler only
        self.agreed = False  # several processes: some rank was signalled, as agreed at a logging step
        self.noted = False
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> Preemption:
        global _kept
        if _kept:  # came while the run was being built (mt train): stop after the first step
            self.signum, _kept = _kept, 0
        if threading.current_thread() is threading.main_thread():
            for sig in preemption_signals():
                try:
                    self._previous[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._handle)
                except (OSError, RuntimeError, ValueError):  # a platform or embedding that refuses
                    self._previous.pop(sig, None)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        global _kept
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)  # None: set outside Python
        self._previous.clear()
        if _keeping and self.signum and exc_type is None:  # came while the run finished: the next --seeds run stops
            _kept = self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.signum:  # a second signal (e.g. while the checkpoint is written) changes nothing
            self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def flag(self) -> int:
        """This process's vote (1: signalled), to add up across processes."""
        return 1 if self.signum else 0

    def agree(self, total: int) -> None:
        """The sum of every process's :meth:`flag`, from a collective at a logging step."""
        self.agreed = self.agreed or total > 0

    def due(self) -> bool:
        """Stop now? One process: as soon as a signal came; several: once all agreed (a logging step)."""
        return self.agreed if self.processes > 1 else bool(self.signum)
