"""Console helpers shared by the commands: stdout for results, stderr for warnings."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from rich.console import Console

_going_on: list[bool] = []  # a training command: a closed stdout drops its lines, the command goes on


def keep_going_when_stdout_closes() -> None:
    """``mt train``: its tables and lines are dropped when stdout's reader goes away, not the run or the sweep."""
    _going_on.append(True)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader of a table went away (``mt cache | head -1``): stop quietly with 141, as every output does
        (rich's own answer is exit 1, the code of a failed command); ``mt train`` goes on, its lines dropped."""
        self.quiet = True
        if _going_on:
            from mtcore.train.progress import stdout_closed

            stdout_closed()
            return
        from mtcore.cli.app import _stdout_closed

        _stdout_closed()


stdout = _Console(soft_wrap=False, highlight=False)
if not stdout.is_terminal:  # pipes and CI logs: wide tables rather than 80-column wrapping (wider when COLUMNS says so)
    _columns = os.environ.get("COLUMNS", "").strip()
    stdout = _Console(soft_wrap=False, highlight=False, width=max(160, int(_columns) if _columns.isdigit() else 0))
stderr = Console(stderr=True, soft_wrap=True, highlight=False)


_FAILED = " failed to load: "
_said: set[str] = set()  # the plugin failures this command has warned about


def warn(message: str) -> None:
    """One warning line on stderr (plain text: never wrapped, safe to grep)."""
    if _FAILED in message:
        _said.add(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)


def forget_warnings() -> None:
    _said.clear()


def not_repeated(message: str) -> str:
    """``message`` without a plugin failure's reason already given by a warning line above it
    (``... because plugin 'x' (x 0.1) failed to load (see the warning above)``): one reason, said once."""
    for said in _said:
        if said in message:
            message = message.replace(said, said.split(_FAILED)[0] + " failed to load (see the warning above)")
    return message


def print_json(data: Any) -> None:
    from mtcore.outputs import data_stdout

    with data_stdout() as out:  # UTF-8 data whatever the terminal's encoding
        out.write(json.dumps(_finite(data), indent=2, ensure_ascii=False, default=str) + "\n")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as null, as the run's own files write them (``NaN`` is not JSON: strict parsers,
    JavaScript's among them, refuse it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def report_plugin_failures(registry: Any, *, tracebacks_only: bool = False) -> None:
    """One warning line per failed plugin (``tracebacks_only``: the lines are shown elsewhere);
    with ``MT_DEBUG=1`` also each failure's traceback."""
    from mtcore.cli.app import debug_mode

    if not tracebacks_only:
        for line in registry.warnings:
            warn(line)
    for info in registry.failures:
        if not tracebacks_only:
            warn(info.failure_line())
        if debug_mode() and info.traceback:
            print(f"traceback of plugin {info.name!r}:\n{info.traceback}", file=sys.stderr, flush=True)
