"""Graceful preemption: SIGTERM, SIGUSR1 or SIGHUP stops training after the current step, with a checkpoint.

SLURM (``--signal=USR1@90``, and SIGTERM before the kill), Kubernetes and preemptible cloud
machines send a signal and kill the job some seconds later; a terminal that closes (an ssh session that
drops) sends SIGHUP, after which its stdout and stderr are pointed at /dev/null (writes to it would
fail). While :func:`~mtcore.train.loop.train_loop`
runs, :class:`Preemption` catches SIGTERM, SIGUSR1 and SIGHUP (main thread only; the previous handlers
come back when the loop ends, also on an error). The handler only sets a host-side flag; the
loop reads it between steps (no device read), and then:

* one process: the run stops right after the step it is in (with any evaluation or checkpoint
  due at that step);
* several processes (DDP): every rank must stop at the same step, or the others would wait
  forever in the next collective. The flag rides along the examples/tokens reduction of the next
  logging step (``logging.every``; no extra collective), so all ranks learn at the same step
  whether any of them was signalled: the stop comes at most ``logging.every`` steps later.

A signal that comes because a worker of this node died is no preemption: torchrun sends SIGTERM to
the others when one fails, and they could never agree with the dead one. Under torchrun (Linux),
each process then looks at the launcher's other workers (:func:`local_worker_gone`); if one has
ended, the loop stops after the step it is in with the "another process of this launch stopped"
error, at once, without a checkpoint. A process blocked in a collective with the dead worker (NCCL
waits for it; so does gloo while its sockets stay open) never gets back to the loop: a watcher
thread, woken by the signal (``signal.set_wakeup_fd``), writes the ``error`` event, prints that
line (main process) and ends the process (exit 1) :data:`STUCK_GRACE_S` seconds after the signal,
well before torchrun's kill 30 s later. A worker of another node that dies is not seen this way.

Then every process writes a full checkpoint of that step (the same kind ``checkpoint.every``
writes, built in a temporary folder and renamed, so ``--resume`` continues exactly), the main
process logs a ``preempted`` event, trackers are closed (W&B: marked preempting, exit code 143)
and :class:`Preempted` is raised; ``mt train`` prints one line and exits with
:data:`EXIT_CODE` (143 = 128 + SIGTERM, what a process killed by SIGTERM reports). No
``summary.json`` and no ``model/`` are written: the run directory looks like one that is still
running, which ``--resume`` (and ``--seeds --resume``) continue. A second signal while the
checkpoint is written is ignored. Ctrl-C (SIGINT) is left alone: it interrupts at once, as
:class:`TrainingInterrupted` (a ``KeyboardInterrupt``) naming the latest checkpoint, after an
``interrupted`` event; ``mt train`` prints the command that resumes from it (exit 130).

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

#: Seconds a process whose worker died is given to leave the loop by itself before the watcher thread ends it.
STUCK_GRACE_S = 3.0


def preemption_signals() -> tuple[signal.Signals, ...]:
    """SIGTERM and (where the platform has them) SIGUSR1 and SIGHUP; SIGHUP not when it is ignored (``nohup mt train``:
    a closed terminal must not stop the run)."""
    names = ("SIGTERM", "SIGUSR1", "SIGHUP")
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name)
                 and not (name == "SIGHUP" and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN))


def _hung_up(signum: int) -> None:
    """A SIGHUP (its terminal closed): writes to that terminal now fail, so its streams go to /dev/null."""
    if signum == getattr(signal, "SIGHUP", None):
        from mtcore.train.progress import silence_hung_up_terminal

        silence_hung_up_terminal()


class Preempted(MtError):
    """Training stopped on SIGTERM/SIGUSR1/SIGHUP after writing a checkpoint; ``--resume`` continues it."""

    exit_code = EXIT_CODE

    def __init__(self, step: int, checkpoint: str | Path, run_dir: str | Path, signal_name: str) -> None:
        self.step, self.checkpoint, self.run_dir, self.signal_name = step, Path(checkpoint), Path(run_dir), signal_name
        super().__init__(f"preempted at step {step} ({signal_name}): checkpoint written to {self.checkpoint}; "
                         f"continue with --resume (Trainer(..., output_dir={str(self.run_dir)!r}, resume=True))")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training at once (no checkpoint of its own): ``checkpoint`` is the run's latest complete one
    (None: none yet), which ``--resume`` continues from. Still a KeyboardInterrupt, for notebooks and scripts."""

    def __init__(self, step: int, checkpoint: Path | None, run_dir: str | Path) -> None:
        self.step, self.checkpoint, self.run_dir = step, checkpoint, Path(run_dir)
        super().__init__(f"interrupted at step {step}")


#: A preemption signal ``mt train`` received outside a training loop, for the next loop (0: none).
_kept = 0
#: True while :class:`KeptSignals` is active (``mt train``); the Python API keeps the default handlers.
_keeping = False
#: Set when Ctrl-C came after a run was complete (model/ and summary.json written): a sweep (--seeds, --grid) stops
#: before its next run instead of going on (:func:`take_late_interrupt`).
_late_interrupt = False


def note_late_interrupt() -> None:
    global _late_interrupt
    _late_interrupt = True


def take_late_interrupt() -> bool:
    """Whether Ctrl-C came after the last run was complete (and forget it)."""
    global _late_interrupt
    came, _late_interrupt = _late_interrupt, False
    return came


#: True once a training loop of this process began: a signal after it came while a run stopped or finished, not while
#: it was starting (torchrun ending the workers after one failed at step 5 was reported as "while the run was starting").
_looped = False


