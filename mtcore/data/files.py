"""Finding a split's files under a user's ``data_dir`` and fingerprinting them for the cache."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mtcore.data.cache import fingerprint
from mtcore.errors import DataError, did_you_mean

#: Bump when readers change how they turn files into rows: old caches are then not reused.
READER_VERSION = 2


def is_ignored(path: Path) -> bool:
    """macOS archive litter: anything under ``__MACOSX/`` and AppleDouble ``._name`` files."""
    return "__MACOSX" in path.parts or path.name.startswith("._")


def _matches(root: Path, pattern: str) -> list[Path]:
    candidate = Path(pattern).expanduser()
    full = candidate if candidate.is_absolute() else root / candidate
    if glob.has_magic(str(full)):
        found = [Path(p) for p in glob.glob(str(full), recursive=True)]
    else:
        found = [full] if full.exists() else []
    return sorted(p for p in found if p.is_file() and not is_ignored(p.relative_to(root) if p.is_relative_to(root) else p))


def _nested_matches(root: Path, pattern: str) -> list[Path]:
    """``pattern`` one or more folders down (a zip unpacked with its top folder, ``combined/<Task>/``)."""
    if Path(pattern).is_absolute():
        return []
    found = [p for p in _matches(root, "**/" + pattern)]
    prefixes = {p.relative_to(root).parts[: len(p.relative_to(root).parts) - len(Path(pattern).parts)] for p in found}
    if len(prefixes) > 1:
        shown = ", ".join(str(Path(*prefix)) for prefix in sorted(prefixes))
        raise DataError(f"{root}: {pattern!r} is found under several folders ({shown}); point data_dir at the one to use")
    return found


def source_root(task: Any, data_dir: str | os.PathLike[str] | None, package: str | None, what: str) -> Path:
    """Where a plugin loader reads from: ``data_dir`` for local sources, the package folder for
    sample sources; ``what`` names the files a local source expects (for the error)."""
    from importlib import resources

    if data_dir is not None:
        return Path(data_dir).expanduser()
    if package is not None:
        root = resources.files(package)
        if not isinstance(root, Path):  # a zipped install: resources are not plain files
            raise DataError(f"task {task.id!r}: the sample of package {package!r} is not on the file system; install the plugin unzipped")
        return root
    raise DataError(f"task {task.id!r}: the local source needs data_dir=<folder with {what}>")


def find_files(data_dir: str | Path, spec: str | Sequence[str]) -> list[Path]:
    """The files of one split: ``spec`` is a path, a glob or a list of them, relative to ``data_dir``.

    A pattern not found directly under ``data_dir`` is looked for in its sub-folders, so
    ``data_dir`` may point at the folder a zip was unpacked into. ``__MACOSX/`` is ignored.
    A pattern ending in ``.*`` (``train.*``: any format) names one file: files of no data format
    (``train.jsonl.orig``) are passed over when a data file matches too, and two data files
    (``train.csv`` and ``train.jsonl``) are an error rather than one split read twice.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data_dir {str(root)!r} is not a folder; point it at the folder holding the downloaded files")
    patterns = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    files: list[Path] = []
    for pattern in patterns:
        found = _matches(root, str(pattern)) or _nested_matches(root, str(pattern))
        if not found:
            raise _not_found(root, str(pattern))
        if str(pattern).endswith(".*"):
            found = _one_format(root, str(pattern), found)
        files.extend(p for p in found if p not in files)
    return files


def _one_format(root: Path, pattern: str, found: list[Path]) -> list[Path]:
    from mtcore.data.readers import format_of

    data = [p for p in found if format_of(p) is not None]
    names = ", ".join(str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in (data or found))
    if not data:
        raise DataError(f"{root}: {pattern!r} matches no data file, only {names} (no .jsonl, .json, .csv, .tsv or .parquet "
                        "name); put the data file there, or name the file itself instead of the pattern")
    if len(data) > 1:
        raise DataError(f"{root}: {pattern!r} matches {len(data)} files ({names}); it stands for one file: move the others "
                        "away, or name the file itself instead of the pattern")
    return data


class NoFileFound(DataError):
    """No file matches a split's pattern (a split the user's folder does not have)."""


def _not_found(root: Path, pattern: str) -> DataError:
    """No file matches ``pattern``: suggest near names from the folder it points into."""
    path = Path(pattern).expanduser()
    base: Path | None = root
    if path.is_absolute():  # look where the path points, not under data_dir
        base = next((p for p in path.parents if p.is_dir()), None)
        if not path.parent.is_dir() and not any(c in str(path.parent) for c in "*?["):
            return NoFileFound(f"no file matches {pattern!r}: there is no folder {str(path.parent)!r} (nearest existing: {base})")
    present = [str(p.relative_to(base)) for p in _walk(base, limit=2000)] if base is not None else []
    wanted = str(path.relative_to(base)) if path.is_absolute() and base is not None else pattern
    link = (base / wanted) if base is not None else None
    if link is not None and link.is_symlink() and not link.exists():  # listed by the folder, yet no file to read
        return DataError(f"{link} is a broken link: it points to {os.readlink(link)!r}, which does not exist; "
                           "fix or replace the link")
    hint = did_you_mean(wanted, present)
    return NoFileFound(f"{base or root}: no file matches {pattern!r}{hint}" + ("" if hint else f"; the folder holds {_preview(present)}"))


def _walk(root: Path, limit: int) -> Iterable[Path]:
    count = 0
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != "__MACOSX")
        for name in sorted(names):
            if not name.startswith("._"):
                yield Path(directory) / name
                count += 1
                if count >= limit:
                    return


def _preview(names: list[str], n: int = 5) -> str:
    if not names:
        return "no files"
    shown = ", ".join(repr(name) for name in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def files_fingerprint(paths: Iterable[str | Path], *parts: Any) -> str:
    """A cache key for data read from ``paths``: their location, size, modification and status-change
    times and inode, plus ``parts``. The change time and inode catch a file rewritten in place with
    its old size and modification time put back (``cp -p``, ``rsync -a``, ``unzip`` do that)."""
    stamps = []
    for path in paths:
        path = Path(path).resolve()
        stat = path.stat()
        stamps.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino))
    return fingerprint("mtcore-files", READER_VERSION, stamps, parts)
