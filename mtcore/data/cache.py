"""Stable cache keys for the data pipeline.

``datasets`` reuses a processed file when the fingerprint it is asked for already has a cache
file. mtcore computes those fingerprints itself, from what decides the result: the input's
fingerprint, the settings, and the *code* of user functions (hashing a module-level function by
name alone would keep a stale cache after the function is edited).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
from collections.abc import Iterator
from typing import Any


def _hash(value: Any) -> str:
    from datasets.fingerprint import Hasher

    return Hasher.hash(value)


def stable_key(value: Any, _depth: int = 0) -> Any:
    """A picklable, deterministic stand-in for ``value`` (functions become their code's hash)."""
    if _depth > 8:  # settings nested deep are hashed whole; only recursion through functions stops here
        return "<deep>" if callable(value) else _content_hash(value)
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
    if inspect.ismethod(value):  # a bound method: its object's settings decide too (Cleaner(lowercase=True).apply)
        return ["method", stable_key(value.__func__, _depth + 1), stable_key(value.__self__, _depth + 1)]
    code = getattr(value, "__code__", None)
    if code is not None:
        cells = [cell.cell_contents for cell in (getattr(value, "__closure__", None) or ()) if _filled(cell)]
        source = _module_source(getattr(value, "__module__", None))
        return ["function", getattr(value, "__module__", ""), getattr(value, "__qualname__", ""), _hash(code),
                stable_key(getattr(value, "__defaults__", None), _depth + 1), stable_key(getattr(value, "__kwdefaults__", None), _depth + 1),
                stable_key(cells, _depth + 1), source,
                None if source is not None else stable_key(_globals_used(value), _depth + 1)]
    if hasattr(value, "fingerprint_key"):  # its settings, and the code that uses them (an edited class is not stale)
        cls = type(value)
        return ["object", cls.__module__, cls.__qualname__, stable_key(value.fingerprint_key(), _depth + 1), code_key(cls)]
    if callable(value) and hasattr(value, "__dict__") and not isinstance(value, type):
        cls = type(value)
        return ["object", cls.__module__, cls.__qualname__, stable_key(cls.__call__, _depth + 1), stable_key(vars(value), _depth + 1)]
    return _content_hash(value)


def _content_hash(value: Any) -> str:
    """``value``'s hash; one that cannot be pickled (a database connection an object holds) keys this process's data to
    it alone: nothing is served to another process for it, and nothing stops (it would have been no key at all)."""
    try:
        return _hash(value)
    except Exception:  # noqa: BLE001 - dill's own errors too (TypeError, PicklingError)
        return f"<{type(value).__qualname__} of process {_PROCESS}: {id(value)}>"


def code_key(value: Any, _depth: int = 0) -> Any:
    """What decides the behaviour of a function or class ``value``, without the data it closes over:
    its code, its module's source (and its package's), and the same for functions it closes over.
    For a rows factory or a class whose settings are keyed elsewhere: editing the code, e.g. in a
    plugin installed editable whose version did not change, must not keep a stale cache."""
    if _depth > 4:
        return None
    if isinstance(value, functools.partial):
        return ["partial", code_key(value.func, _depth + 1)]
    if inspect.ismethod(value):
        return ["method", code_key(value.__func__, _depth + 1), code_key(type(value.__self__), _depth + 1)]
    if isinstance(value, type):
        call = value.__dict__.get("__call__")
        return ["class", value.__module__, value.__qualname__, _module_source(value.__module__),
                _hash(call.__code__) if hasattr(call, "__code__") else None]
    code = getattr(value, "__code__", None)
    if code is None:
        return code_key(type(value), _depth + 1) if callable(value) else None
    cells = [cell.cell_contents for cell in (getattr(value, "__closure__", None) or ()) if _filled(cell)]
    return ["function", getattr(value, "__module__", ""), getattr(value, "__qualname__", ""), _hash(code),
            _module_source(getattr(value, "__module__", None)),
            [code_key(cell, _depth + 1) for cell in cells if callable(cell) and not isinstance(cell, type)]]


def pipeline_key() -> list[Any]:
    """mtcore's version and the source of its data pipeline (``mtcore/data/*.py`` and
    ``mtcore/task.py``, which maps labels): part of every cache key, so a new mtcore, or an edited
    checkout, never reads what an older one wrote."""
    import mtcore.task
    from mtcore import __version__

    return [__version__, _module_source(__name__), _file_hash(mtcore.task.__file__)]


def _globals_used(function: Any) -> dict[str, Any]:
    """The globals a function with no source file reads (a notebook's, a REPL's, ``python -c``'s): its code's names
    (nested code too) found in its ``__globals__``, modules left out. Editing one must not keep a stale cache."""
    import types

    names: set[str] = set()
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    scope = getattr(function, "__globals__", {}) or {}
    return {name: scope[name] for name in sorted(names) if name in scope and not isinstance(scope[name], types.ModuleType)}


def _module_source(name: str | None) -> str | None:
    """A hash of the source file of module ``name``, of the other modules of its package (the ``.py`` files
    beside it), and of the modules outside the installed libraries it imports names from (a helper in a
    sub-package, a parent package or a module beside it on the path, :func:`_own_imports`): a function's
    helpers and the module's constants are part of what it computes (editing them must not keep a stale
    cache). A module outside a package is hashed alone, with what it imports."""
    import sys
    from pathlib import Path

    module = sys.modules.get(name or "")
    path = getattr(module, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    files = [Path(path)]
    if getattr(module, "__package__", None):
        files = sorted(Path(path).parent.glob("*.py"))
    for other in _own_imports(module):
        files.extend(file for file in sorted(Path(other).parent.glob("*.py")) if file not in files)
    hashes = [(str(file), _file_hash(file)) for file in files]
    return _hash([(Path(file).name, digest) for file, digest in hashes]) if len(files) > 1 else hashes[0][1]


def _own_imports(module: Any) -> list[str]:
    """The source files of the modules ``module`` imports (a module, or a function or class from one, among its
    globals) that are not part of Python or an installed library: the user's and plugins' own code (an editable
    install's too). A helper imported inside a function body is not seen."""
    import inspect as inspect_module
    import sys

    from mtcore.refs import inside, library_roots

    libraries = library_roots()
    found = []
    for value in vars(module).values():
        other = value if inspect_module.ismodule(value) else sys.modules.get(getattr(value, "__module__", None) or "")
        path = getattr(other, "__file__", None)
        if other is module or not path or not str(path).endswith(".py") or path in found:
            continue
        if not any(inside(path, root) for root in libraries):
            found.append(path)
    return found


#: The first hash this process took of each source file, and a key part of its own: a file edited after this
#: process first used it may differ from the code it runs (a notebook that did not reload the module), so what that
#: code computes is cached under this process's key alone, never served to another process as the edited file's.
_FIRST_SEEN: dict[str, str | None] = {}
_PROCESS = os.urandom(8).hex()


def _file_hash(path: Any) -> str | None:
    from pathlib import Path

    try:
        stat = Path(path).stat()
    except OSError:
        return None
    current = _source_hash(str(path), stat.st_mtime_ns, stat.st_size)
    first = _FIRST_SEEN.setdefault(str(path), current)
    return current if current == first else f"{current} edited while process {_PROCESS} runs"


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


#: What an unwritable cache raises: no permission, a read-only file system, a full disk or quota, the file-size limit
#: (``ulimit -f``), a file where a folder should be.
_CACHE_ERRNOS = frozenset(getattr(errno, name) for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EFBIG", "ENOTDIR")
                          if hasattr(errno, name))


def cache_root(cache_dir: Any = None) -> str:
    """The folder mtcore's data caches live in: ``cache_dir``, else the ``datasets`` cache (``HF_DATASETS_CACHE``)."""
    if cache_dir is not None:
        return str(cache_dir)
    import datasets.config

    return str(datasets.config.HF_DATASETS_CACHE)


@contextlib.contextmanager
def cache_write_errors(cache_dir: Any = None) -> Iterator[None]:
    """An ``OSError`` of an unwritable cache becomes one line naming the cache folder and the fix."""
    from mtcore.errors import DataError

    try:
        yield
    except Exception as error:
        root = cache_root(cache_dir)
        exc = _cache_os_error(error, root)
        if exc is None:
            raise
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != root else ""
        if exc.errno == errno.ENOENT:  # makedirs through a link to a drive that is not there
            where += ": its folder cannot be made (a link to a missing drive?)"
        fix = ("a cache file outgrew this process's file-size limit: raise it (ulimit -f)" if exc.errno == errno.EFBIG
               else "make it writable, free space on its disk")
        raise DataError(f"the data cache {root} cannot be written: {exc.strerror or exc}{where}; {fix}, or point HF_DATASETS_CACHE "
                        "(Python: cache_dir=) at another folder") from None


def _cache_os_error(error: BaseException, root: str = "") -> OSError | None:
    """The OSError of an unwritable cache behind ``error`` (``datasets`` wraps a full disk in DatasetGenerationError);
    a missing folder counts when it is the cache's own (``root`` or inside it: a link to an unmounted drive)."""
    from mtcore.errors import MtError

    seen = 0
    while error is not None and seen < 8 and not isinstance(error, MtError):
        if isinstance(error, OSError) and (error.errno in _CACHE_ERRNOS or _file_for_folder(error) or _missing_cache_folder(error, root)):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _missing_cache_folder(error: OSError, root: str) -> bool:
    import os

    if error.errno != errno.ENOENT or not root or not error.filename:
        return False
    name, base = os.path.abspath(str(error.filename)), os.path.abspath(root)
    return name == base or name.startswith(base + os.sep)


def _file_for_folder(error: OSError) -> bool:
    """``os.makedirs`` on a path that is a file (``HF_DATASETS_CACHE`` set to a file) raises EEXIST, not ENOTDIR."""
    import os

    return error.errno == errno.EEXIST and bool(error.filename) and not os.path.isdir(error.filename)


def map_or_rebuild(dataset: Any, function: Any, *, new_fingerprint: str, **options: Any) -> Any:
    """``dataset.map(...)`` under ``new_fingerprint``; a damaged cache file for it is deleted and rebuilt
    (a run killed while writing it, a disk that filled up, a file removed by hand)."""
    with cache_write_errors(_cache_folder(dataset)):
        return _map_or_rebuild(dataset, function, new_fingerprint=new_fingerprint, **options)


def _cache_folder(dataset: Any) -> str | None:
    """The folder ``dataset.map`` writes into (beside the dataset's own cache files), None when in memory."""
    import os

    files = getattr(dataset, "cache_files", None) or []
    return os.path.dirname(files[0]["filename"]) if files else None


def _map_or_rebuild(dataset: Any, function: Any, *, new_fingerprint: str, **options: Any) -> Any:
    import os

    try:
        result = dataset.map(function, new_fingerprint=new_fingerprint, **options)
        if len(result) >= len(dataset):  # mtcore's maps keep every row (QA windows add some): fewer means a truncated file was read
            return result
    except damaged_cache_errors():
        if not dataset.cache_files:
            raise
    path = dataset._get_cache_file_path(new_fingerprint)
    if os.path.exists(path):
        os.remove(path)
    return dataset.map(function, new_fingerprint=new_fingerprint, load_from_cache_file=False, **options)
