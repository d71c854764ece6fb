"""The ``local`` source of the Russian SuperGLUE tasks: find the official files, then read them.

The official files come in two layouts — the per-task zip (``DaNetQA/train.jsonl``) and the
all-tasks zip (``combined/DaNetQA/train.jsonl`` next to a ``__MACOSX/`` folder) — and users point
``data_dir`` at the folder they unpacked, at its parent, or at the task folder itself. Each split
therefore lists candidate paths; the first that exists is read (names compared exactly first,
then ignoring case, ``__MACOSX`` and hidden folders skipped). Reading is mtcore's generic
JSON Lines reader (``utf-8-sig``, so a byte-order mark is accepted).
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.data.files import NoFileFound
from mtcore.errors import DataError, DataPathError
from mtcore.task import Task

IGNORED_FOLDERS = ("__MACOSX",)
#: Every Russian SuperGLUE task folder of the official zips: a data_dir that is one of them holds that task's files only.
TASK_FOLDERS = ("DaNetQA", "TERRa", "PARus", "RCB", "LiDiRus", "MuSeRC", "RuCoS", "RUSSE", "RWSD")
MAX_DEPTH = 4  # how deep under data_dir the official files are looked for


def _relative_files(root: Path, max_depth: int = MAX_DEPTH) -> list[str]:
    """Every file under ``root`` (POSIX relative paths, sorted), skipping ``__MACOSX`` and hidden folders."""
    found = []
    for folder, subfolders, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        depth = len(relative.parts)
        subfolders[:] = sorted(d for d in subfolders if d not in IGNORED_FOLDERS and not d.startswith(".") and depth < max_depth)
        found.extend((relative / name).as_posix() for name in files if not name.startswith("._"))
    return sorted(found)


def resolve_official_file(data_dir: str | os.PathLike[str], candidates: Sequence[str]) -> Path | None:
    """The file under ``data_dir`` matching the first of ``candidates`` (globs, in order) that matches, or
    None; a DataError when that candidate matches several files (two copies of the data)."""
    root = Path(data_dir)
    files = _relative_files(root)
    for pattern in candidates:
        exact = [f for f in files if fnmatch.fnmatchcase(f, pattern)]
        found = exact or [f for f in files if fnmatch.fnmatchcase(f.lower(), pattern.lower())]
        if len(found) > 1:  # two unpacked copies (an old and a new download): which one is meant is the user's call
            raise DataError(f"{root} holds {len(found)} copies of {pattern.rsplit('/', 1)[-1]} ({', '.join(found[:3])}); "
                            "point data_dir at the folder of the one to read")
        if found:
            return root / found[0]
    return None


def _candidates(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def resolve_split_files(task: Task, data_dir: str | os.PathLike[str] | None, files: Mapping[str, Any], splits: Iterable[str]) -> dict[str, str]:
    """``{split: absolute path}`` for the requested ``splits`` the task has; a one-line DataError when a file is missing."""
    if data_dir is None:
        raise DataError(f"task {task.id!r}: the local source needs data_dir, the folder where you unpacked the official Russian SuperGLUE files")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        from mtcore.errors import did_you_mean_path

        raise DataPathError(f"task {task.id!r}: data_dir {str(root)!r} is not a folder{did_you_mean_path(root, folders=True)}; point it at "
                        "the unpacked Russian SuperGLUE files")
    _check_not_another_tasks_folder(task, root, files)
    resolved = {}
    for split in splits:
        if split not in files:  # e.g. LiDiRus has only a test split: the caller sees it missing
            continue
        candidates = _candidates(files[split])
        try:
            path = resolve_official_file(root, candidates)
        except DataError as exc:  # two copies: named with the task, as every data error is
            raise DataError(f"task {task.id!r}: {exc}") from None
        if path is None:  # NoFileFound: a missing validation file lets a task's holdout make one
            packed = _packed(root, candidates)
            fix = (f"{packed} is here, still packed: unpack it there (unzip {packed} -d {packed.parent})" if packed else
                   "download the task from russiansuperglue.com/tasks/download and unpack it there")
            raise NoFileFound(f"task {task.id!r}: no file for split {split!r} under {root} (looked for {', '.join(candidates)}); {fix}")
        resolved[split] = str(path.resolve())
    return resolved


def _packed(root: Path, candidates: Sequence[str]) -> Path | None:
    """The official zip of the task (``DaNetQA.zip``, or the all-tasks ``combined.zip``) lying unpacked in ``root``."""
    names = {candidate.split("/", 1)[0].lower() for candidate in candidates if "/" in candidate} | {"combined"}
    try:
        zips = sorted(path for pattern in ("*.zip", "*/*.zip") for path in root.glob(pattern))
    except OSError:
        return None
    return next((path for path in zips if path.stem.lower() in names), None)


def _check_not_another_tasks_folder(task: Task, root: Path, files: Mapping[str, Any]) -> None:
    """A data_dir that is another task's folder (``RSG/DaNetQA`` for TERRa) would have its bare ``val.jsonl``
    read as this task's file; say so instead."""
    own = {c.split("/", 1)[0].lower() for value in files.values() for c in _candidates(value) if "/" in c}
    folder = root.name.lower()
    if folder in {f.lower() for f in TASK_FOLDERS} and folder not in own:
        mine = next((f for f in TASK_FOLDERS if f.lower() in own), "the task's own folder")
        raise DataError(f"task {task.id!r}: data_dir {str(root)!r} is the {root.name} task's folder; point it at "
                        f"{str(root.parent)!r} (the folder holding {mine}/) or at {mine}/ itself")


