"""mtcore's generic loaders behind ``Source.hub``, ``Source.local`` and ``Source.sample``.

Each is called as ``loader(task, splits, **source.options)`` (plus ``data_dir=`` for local
sources and ``cache_dir=``) and returns a ``datasets.DatasetDict`` of raw rows keyed by canonical
split names, holding the requested splits the source has (the caller reports missing ones).
``splits`` is positional-only, so a source may have an option called ``splits`` (the hub's split
names). Plugin loaders for unusual layouts build on :func:`rows_from_files`,
:func:`mtcore.data.readers.iter_rows` and :func:`dataset_from_rows`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mtcore.data.files import EmptySplit, files_fingerprint, find_files
from mtcore.data.prepare import label_problem
from mtcore.data.readers import iter_rows
from mtcore.data.rows import FILE_COLUMN, ROW_COLUMN, NoRows, RowsFactory, dataset_from_rows
from mtcore.errors import ConfigError, DataError, MtError
from mtcore.task import SPLITS, Task

__all__ = ["FILE_COLUMN", "ROW_COLUMN", "RowsFactory", "dataset_from_rows", "load_files", "load_hub", "load_sample", "rows_from_files"]


@contextlib.contextmanager
def task_context(task: Task) -> Iterator[None]:
    """Prefix data errors raised inside with ``task '<id>', `` (once)."""
    try:
        yield
    except DataError as exc:
        if not str(exc).startswith("task "):
            exc.args = (f"task {task.id!r}, {exc}",)  # the same error (its class tells callers what went wrong), named
        raise


def rows_from_files(paths: Sequence[str | Path], format: str = "auto", **options: Any) -> RowsFactory:
    """A rows factory for :func:`dataset_from_rows`: every row of every file, with its file and row number."""
    paths = [str(path) for path in paths]

    def rows() -> Iterator[tuple[str, int, dict[str, Any]]]:
        for path in paths:
            for number, row in iter_rows(path, format, **options):
                yield path, number, row

    return rows


def split_options(options: Mapping[str, Any], split: str) -> dict[str, Any]:
    """The reader options of ``split``'s files: those of every file, then the split's own (``test: {encoding:
    cp1251}`` among the options: a train CSV's ``sep`` need not reach a JSON Lines test file), which win."""
    own = options.get(split)
    return {**{k: v for k, v in options.items() if k not in SPLITS}, **(dict(own) if isinstance(own, Mapping) else {})}


def label_conflict(task: Task):
    """``describe_conflict`` for :func:`dataset_from_rows`: a label of the wrong type is a bad label."""
    label_field = task.input_map.get("label", "label")

    def describe(column: str, value: Any) -> str | None:
        if column != label_field or task.preprocess or isinstance(value, (list, dict)):
            return None
        return label_problem(task, value)

    return describe


def unread_fields(task: Task):
    """``loose`` for :func:`dataset_from_rows`: fields the task does not read (none when preprocessing may read any).

    It closes over plain data only, the fields read and whether there are steps: the rows' cache
    key includes it (by code and closure), so a task reading other fields gets its own rows."""
    read = frozenset(str(field) for field in {*task.input_map.values(), task.input_map.get("label", "label"), task.id_field}
                     if field is not None)
    any_field = bool(task.preprocess)

    def loose(column: str) -> bool:
        return not any_field and column not in read

    return loose


def _read_split(task: Task, split: str, paths: list[Path], format: str, cache_dir: Any, options: Mapping[str, Any]):
    what = ", ".join(str(p) for p in paths)
    filtered = f" matching row_filter {options['row_filter']!r}" if options.get("row_filter") is not None else ""
    keyed = dict(options)
    for name in ("row_filter", "row_expand"):
        if isinstance(keyed.get(name), str):  # 'module:function': keyed by the function's code, not its name
            from mtcore.refs import resolve

            keyed[name] = resolve(keyed[name])
    key = files_fingerprint(paths, format, keyed)
    try:
        return dataset_from_rows(rows_from_files(paths, format, **options), fingerprint=key, what=what,
                                 cache_dir=cache_dir, describe_conflict=label_conflict(task), loose=unread_fields(task))
    except NoRows:
        if filtered:
            raise DataError(f"{what}: the {split} split has no rows{filtered}") from None
        raise EmptySplit(f"{what}: the {split} split has no rows", split) from None



def load_files(task: Task, splits: Sequence[str], /, *, data_dir: str | Path | None = None, files: Mapping[str, Any],
               format: str = "auto", cache_dir: str | Path | None = None, **reader_options: Any):
    """Read the official files a user downloaded: ``files`` maps split -> path, glob or list under ``data_dir``
    (or in one of its sub-folders: the folder a zip was unpacked into)."""
    if data_dir is None:
        wanted = ", ".join(f"{split}: {spec}" for split, spec in files.items())
        raise DataError(f"task {task.id!r}: the local source needs data_dir=<folder with the downloaded files> ({wanted})")
    return read_files(task, splits, data_dir, files, format, cache_dir, reader_options)


def read_files(task: Task, splits: Sequence[str], data_dir: str | Path, files: Mapping[str, Any], format: str,
               cache_dir: str | Path | None, reader_options: Mapping[str, Any], *, nested: bool = True) -> Any:
    """:func:`load_files`' reading; ``nested=False``: the files are in ``data_dir`` itself, not searched for below it."""
    from datasets import DatasetDict

    out = {}
    with task_context(task):
        for split in splits:
            if split in files:
                paths = find_files(data_dir, files[split], split=split, format=format, nested=nested)
                out[split] = _read_split(task, split, paths, format, cache_dir, split_options(reader_options, split))
    return DatasetDict(out)


def load_sample(task: Task, splits: Sequence[str], /, *, package: str, files: Mapping[str, Any], format: str = "auto",
                cache_dir: str | Path | None = None, **reader_options: Any):
    """Read the small sample a plugin ships inside ``package`` (``importlib.resources``)."""
    from datasets import DatasetDict

    out = {}
    with task_context(task), contextlib.ExitStack() as stack:
        try:
            root = resources.files(package)
        except ModuleNotFoundError:
            raise DataError(f"sample package {package!r} is not installed") from None
        for split in splits:
            if split not in files:
                continue
            names = [files[split]] if isinstance(files[split], str) else list(files[split])
            paths = []
            for name in names:
                resource = root.joinpath(name)
                if not resource.is_file():
                    raise DataError(f"the sample file {name!r} is missing from package {package!r}")
                paths.append(stack.enter_context(resources.as_file(resource)))
            out[split] = _read_split(task, split, paths, format, cache_dir, split_options(reader_options, split))
    return DatasetDict(out)


def _hub_error(task: Task, path: str, exc: Exception) -> DataError:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "scripts are no longer supported" in text:
        return DataError(f"task {task.id!r}: hub dataset {path!r} is script-based; use its Parquet export: "
                         f"revision='refs/convert/parquet' with data_dir='<config>'")
    if path.startswith(("/", ".", "~")) and not Path(path).expanduser().exists():  # a folder, not a hub id
        return DataError(f"task {task.id!r}: the hub source's path {path!r} is a folder that does not exist; "
                         "point it at the folder in the hub's Parquet layout (<config>/<split>/0000.parquet)")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or "Offline" in text
    reason = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else text[:200]
    return DataError(f"task {task.id!r}: cannot load hub dataset {path!r} ({reason}); "
                     f"use source 'local' with data_dir=<folder with the official files>, or source 'sample'")


def load_hub(task: Task, splits: Sequence[str], /, *, path: str, name: str | None = None, revision: str | None = None,
             data_dir: str | None = None, cache_dir: str | Path | None = None, **options: Any):
    """Load a Hugging Face hub dataset (``path`` may also be a local folder in the hub's layout).

    ``splits`` (a source option, passed by keyword) maps canonical split names to the hub's.
    """
    from datasets import DatasetDict, load_dataset

    hub_names = dict(options.pop("splits", None) or {})
    if options:
        raise ConfigError(f"task {task.id!r}: unknown hub source option {sorted(options)[0]!r}; "
                          f"hub sources take path, name, revision, data_dir, splits")
    unknown = sorted(set(hub_names) - set(SPLITS))
    if unknown:
        raise ConfigError(f"task {task.id!r}: hub source maps unknown split {unknown[0]!r}; use {', '.join(SPLITS)}")
    kwargs = {k: v for k, v in {"revision": revision, "data_dir": data_dir}.items() if v is not None}
    try:
        loaded = load_dataset(path, name, cache_dir=str(cache_dir) if cache_dir else None, **kwargs)
    except MtError:
        raise
    except Exception as exc:  # network, offline, missing dataset, script-based: all become one line
        raise _hub_error(task, path, exc) from None
    out = {}
    for split in splits:
        hub_split = hub_names.get(split, split)
        if hub_split in loaded:
            out[split] = loaded[hub_split]
    return DatasetDict(out)
