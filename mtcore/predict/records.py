"""Predictions streamed to stdout (or a pipe, ``/dev/stdout``) end at a whole record, however ``mt predict`` stops.

A Ctrl-C or SIGTERM that lands in the middle of a write used to cut it: Python raises at once, and
the reader got half a JSON line or CSV row. :class:`WholeRecords` is the stream mtcore's streaming
writers (:mod:`mtcore.predict.writers`) write into instead: it gathers whole records (each ``write``
gets whole records: a JSON line, a CSV row, which may span lines when a field holds a line break)
and writes them on a piece of about 64 KB at a time, flushed, with Ctrl-C, SIGTERM and SIGHUP held
back until the piece is out (:func:`deferred_signals`); then the signal acts as it would have
(``error: interrupted``, exit 130; exit 143 for SIGTERM). A second signal while a piece is written
acts at once, so a reader that stopped reading cannot make ``mt predict`` unstoppable; only that
cuts a record. Records held back when prediction stops are dropped: the output is every record
written so far, each whole.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

#: About how much text is gathered before it is written on (characters).
PIECE = 1 << 16
#: The signals held back while a piece is written (those that stop ``mt`` commands).
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _act(signum: int, handler: Any, frame: Any) -> None:
    """What ``signum`` does under ``handler``: run it (Ctrl-C raises KeyboardInterrupt), or its default action."""
    import signal

    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back until the block ends, then let the first act as it would have
    (its handler, or its default action); a second one acts at once. Ignored signals stay ignored; outside
    the main thread (where no handler can be set) nothing is held back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, frame: Any) -> None:
        if caught:  # a second signal: the user insists
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            _act(signum, previous[signum], frame)
        caught.append(signum)

    try:
        for name in SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) not in (signal.SIG_IGN, None):
                previous[sig] = signal.signal(sig, hold)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        _act(caught[0], previous[caught[0]], None)


class WholeRecords:
    """A text stream for whole records, written on to ``stream`` a piece at a time (see the module docstring)."""

    def __init__(self, stream: TextIO, piece: int = PIECE) -> None:
        self.stream = stream
        self.piece = piece
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        """Take whole records (a JSON line, a CSV row)."""
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self.piece:
            self.flush()
        return len(text)

    def writelines(self, records: Iterable[str]) -> None:
        for record in records:
            self.write(record)

    def flush(self) -> None:
        """Write the records taken so far on, whole, and flush the stream."""
        if not self._parts:
            return
        text = "".join(self._parts)
        self._parts, self._size = [], 0
        with deferred_signals():
            fd = _fileno(self.stream)
            self.stream.flush()
            if fd is None:  # no file under it (a test's captured stdout)
                self.stream.write(text)
                self.stream.flush()
                return
            data = memoryview(text.encode(getattr(self.stream, "encoding", None) or "utf-8", getattr(self.stream, "errors", None) or "strict"))
            while data:  # each byte written is counted: a signal held back interrupts no count
                data = data[os.write(fd, data):]


def _fileno(stream: TextIO) -> int | None:
    """The file descriptor under ``stream``, written to directly (its buffers keep no part of a piece), or None."""
    if os.name != "posix":  # text mode translates line ends there: the stream writes
        return None
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