def _keep(signum: int, frame: FrameType | None) -> None:
    global _kept
    _hung_up(signum)
    if not _kept:
        _kept = signum


def _stop_starting(signum: int, frame: FrameType | None) -> None:
    """Under torchrun, a signal while the run starts (torchrun stopping the workers because one failed): stop at
    once, through the start's cleanup (what it wrote is removed), rather than be killed half-way."""
    _hung_up(signum)
    if os.environ.get("RANK", "0").strip() in ("", "0"):
        name = signal.Signals(signum).name
        print(f"error: {name} received: stopped" if _looped else
              f"error: {name} received while the run was starting: stopping (what the start wrote is removed)", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


class KeptSignals:
    """``mt train``'s handlers outside its training loops: a SIGTERM/SIGUSR1/SIGHUP is kept for the next loop, which stops
    after its first step with a checkpoint (:class:`Preemption` takes it), instead of killing the process while it
    starts. Under torchrun (several processes) the signal stops the process at once instead, through the start's
    cleanup (:func:`_stop_starting`). Main thread only; the previous handlers come back at the end."""

    def __init__(self) -> None:
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> KeptSignals:
        global _kept, _keeping, _looped
        _looped = False  # the command starts: no loop of it has run yet
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


def local_worker_gone() -> bool:
    """Under torchrun (Linux): whether a worker of this node has ended: the launcher (this process's parent) has
    fewer live children than ``LOCAL_WORLD_SIZE``. False where it cannot tell."""
    try:
        expected = int(os.environ["LOCAL_WORLD_SIZE"]) if "TORCHELASTIC_RUN_ID" in os.environ else 0
    except ValueError:
        return False
    tasks = Path(f"/proc/{os.getppid()}/task")
    if expected < 2 or not tasks.is_dir():
        return False
    alive = 0
    try:
        children = {pid for task in tasks.iterdir() for pid in (task / "children").read_text().split()}
        for pid in children:
            stat = Path(f"/proc/{pid}/stat").read_text()
            alive += stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X", "x")  # not a zombie
    except (OSError, IndexError):
        return False
    return alive < expected


class Preemption:
    """The signal flag of one training loop; a context manager that installs and restores the handlers.

    ``on_stuck`` (several processes): called by the watcher thread when a worker of this node died and the
    loop did not stop within :data:`STUCK_GRACE_S` (it reports; the process then ends with exit code 1)."""

    def __init__(self, processes: int = 1, on_stuck: Any = None) -> None:
        self.processes = processes
        self.signum = 0  # the first preemption signal received (0: none); set by the handler only
        self.agreed = False  # several processes: some rank was signalled, as agreed at a logging step
        self.noted = False
        self.peer_gone = False  # several processes: the signal came because a worker of this node ended
        self.on_stuck = on_stuck
        self._previous: dict[signal.Signals, Any] = {}
        self._left = threading.Event()
        self._wakeup: tuple[Any, Any, int] | None = None  # socket pair and the previous wakeup fd
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Preemption:
        global _kept, _looped
        _looped = True
        if _kept:  # came while the run was being built (mt train): stop after the first step
            self.signum, _kept = _kept, 0
        if threading.current_thread() is threading.main_thread():
            for sig in preemption_signals():
                try:
                    self._previous[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._handle)
                except (OSError, RuntimeError, ValueError):  # a platform or embedding that refuses
                    self._previous.pop(sig, None)
            if self.processes > 1 and self._previous and "TORCHELASTIC_RUN_ID" in os.environ:
                self._watch()
        return self

    def _watch(self) -> None:
        """Start the watcher thread, woken by the C-level signal handler even while the main thread is blocked."""
        import socket

        try:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except (OSError, ValueError):
            return
        self._wakeup = (reader, writer, previous)
        self._thread = threading.Thread(target=self._watching, args=(reader,), name="mt-preemption-watch", daemon=True)
        self._thread.start()

    def _watching(self, reader: Any) -> None:
        import select

        wanted = {int(sig) for sig in preemption_signals()}
        while not self._left.is_set():
            try:
                if not select.select([reader], [], [], 0.5)[0] or not wanted & set(reader.recv(64)):
                    continue
            except (OSError, ValueError):  # closed by __exit__
                return
            if not local_worker_gone():
                continue  # a preemption: the loop agrees with the other processes at a logging step
            self.peer_gone = True
            if self._left.wait(STUCK_GRACE_S):
                return  # the loop stopped by itself and reports
            try:
                if self.on_stuck is not None:
                    self.on_stuck()
            finally:
                os._exit(1)

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        global _kept
        self._left.set()
        if self._wakeup is not None:
            reader, writer, previous = self._wakeup
            try:
                signal.set_wakeup_fd(previous)
            except (OSError, ValueError):
                pass
            try:
                writer.send(b"\0")  # wakes the watcher at once (0 is no signal): it sees the loop has left
            except OSError:
                pass
            # joined, not left running: a daemon thread still alive when the interpreter finalizes is ended with
            # pthread_exit, which aborts the process ("terminate called without an active exception") under torch
            self._thread.join(timeout=STUCK_GRACE_S + 1)
            reader.close()
            writer.close()
            self._wakeup = None
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)  # None: set outside Python
        self._previous.clear()
        if _keeping and self.signum and exc_type is None:  # came while the run finished: the next --seeds run stops
            _kept = self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        _hung_up(signum)
        if not self.signum:  # a second signal (e.g. while the checkpoint is written) changes nothing
            self.signum = signum
            if self.processes > 1 and local_worker_gone():
                self.peer_gone = True

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
