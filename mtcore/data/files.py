"""Finding a split's files under a user's ``data_dir`` and fingerprinting them for the cache."""

from __future__ import annotations

import difflib
import glob
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mtcore.data.cache import fingerprint
from mtcore.errors import DataError, DataPathError, did_you_mean

#: Bump when readers change how they turn files into rows: old caches are then not reused.
READER_VERSION = 2


def is_ignored(path: Path) -> bool:
    """macOS archive litter: anything under ``__MACOSX/`` and AppleDouble ``._name`` files."""
    return "__MACOSX" in path.parts or path.name.startswith("._")


def _matches(root: Path, pattern: str) -> list[Path]:
    """The files ``pattern`` names under ``root``: only the pattern is a glob, so a folder named ``run [v2]`` is
    no character class; a path that exists as written (brackets in a file's own name) is taken as it is."""
    candidate = Path(pattern).expanduser()
    full = candidate if candidate.is_absolute() else root / candidate
    searched = str(candidate) if candidate.is_absolute() else os.path.join(glob.escape(str(root)), str(candidate))
    found = [Path(p) for p in glob.glob(searched, recursive=True)] if glob.has_magic(str(candidate)) else []
    if not found and full.exists():
        found = [full]
    if not found and glob.has_magic(str(candidate)):  # brackets in a folder's or a file's own name, not a character class
        for literal in _bracket_readings(full):
            found = found or [Path(p) for p in glob.glob(literal, recursive=True)]
    return sorted(p for p in found if p.is_file() and not is_ignored(p.relative_to(root) if p.is_relative_to(root) else p))


def _bracket_readings(full: Path) -> list[str]:
    """``full`` as a glob with its existing leading folders taken literally, then with every part literal but ``**``:
    ``/data/d [x]/*.jsonl`` and ``root/**/train [a].jsonl``."""
    parts, prefix, literal = list(full.parts), Path(full.parts[0]), [glob.escape(full.parts[0])]
    for part in parts[1:-1]:
        prefix = prefix / part
        if not prefix.is_dir():
            break
        literal.append(glob.escape(part))
    folders = os.path.join(*literal, *parts[len(literal):])
    every = os.path.join(*(part if part == "**" else glob.escape(part) for part in parts))
    return [folders, every]


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


