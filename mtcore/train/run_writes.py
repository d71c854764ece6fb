"""A write into the run folder that fails while the run trains, as one line naming the file and the fix.

The folder was checked writable when the run started; what can still go wrong later is a full disk or quota, the
file-size limit (``ulimit -f``), the folder made read-only, or the folder deleted or its drive unmounted. Any of
these hits the next event written to ``metrics.jsonl``, a checkpoint or the final ``model/``; the line then says
what to do, and which checkpoint ``--resume`` continues from once it is done (nothing half-written stays behind:
each of those writes is atomic or an append).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mtcore.errors import OutputError
from mtcore.outputs import write_error, write_fix


def run_write_error(root: str | os.PathLike[str], error: BaseException, checkpoints: Any) -> OutputError | None:
    """The line for ``error`` (an :class:`OSError`, or the :class:`OutputError` of a checkpoint or model write) when
    it is a failed write into the run folder ``root``; None for any other error (an input file, a plugin's own).
    ``checkpoints`` (:class:`~mtcore.train.checkpoint.Checkpoints`) tells the latest one, which ``--resume`` takes."""
    run = Path(root)
    if isinstance(error, OSError):
        if not (error.filename and _inside(error.filename, run)):
            return None
        line, code = str(write_error(error.filename, error)), error.errno
        fix = write_fix(code, run)
    elif isinstance(error, OutputError):
        line, code = str(error), error.errno
        fix = "" if "; " in line else write_fix(code, run)  # a checkpoint's line says what to do already
    else:
        return None
    if not run.is_dir():
        return OutputError(f"{line}: the run folder {run} went away while the run trained (deleted, or its drive "
                           "unmounted?), and its checkpoints with it; train again", errno=code)
    try:
        latest = checkpoints.latest()
    except OSError:  # an unreadable checkpoints folder: the write's own line still comes first
        latest = None
    if latest is not None:
        then = f"then continue from {latest} with the same mt train command and --resume"
    else:
        then = "then start again with the same mt train command and --resume (no checkpoint yet: it starts over)"
    return OutputError(f"{line}; {fix + ', ' if fix else ''}{then}", errno=code)


def _inside(name: str | os.PathLike[str], root: Path) -> bool:
    path, base = os.path.abspath(name), os.path.abspath(root)
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)
