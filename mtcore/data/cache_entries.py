"""The entries of mtcore's data cache, for ``mt cache``: list them, remove old ones.

mtcore keeps the rows it read from a task's files in the ``datasets`` cache
(``HF_DATASETS_CACHE``, default ``~/.cache/huggingface/datasets``), one folder per entry under
``generator/default-fingerprint=<key>/0.0.0/``: the rows (``generator-train.arrow``), the
validated and tokenized copies made from them (``cache-*.arrow``) and a ``mtcore-source.txt``
naming the files read. Entries are never reused once their key changes (new files, settings or
code), so old ones only take space.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE_FILE = "mtcore-source.txt"
PREFIX = "default-fingerprint="


@dataclass
class CacheEntry:
    """One cache entry: its folder, what it holds, its size and when it was last written."""

    key: str
    folder: Path
    source: str
    rows: int | None
    bytes: int
    written: float

    def age_days(self, now: float | None = None) -> float:
        return ((now or time.time()) - self.written) / 86400


def note_source(dataset: Any, what: str) -> None:
    """Write ``what`` (the files read) beside a freshly cached rows dataset; an unwritable folder is no error."""
    files = getattr(dataset, "cache_files", None) or []
    if files:
        try:
            (Path(files[0]["filename"]).parent / SOURCE_FILE).write_text(what, encoding="utf-8")
        except OSError:
            pass


def default_cache_dir() -> Path:
    """``datasets``' cache folder, found as ``datasets.config`` finds it (``HF_DATASETS_CACHE``, else
    ``HF_HOME/datasets``, else ``XDG_CACHE_HOME/huggingface/datasets``) without importing ``datasets``,
    so that ``mt cache`` starts as fast as ``mt list-tasks`` (a test keeps the two in step)."""
    if os.getenv("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"])
    home = os.path.expanduser(os.getenv("HF_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "huggingface")))
    return Path(home, "datasets")


def cache_entries(cache_dir: Path) -> list[CacheEntry]:
    """Every mtcore entry under ``cache_dir``, largest first."""
    entries = []
    for folder in sorted((cache_dir / "generator").glob(f"{PREFIX}*")):
        try:  # another mt cache --clear may be deleting it: an entry gone as it is listed is left out
            stats = [stat for f in folder.rglob("*") if (stat := _stat(f)) is not None]
            version = next(folder.glob("*/"), folder)
        except OSError:
            continue
        folder_stat = _stat(folder, folder=True)
        if folder_stat is None:
            continue
        source, rows = "?", None
        try:
            source = (version / SOURCE_FILE).read_text(encoding="utf-8").strip() or "?"
        except OSError:
            pass
        try:
            splits = json.loads((version / "dataset_info.json").read_text(encoding="utf-8")).get("splits") or {}
            rows = sum(int(split.get("num_examples") or 0) for split in splits.values())
        except (OSError, ValueError):
            pass
        entries.append(CacheEntry(folder.name[len(PREFIX):], folder, source, rows, sum(st.st_size for st in stats),
                                  max((st.st_mtime for st in stats), default=folder_stat.st_mtime)))
    return sorted(entries, key=lambda e: -e.bytes)


def _stat(path: Path, *, folder: bool = False) -> os.stat_result | None:
    """The stat of a regular file (``folder``: of a folder), None when it is gone or of another kind."""
    import stat

    try:
        found = path.stat()
    except OSError:
        return None
    return found if (stat.S_ISDIR if folder else stat.S_ISREG)(found.st_mode) else None


def remove_entry(cache_dir: Path, entry: CacheEntry) -> None:
    """Delete the entry's folder and the lock files ``datasets`` left for it."""
    shutil.rmtree(entry.folder, ignore_errors=True)
    for lock in cache_dir.glob(f"*{PREFIX}{entry.key}*.lock"):
        lock.unlink(missing_ok=True)