def find_files(data_dir: str | Path, spec: str | Sequence[str], *, split: str | None = None, format: str | None = None,
               nested: bool = True) -> list[Path]:
    """The files of one split: ``spec`` is a path, a glob or a list of them, relative to ``data_dir``.

    A pattern not found directly under ``data_dir`` is looked for in its sub-folders (unless
    ``nested`` is false), so ``data_dir`` may point at the folder a zip was unpacked into. ``__MACOSX/`` is ignored.
    A pattern ending in ``.*`` (``train.*``: any format) names one file: files of no data format
    (``train.jsonl.orig``) are passed over when a data file matches too, and two data files
    (``train.csv`` and ``train.jsonl``) are an error rather than one split read twice.
    ``split`` and ``format`` (the split the files are for, the format the source reads them in)
    only sharpen the message when nothing matches; without them both are guessed from the pattern.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        from mtcore.errors import did_you_mean_path

        raise DataPathError(f"data_dir {str(root)!r} is not a folder{did_you_mean_path(root, folders=True)}; point it at the folder "
                        "holding the downloaded files")
    patterns = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    files: list[Path] = []
    for pattern in patterns:
        found = _matches(root, str(pattern)) or (_nested_matches(root, str(pattern)) if nested else [])
        if not found:
            raise _not_found(root, str(pattern), split=split, format=format)
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


class EmptySplit(DataError):
    """A split's files hold no row (``split``: its name). An empty validation file is what a task's ``holdout`` replaces."""

    def __init__(self, message: str, split: str) -> None:
        super().__init__(message)
        self.split = split


def _not_found(root: Path, pattern: str, *, split: str | None = None, format: str | None = None) -> DataError:
    """No file matches ``pattern``: suggest near names from the folder it points into (for a split's
    file, files named for that split first, never another split's own file)."""
    path = Path(pattern).expanduser()
    base: Path | None = root
    if path.is_absolute():  # look where the path points, not under data_dir
        base = next((p for p in path.parents if p.is_dir()), None)
        if not path.parent.is_dir() and not any(c in str(path.parent) for c in "*?["):
            return NoFileFound(f"no file matches {pattern!r}: there is no folder {str(path.parent)!r} (nearest existing: {base})")
    above = None if path.is_absolute() else _found_above(root, pattern)
    if above is not None:  # data_dir given one or two folders too deep (ru/simple for the folder holding ru/)
        return NoFileFound(f"{root}: no file matches {pattern!r}, but {above[0]} holds {above[1]}: data_dir points inside the "
                           f"data's layout; give the folder above, data_dir: {above[0]}")
    present = [str(p.relative_to(base)) for p in _walk(base, limit=2000)] if base is not None else []
    wanted = str(path.relative_to(base)) if path.is_absolute() and base is not None else pattern
    link = (base / wanted) if base is not None else None
    if link is not None and link.is_symlink() and not link.exists():  # listed by the folder, yet no file to read
        return DataError(f"{link} is a broken link: it points to {os.readlink(link)!r}, which does not exist; "
                           "fix or replace the link")
    if link is not None and link.exists() and not link.is_file() and not link.is_dir():  # a named pipe, a device
        return DataError(f"{link} is not a regular file (a pipe or a device), and a split's file is read more than once; "
                         "save the data to a file and name that")
    if link is not None and link.is_dir():  # train.jsonl/ made by mistake, or a folder named in files:
        inside = sorted(p.name for p in link.iterdir())[:5]
        return DataError(f"{link} is a folder, not a file ({'holding ' + ', '.join(inside) if inside else 'empty'}); name the data file "
                         "itself")
    splits = {split} if split in SPLIT_NAMES else splits_named(wanted)
    close = _same_split(wanted, splits, present) if splits else []
    if not close:  # plain similarity, passing over the files of other splits (train.jsonl is no validation file)
        others = [name for name in present if not splits or not splits_named(name) or splits & splits_named(name)]
        hint = did_you_mean(wanted, others)
        close = sorted((name for name in others if repr(name) in hint), key=lambda name: hint.index(repr(name)))
    head = f"{base or root}: no file matches {pattern!r}"
    if not close:
        return NoFileFound(head + f"; the folder holds {_preview(present)}")
    reads = format if format not in (None, "auto") else _format_of(wanted)
    other = _format_of(close[0])
    if reads is not None and other is not None and other != reads:  # renaming would not help: the reader is another
        key = next(iter(splits)) if len(splits) == 1 else "<split>"
        how = (f"name it in the task's files and set format: {other}" if path.is_absolute() else
               f"set the task entry's sources: {{local: {{format: {other}, files: {{{key}: {close[0]}, ...}}}}}}")
        return NoFileFound(head + f"; the folder has {close[0]!r}, but this split is read as {reads}: to read the {other} file, {how}")
    return NoFileFound(head + " (did you mean " + " or ".join(repr(name) for name in close) + "?)")


def _found_above(root: Path, pattern: str, levels: int = 3) -> tuple[Path, str] | None:
    """The nearest folder above ``root`` (at most ``levels`` up) where ``pattern`` matches a file, and that file relative
    to it; None when there is none, the pattern names no folder (a train.jsonl above is likely another data set's) or
    searches subfolders (``**``: too costly above the data)."""
    if "**" in pattern or len(Path(pattern).parts) < 2:
        return None
    for folder in list(root.absolute().parents)[:levels]:
        try:
            match = next((p for p in sorted(folder.glob(pattern)) if p.is_file()), None)
        except (OSError, ValueError):
            return None
        if match is not None:
            return folder, str(match.relative_to(folder))
    return None


#: The names a split's files usually carry (``dev.jsonl`` is a validation file).
SPLIT_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev", "devel", "development", "eval"),
    "test": ("test", "testing", "eval", "evaluation"),
}
_SPLIT_WORDS = {word for words in SPLIT_NAMES.values() for word in words}


def splits_named(name: str) -> set[str]:
    """The splits a file name or pattern is named for, from its words: ``ner_dev.jsonl`` -> ``{'validation'}``."""
    words = set(re.findall(r"[a-z]+", name.lower()))
    return {split for split, names in SPLIT_NAMES.items() if words & set(names)}


def _same_split(wanted: str, splits: set[str], present: list[str]) -> list[str]:
    """Files named for one of ``splits``, the nearest to ``wanted`` first once split words are set aside
    (``validation.jsonl`` is nearer ``dev.jsonl`` than ``ner_dev.jsonl``), files of its format before others."""
    def plain(name: str) -> str:
        return re.sub(r"[a-z]+", lambda word: "#" if word.group(0) in _SPLIT_WORDS else word.group(0), name.lower())

    fmt = _format_of(wanted)
    scored = sorted(((fmt is None or _format_of(name) in (None, fmt), difflib.SequenceMatcher(None, plain(wanted), plain(name)).ratio(),
                      name) for name in present if splits & splits_named(name)), key=lambda item: (not item[0], -item[1], item[2]))
    if not scored:
        return []
    best = scored[0]
    return [name for same, ratio, name in scored[:3] if same == best[0] and ratio >= best[1] - 0.1]


def _format_of(name: str) -> str | None:
    from mtcore.data.readers import format_of

    return None if glob.has_magic(Path(name).name.rsplit(".", 1)[-1]) else format_of(name)


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
