"""Errors meant for people.

Every mistake a user can make (bad config key, unknown task, missing column, unreadable file,
broken plugin) is raised as an :class:`MtError` subclass with one clear line that names the thing
and the fix. The CLI prints that line and exits with the error's ``exit_code``; a traceback is only
shown when ``MT_DEBUG=1``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class MtError(Exception):
    """A user-facing error: its message is one line; ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()) if "\n" in str(message) else str(message))


class UsageError(MtError):
    """A wrong command line, config key or value (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid training configuration (exit code 2)."""


class UnknownNameError(UsageError):
    """A task, head, sampler or other registered name that does not exist."""


class PluginError(MtError):
    """A plugin failed to load or to register (fatal only in strict mode)."""


class DataError(MtError):
    """Data that cannot be read or does not match the task (names file, row and value)."""


class DataPathError(DataError, UsageError):
    """A data folder the user named (a task entry's ``data_dir``) that is no folder: exit code 2, as ``--data-dir``'s."""


class OutputError(MtError):
    """An output that could not be written: a full disk or quota, no permission, a read-only file system, a folder
    that went away. ``errno`` is the cause's error number, when known."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class ModelFileError(MtError):
    """A model directory with a missing, truncated or mismatched file."""


class ModelPathError(ModelFileError, UsageError):
    """A path given as a model or run directory that is none (missing, a file, a folder of runs, a run
    without its model yet): a usage error (exit code 2), as ``mt compare`` has it; still a ModelFileError."""

    exit_code = 2


def did_you_mean_path(path: Any, folders: bool) -> str:
    """``" (did you mean 'runs/local'?)"`` from the entries beside a ``path`` that does not exist (its folders
    when ``folders``, else its files), or ``""``."""
    from pathlib import Path

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        names = sorted(p.name for p in parent.iterdir() if p.is_dir() == folders) if parent.is_dir() else []
    except OSError:
        names = []
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(str(parent / c)) for c in close)}?)" if close else ""


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidates, or ``""``."""
    candidates = list(candidates)
    same = [c for c in candidates if c.lower() == name.lower()]  # only the case differs (rsg:MuSeRC): that one, alone
    if same:
        return " (did you mean " + " or ".join(repr(c) for c in same) + "?)"
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]
    if not close and ":" not in name:  # a bare name near a qualified id's name ('parsu': 'rsg:parus')
        by_name: dict[str, list[str]] = {}
        for c in candidates:
            if ":" in c:
                by_name.setdefault(c.split(":", 1)[1], []).append(c)
        close = [c for bare in difflib.get_close_matches(name, list(by_name), n=n, cutoff=0.6) for c in by_name[bare]][:n]
    if not close:
        close = [c for c in candidates if len(name) >= 3 and (name in c or c.endswith(":" + name))][:n]
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def unknown(what: str, name: str, candidates: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build the standard "unknown X 'name' (did you mean ...?)" error."""
    candidates = sorted(set(candidates))
    msg = f"unknown {what} {name!r}{did_you_mean(name, candidates)}"
    if hint:
        msg += f"; {hint}"
    elif candidates and len(candidates) <= 12:
        msg += "; choose one of: " + ", ".join(candidates)
    return UnknownNameError(msg)
