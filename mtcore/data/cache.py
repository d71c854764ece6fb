"""Stable cache keys for the data pipeline.

``datasets`` reuses a processed file when the fingerprint it is asked for already has a cache
file. mtcore computes those fingerprints itself, from what decides the result: the input's
fingerprint, the settings, and the *code* of user functions (hashing a module-level function by
name alone would keep a stale cache after the function is edited).
"""

from __future__ import annotations

import functools
from typing import Any


def _hash(value: Any) -> str:
    from datasets.fingerprint import Hasher

    return Hasher.hash(value)


def stable_key(value: Any, _depth: int = 0) -> Any:
    """A picklable, deterministic stand-in for ``value`` (functions become their code's hash)."""
    if _depth > 8:
        return "<deep>"
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value if type(value) in (bool, int, float, str, bytes, type(None)) else repr(value)
    if isinstance(value, dict) or hasattr(value, "items") and hasattr(value, "keys"):
        return {"__map__": sorted((repr(k), stable_key(v, _depth + 1)) for k, v in value.items())}
    if isinstance(value, (list, tuple)):
        return [stable_key(item, _depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(repr(stable_key(item, _depth + 1)) for item in value)
    if isinstance(value, functools.partial):
        return ["partial", stable_key(value.func, _depth + 1), stable_key(value.args, _depth + 1),
                stable_key(value.keywords, _depth + 1)]
    code = getattr(value, "__code__", None)
    if code is not None:
        cells = [cell.cell_contents for cell in (getattr(value, "__closure__", None) or ()) if _filled(cell)]
        return ["function", getattr(value, "__module__", ""), getattr(value, "__qualname__", ""), _hash(code),
                stable_key(getattr(value, "__defaults__", None), _depth + 1), stable_key(getattr(value, "__kwdefaults__", None), _depth + 1),
                stable_key(cells, _depth + 1), _module_source(getattr(value, "__module__", None))]
    if hasattr(value, "fingerprint_key"):
        return ["object", type(value).__qualname__, stable_key(value.fingerprint_key(), _depth + 1)]
    if callable(value) and hasattr(value, "__dict__") and not isinstance(value, type):
        cls = type(value)
        return ["object", cls.__module__, cls.__qualname__, stable_key(cls.__call__, _depth + 1), stable_key(vars(value), _depth + 1)]
    return _hash(value)


def _module_source(name: str | None) -> str | None:
    """A hash of the source file of module ``name``: a function's helpers and the module's constants
    are part of what it computes (editing them must not keep a stale cache)."""
    import sys
    from pathlib import Path

    path = getattr(sys.modules.get(name or ""), "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return _source_hash(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _source_hash(path: str, mtime_ns: int, size: int) -> str | None:
    from pathlib import Path

    try:
        return _hash(Path(path).read_bytes())
    except OSError:
        return None


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def fingerprint(*parts: Any) -> str:
    """A fingerprint (hex string) of ``parts`` through :func:`stable_key`."""
    return _hash(stable_key(list(parts)))


def damaged_cache_errors() -> tuple[type[BaseException], ...]:
    """What reading a truncated, emptied or half-deleted cache file raises."""
    import pyarrow as pa

    return (pa.ArrowInvalid, pa.ArrowIOError, FileNotFoundError)


def map_or_rebuild(dataset: Any, function: Any, *, new_fingerprint: str, **options: Any) -> Any:
    """``dataset.map(...)`` under ``new_fingerprint``; a damaged cache file for it is deleted and rebuilt
    (a run killed while writing it, a disk that filled up, a file removed by hand)."""
    import os

    try:
        result = dataset.map(function, new_fingerprint=new_fingerprint, **options)
        if len(result) == len(dataset):  # mtcore's maps keep every row: fewer means a truncated file was read
            return result
    except damaged_cache_errors():
        if not dataset.cache_files:
            raise
    path = dataset._get_cache_file_path(new_fingerprint)
    if os.path.exists(path):
        os.remove(path)
    return dataset.map(function, new_fingerprint=new_fingerprint, load_from_cache_file=False, **options)