def load_rsg_files(
    task: Task,
    splits: Iterable[str],
    /,
    *,
    files: Mapping[str, Any],
    data_dir: str | os.PathLike[str] | None = None,
    format: str = "jsonl",
    cache_dir: str | os.PathLike[str] | None = None,
    **reader_options: Any,
) -> Any:
    """Read the official files of ``task`` for ``splits`` into a ``datasets.DatasetDict``.

    ``files`` maps each split to a path or a list of candidate paths (globs) relative to
    ``data_dir``; the first candidate found is read by mtcore's file reader with
    ``reader_options`` (``encoding``, ...). Splits the task does not have are left out.
    """
    from mtcore.data.sources import load_files

    resolved = resolve_split_files(task, data_dir, files, list(splits))
    loaded = load_files(task, list(resolved), data_dir=data_dir, files=resolved, format=format, cache_dir=cache_dir, **reader_options)
    warn_unmarked_test_rows(task, loaded)
    return loaded



def load_rsg_hub(task: Task, splits: Iterable[str], /, **options: Any) -> Any:
    """The hub's Parquet export of ``task`` for ``splits`` (mtcore's hub loader, same options), with the warning
    :func:`load_rsg_files` gives about unlabelled RUSSE / RWSD rows whose target cannot be marked."""
    from mtcore.data.sources import load_hub

    loaded = load_hub(task, list(splits), **options)
    warn_unmarked_test_rows(task, loaded)
    return loaded

#: The tasks whose row function marks a target in the text (see :func:`mt_russian_superglue.preprocess.marking_problem`).
MARKED_TASKS = {"mt_russian_superglue.preprocess:preprocess_russe": "russe", "mt_russian_superglue.preprocess:preprocess_rwsd": "rwsd"}


def warn_unmarked_test_rows(task: Task, loaded: Mapping[str, Any]) -> int:
    """Warn once per file about its unlabelled RUSSE / RWSD rows whose target cannot be marked (they are read
    with what can be marked, so the submission keeps their idx; labelled ones fail in preprocessing). Returns their count."""
    from mtcore.data.rows import FILE_COLUMN

    from mt_russian_superglue.preprocess import is_unlabelled, marking_problem

    kind = next((MARKED_TASKS[step] for step in task.preprocess if isinstance(step, str) and step in MARKED_TASKS), None)
    if kind is None:
        return 0
    total = 0
    for split, rows in loaded.items():
        bad: dict[str, list[Any]] = {}  # file -> [count, first idx, first problem]
        if "label" in rows.column_names:  # only the unlabelled rows are looked at (a labelled split is read as columns)
            rows = rows.select([i for i, label in enumerate(rows["label"]) if is_unlabelled({"label": label})])
        for row in rows:
            problem = marking_problem(kind, row)
            if problem is not None:
                entry = bad.setdefault(str(row.get(FILE_COLUMN) or f"the {split} split"), [0, row.get("idx"), problem])
                entry[0] += 1
        for where, (count, idx, problem) in bad.items():
            total += count
            warnings.warn(f"task {task.id!r}, {where}: {count} unlabelled row(s) have a target that cannot be marked "
                          f"(e.g. idx {idx!r}: {problem.split('; ')[0]}); they are read with what can be marked, so their "
                          "predictions are still written", stacklevel=2)
    return total
