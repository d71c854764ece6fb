"""Progress display: a Rich live table per task on a terminal, plain lines otherwise.

The loop calls :meth:`Progress.update` only at logging steps (where it syncs anyway) and
:meth:`Progress.message` for events (evaluation results, checkpoints, notes).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any


def choose_mode(requested: str, is_main: bool) -> str:
    """``rich`` on a terminal, ``plain`` otherwise; ``none`` on non-main processes."""
    if not is_main or requested == "none":
        return "none"
    if requested == "auto":
        return "rich" if sys.stdout.isatty() else "plain"
    return requested


class Progress:
    """Shows step, rate and a per-task table of loss and examples/s."""

    def __init__(self, mode: str, total_steps: int) -> None:
        self.mode = mode
        self.total = total_steps
        self.start = time.perf_counter()
        self._live: Any = None
        self._rows: dict[str, dict[str, Any]] = {}
        self._step = 0
        self._extra = ""
        self._batches: dict[str, int] = {}
        if mode == "rich":
            from rich.live import Live

            self._live = Live(self._render(), refresh_per_second=4, transient=False)
            self._live.start()

    def _render(self) -> Any:
        from rich.table import Table

        elapsed = time.perf_counter() - self.start
        title = f"step {self._step}/{self.total}  {elapsed:.0f}s" + (f"  {self._extra}" if self._extra else "")
        table = Table(title=title, title_justify="left")
        for column in ("task", "loss", "examples/s", "tokens/s", "batches", "at step"):
            table.add_column(column, justify="right" if column != "task" else "left")
        for task, row in self._rows.items():  # a task not drawn in the last window keeps its figures, dimmed, with their step
            table.add_row(task, f"{row['loss']:.4f}" if row.get("loss") is not None else "-",
                          f"{row.get('examples_per_s', 0):.1f}", f"{row.get('tokens_per_s', 0):.0f}", str(self._batches.get(task, 0)),
                          str(row["step"]), style="dim" if row["step"] < self._step else None)
        return table

    def update(self, step: int, rows: Mapping[str, Mapping[str, Any]], extra: str = "") -> None:
        """New per-task figures at a logging step."""
        self._step = step
        self._extra = extra
        for task, row in rows.items():
            self._rows[task] = {**row, "step": step}
            self._batches[task] = self._batches.get(task, 0) + int(row.get("batches", 0))
        if self.mode == "rich" and self._live is not None:
            _unless_hung_up(lambda: self._live.update(self._render()))
        elif self.mode == "plain":
            parts = [f"{task} loss {row['loss']:.4f} ({row.get('examples_per_s', 0):.0f} ex/s)" for task, row in rows.items()
                     if row.get("loss") is not None]
            say(f"step {step}/{self.total}: " + "; ".join(parts) + (f"; {extra}" if extra else ""))

    def message(self, text: str) -> None:
        """A line about an event (evaluation, checkpoint, note)."""
        if self.mode == "none":
            return
        if self.mode == "rich" and self._live is not None:
            _unless_hung_up(lambda: self._live.console.print(text, soft_wrap=True, highlight=False, markup=False))
        else:
            say(text)

    def close(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            _unless_hung_up(lambda: (live.update(self._render()), live.stop()))


def _unless_hung_up(write: Any) -> None:
    """``write()``; the terminal it writes to hung up (EIO: the SIGHUP that follows, or came, silences it): nothing."""
    import errno

    try:
        write()
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        silence_hung_up_terminal()


_closed: list[bool] = []  # standard output's reader went away: progress lines are dropped from then on


def say(text: str) -> None:
    """A line on stdout that never stops a run: a character its encoding lacks (a Cyrillic task name on an ASCII or
    latin-1 stream) is escaped, and a closed stdout (``mt train ... | head``, a pager quit) drops the lines that follow,
    with a note on stderr (:func:`stdout_closed`), while training goes on to its checkpoints and model."""
    import sys

    if _closed:
        return

    def write() -> None:
        try:
            print(text, flush=True)
        except UnicodeEncodeError:
            encoding = getattr(sys.stdout, "encoding", None) or "ascii"
            print(text.encode(encoding, "backslashreplace").decode(encoding), flush=True)
    try:
        _unless_hung_up(write)  # a terminal that hangs up fails the write before its SIGHUP's handler runs
    except BrokenPipeError:
        stdout_closed()


def stdout_closed() -> None:
    """Standard output's reader went away while training: what follows goes nowhere, said once on stderr."""
    import os
    import sys

    if _closed:
        return
    _closed.append(True)
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is still buffered goes nowhere
    except (OSError, ValueError):
        pass
    print("note: standard output was closed (its reader quit); training goes on without progress lines "
          "(Ctrl-C stops it)", file=sys.stderr, flush=True)


def silence_hung_up_terminal() -> None:
    """After a SIGHUP: the terminal that closed makes every write to it fail (EIO), which would crash the cleanup and
    its last line; stdout and stderr that are such a terminal are pointed at /dev/null (pipes and files stay)."""
    import os

    for fd in (1, 2):
        try:
            os.write(fd, b"")  # 0 bytes: nothing shows; a hung-up terminal answers EIO
        except OSError:
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
            except OSError:
                continue
            if fd == 1 and not _closed:
                _closed.append(True)  # no more progress lines, and no note about them


def closed_while_training() -> bool:
    """Whether a training command's stdout closed (its tables and lines are dropped, the command goes on)."""
    return bool(_closed)
