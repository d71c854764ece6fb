"""One training process per run folder: ``RUN/.mt-train.lock``, held while a run trains.

Two ``mt train`` processes in one folder (a scheduler requeueing a job whose first copy still runs, the
same command typed in two terminals, ``--resume`` while the run goes on) would overwrite each other's
checkpoints and interleave ``metrics.jsonl``; a ``--resume`` even removes the other's half-written
files. The second one is refused in one line naming the first (pid, host, start time) instead.

The lock is the operating system's (``fcntl.flock``) on a file in the folder: it ends with the process
that holds it, however it ends (``kill -9`` leaves no stale lock), and a run that finishes removes the
file. Under DDP the main process holds it. Where the platform or the filesystem has no such locks
(Windows; a network filesystem mounted without them) runs are not locked.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from mtcore.errors import UsageError

LOCK_NAME = ".mt-train.lock"


class RunLock:
    """The lock of one run folder; :meth:`acquire` takes it (or raises), :meth:`release` gives it back."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (the folder must exist); a :class:`UsageError` naming the holder when another process has it."""
        try:
            import fcntl
        except ImportError:  # Windows: no flock
            return self
        for attempt in range(20):  # (a lock file the holder removed as we opened it: open it again)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                if attempt < 10:  # perhaps mt compare looking (a shared lock for an instant): ask again for a second
                    time.sleep(0.1)
                    continue
                raise UsageError(f"output directory {self.path.parent} is in use by another training process ({holder}): two "
                                 "runs in one folder would overwrite each other's checkpoints; wait for it to end or stop it, "
                                 "or choose another --output-dir") from None
            except OSError:  # a filesystem without locks: the run goes on unlocked (no file: nobody reads it as a lock)
                os.close(fd)
                self.path.unlink(missing_ok=True)
                return self
            if _same_file(fd, self.path):  # not a file the previous holder removed as we opened it
                self._fd = fd
                _write_holder(fd)
                return self
            os.close(fd)
        return self

    def release(self) -> None:
        """Remove the lock file and give the lock back (nothing to do when it was not taken)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the descriptor ends the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def training_now(root: str | Path) -> str | None:
    """``"pid 4242 on node7, started ..."`` while a process trains in the run folder ``root``, ``""`` when a run that trained
    there was stopped without finishing (killed: its lock file stays, unlocked), None when it cannot be told (no lock file:
    a finished run, one of an earlier mtcore, a platform or filesystem without locks)."""
    path = Path(root) / LOCK_NAME
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # for an instant: RunLock.acquire waits that out
    except BlockingIOError:
        return _read_holder(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return ""


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _write_holder(fd: int) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    text = f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8"), 0)
    except OSError:
        pass


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 400, 0).decode("utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "pid unknown"
