"""The files and folders a plugin's writer creates, so that a refused or failed writer leaves none behind.

A writer is handed a path inside a hidden folder that mtcore removes on failure; what it writes
elsewhere (``./leak.tsv``) is not in that folder. :func:`watching` records, through Python's audit
events (:func:`sys.addaudithook`: ``open`` for writing, ``os.rename``/``os.replace``, ``os.link``,
``os.symlink``, ``os.mkdir``), every path the writer's thread creates or writes and whether it existed
just before; :func:`remove_created` then removes the ones that did not: never a file that was
there before the writer ran. Files written outside Python's file functions (a C library writing
by itself) are not seen, and so never removed. The hook is installed once, on the first writer
call, and does nothing outside :func:`watching`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

#: ``{absolute path: whether it existed when the writer first touched it}`` while a writer runs, else None.
_SEEN: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar("mt_writer_seen", default=None)
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_installed = False
_lock = threading.Lock()


def _note(seen: dict[str, bool], path: object, dir_fd: object = None) -> None:
    if dir_fd not in (None, -1) or not isinstance(path, (str, bytes, os.PathLike)):  # the events give -1 for no dir_fd
        return  # an open file descriptor or a path relative to one: not a name to check
    try:
        key = os.path.abspath(os.fsdecode(path))
        if key not in seen:
            seen[key] = os.path.lexists(key)  # the event comes before the call: did it exist until now?
    except (TypeError, ValueError, OSError):
        pass


def _hook(event: str, args: tuple) -> None:
    seen = _SEEN.get()
    if seen is None:
        return
    if event == "open" and len(args) >= 3 and isinstance(args[2], int) and args[2] & _WRITES:
        _note(seen, args[0])
    elif event in ("os.rename", "os.link"):  # (src, dst, src_dir_fd, dst_dir_fd): os.replace raises os.rename too
        _note(seen, args[1], args[3] if len(args) > 3 else None)
    elif event == "os.symlink":  # (src, dst, dir_fd)
        _note(seen, args[1], args[2] if len(args) > 2 else None)
    elif event == "os.mkdir":  # (path, mode, dir_fd)
        _note(seen, args[0], args[2] if len(args) > 2 else None)


@contextlib.contextmanager
def watching() -> Iterator[dict[str, bool]]:
    """Record what the block creates: ``{absolute path: existed before}`` (filled as the block runs)."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
    seen: dict[str, bool] = {}
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def remove_created(seen: dict[str, bool], keep_under: Path) -> list[Path]:
    """Remove the files (then the empty folders) in ``seen`` that did not exist before, outside ``keep_under``
    (mtcore's hidden folder, removed by its caller); the files removed, in order."""
    keep = os.path.abspath(keep_under)
    outside = [Path(p) for p, existed in seen.items()
               if not existed and os.path.commonpath([p, keep]) != keep]
    removed = []
    for path in sorted(p for p in outside if os.path.lexists(p) and (p.is_symlink() or not p.is_dir())):
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    for folder in sorted((p for p in outside if p.is_dir() and not p.is_symlink()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only once empty: a folder it made that holds a file of someone else's stays
    return removed


def existed_before(seen: dict[str, bool], path: Path) -> bool | None:
    """Whether ``path`` was there before the writer touched it (None: the writer was not seen writing it)."""
    return seen.get(os.path.abspath(path))
