"""What ``predict`` reads: files (JSON Lines, CSV, ...), standard input, lists of dicts, Datasets.

A file (or standard input) is read lazily through :func:`open_input`, so that ``mt predict
--input`` holds one chunk of it at a time (:mod:`mtcore.predict.chunks`). Rows (all of them, or a
chunk) become a raw ``datasets.Dataset`` in memory whose rows keep the file and row they came
from (so a bad row is reported as ``input.jsonl row 7: ...``). Rows are the task's *raw*
fields (``premise``, ``hypothesis``, ...; PARus's ``premise``, ``choice1``, ``choice2``,
``question``): the task's preprocessing and renaming run afterwards, exactly as for training.
The label field, if present, is dropped: prediction never needs labels.
"""

from __future__ import annotations

import contextlib
import shlex
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.data.formats import AUTO, FORMATS
from mtcore.errors import ConfigError, DataError
from mtcore.task import Task

#: Name shown for rows given as Python objects (``model.predict(task, [{...}, ...])``).
PYTHON_ORIGIN = "inputs"
STDIN = "-"
STDIN_NAME = "<stdin>"
INPUT_FORMATS = (AUTO, *FORMATS)

Row = tuple[str, int, Mapping[str, Any]]


def label_field(task: Task) -> str:
    """The raw field holding a row's label (dropped before prediction)."""
    return task.input_map.get("label", "label")


def _check_format(input_format: str) -> str:
    if input_format not in INPUT_FORMATS:
        from mtcore.errors import unknown

        raise unknown("input format", input_format, INPUT_FORMATS)
    return input_format


def _file_format(path: Path, input_format: str) -> str:
    from mtcore.data.readers import detect_format

    if input_format != "auto":
        return input_format
    try:
        return detect_format(path, "auto")
    except ConfigError:
        raise ConfigError(f"{path}: cannot tell the input format from the file name; "
                          f"pass --input-format (input_format=) one of: {', '.join(INPUT_FORMATS[1:])}") from None


class InputFile:
    """One input file read lazily, as often as needed: iterating gives ``(file, row_number, row)``.

    ``name`` is what rows and errors say (``<stdin>`` for standard input, spooled to a temporary
    file by :func:`open_input`).
    """

    def __init__(self, path: Path, fmt: str, name: str) -> None:
        self.path, self.fmt, self.name = path, fmt, name
        #: reader options (a CoNLL file's ``sep``, ``columns``, ``comment``): the task's own (:meth:`read_as`)
        self.options: dict[str, Any] = {}
        #: the field of a CoNLL file's words: the task's (``inputs: {tokens: words}``)
        self.tokens = "tokens"

    def read_as(self, task: Task) -> InputFile:
        """Read the file as ``task``'s sources read theirs (:func:`reader_options_of`), a CoNLL file's words into its
        tokens field (:func:`mtcore.data.conll.input_rows`)."""
        self.options = reader_options_of(task, self.fmt)
        self.tokens = task.input_map.get("tokens", "tokens")
        return self

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.fmt == "conll":
            from mtcore.data.conll import input_rows

            return input_rows(self.path, tokens=self.tokens, **self.options)
        from mtcore.data.readers import iter_rows

        return iter_rows(self.path, self.fmt, **self.options)

    def __iter__(self) -> Iterator[Row]:
        rows = self._rows()
        if self.name == str(self.path):
            yield from ((self.name, number, row) for number, row in rows)
            return
        try:
            for number, row in rows:
                yield self.name, number, row
        except (DataError, ConfigError) as exc:
            raise type(exc)(str(exc).replace(str(self.path), self.name)) from None

    def no_rows(self) -> DataError:
        if self.name != STDIN_NAME:
            return DataError(f"{self.path}: the input file has no rows; give one JSON object per line (jsonl) or a CSV header and rows")
        if self.fmt == "csv":  # stdin not starting with '{' is read as CSV: its one line became the header
            return DataError(f"{STDIN_NAME}: the input has no rows: it does not start with '{{', so it was read as CSV and its first "
                             "line is the header; pipe one JSON object per line, or a CSV header and rows")
        return DataError(f"{STDIN_NAME}: the input has no rows")


@contextlib.contextmanager
def open_input(path: str | os.PathLike, input_format: str = "auto") -> Iterator[InputFile]:
    """The input file ``path`` (checked: it exists, is a file, its format is known), or standard
    input for ``"-"``: copied, a block at a time, to a temporary file removed on leaving. So is a
    file that is no regular file (``/dev/stdin``, ``<(...)``, a named pipe), which can be read once only.
    The copy keeps the bytes, so it is decoded as a file is (UTF-8, a byte-order mark dropped), whatever
    the terminal's encoding.

    Standard input is JSON Lines unless ``input_format`` says otherwise (``auto`` looks at the
    first character: ``{`` means JSON Lines, anything else CSV with a header); a pipe's name decides
    when it tells the format (``<(zcat x)`` does not: it is read as standard input is).
    """
    _check_format(input_format)
    file = Path(path).expanduser()
    if str(path) != STDIN:
        problem = input_file_problem(path)
        if problem is not None:
            hint = "; to predict rows given in Python, pass a list of dicts of the task's raw fields" if " " in str(path) and not file.exists() else ""
            raise DataError(f"{problem}{hint}")
        if file.is_file() and not str(file.absolute()).startswith(("/dev/", "/proc/")):  # /dev/stdin < FILE: a stream's name
            yield InputFile(file, _file_format(file, input_format), str(file))
            return
    name = STDIN_NAME if str(path) == STDIN else str(file)
    suffix = "" if str(path) == STDIN else "".join(file.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=".mt-stdin-", suffix=suffix)
    try:
        first = _copy_bytes(name, file, fd)
        if not first:
            raise DataError(f"{name}: the input has no rows; pipe one JSON object per line (or CSV with --input-format csv)")
        fmt = input_format if input_format != "auto" else _named_format(file, suffix) or ("jsonl" if first == b"{" else "csv")
        yield InputFile(Path(tmp), fmt, name)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _copy_bytes(name: str, file: Path, fd: int) -> bytes:
    """Copy standard input (``name`` is :data:`STDIN_NAME`) or the pipe ``file`` to the open ``fd``; its first byte that
    is not space (after a byte-order mark, which official files have): ``b""`` when there is none."""
    first, start = b"", True
    source = getattr(sys.stdin, "buffer", None) if name == STDIN_NAME else None
    with contextlib.ExitStack() as stack:
        if source is None and name == STDIN_NAME:  # a text stream without bytes below (a test's StringIO)
            source = stack.enter_context(_encoded(sys.stdin))
        elif source is None:
            source = stack.enter_context(open(file, "rb"))
        handle = stack.enter_context(os.fdopen(fd, "wb"))
        while block := source.read(1 << 20):
            look = block.removeprefix(b"\xef\xbb\xbf") if start else block
            start = False
            first = first or look.lstrip()[:1]
            handle.write(block)
    return first


@contextlib.contextmanager
def _encoded(stream: Any) -> Iterator[Any]:
    import io

    yield io.BytesIO(stream.read().encode("utf-8"))


def _named_format(file: Path, suffix: str) -> str | None:
    """The format a pipe's name gives (``data.jsonl``, a named pipe), or None."""
    if not suffix:
        return None
    try:
        return _file_format(file, "auto")
    except ConfigError:
        return None


def input_file_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with ``path`` as an input file (missing, with "did you mean"; a folder), or None. ``mt predict``
    and ``mt evaluate`` ask it before loading the model, and make it a usage error (exit 2)."""
    file = Path(path).expanduser()
    if not file.exists():
        from mtcore.errors import did_you_mean_path

        return f"{file}: no such input file{did_you_mean_path(file, folders=False)}"
    if file.is_dir():
        return f"{file}: is a folder; pass one input file (JSON Lines or CSV), or --split for a split of the task's data"
    if file.is_file() and file.stat().st_size == 0:
        return f"{file}: the input file is empty; give one JSON object per line (jsonl) or a CSV header and rows"
    return None


def read_file_rows(path: str | os.PathLike, input_format: str = "auto", task: Task | None = None) -> list[Row]:
    """Every row of one input file as ``(file, row_number, row)``, read as ``task`` reads its files (if given:
    :meth:`InputFile.read_as`); ``"-"`` reads standard input (see :func:`open_input`)."""
    with open_input(path, input_format) as source:
        if task is not None:
            source.read_as(task)
        rows = list(source)
        if not rows:
            raise source.no_rows()
    return rows


def python_rows(inputs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[Row]:
    """Rows given as one dict or a list of dicts (raw field -> value)."""
    if isinstance(inputs, Mapping):
        inputs = [inputs]
    rows: list[Row] = []
    for number, row in enumerate(inputs, start=1):
        if not isinstance(row, Mapping):
            raise DataError(f"{PYTHON_ORIGIN} row {number}: expected a dict of raw fields, got {type(row).__name__}")
        rows.append((PYTHON_ORIGIN, number, row))
    if not rows:
        raise DataError(f"{PYTHON_ORIGIN}: no rows to predict")
    return rows


def required_fields(task: Task) -> dict[str, str]:
    """Raw field -> canonical column the rows must have (only knowable when no preprocessing runs first)."""
    if task.preprocess:
        return {}
    return {raw: column for column, raw in task.input_map.items() if column not in ("label", "candidates")}  # candidates: optional


def check_fields(rows: Sequence[Row], task: Task, *, expanded: bool = False) -> None:
    """One line for the first row missing a field the task reads (before any heavy work; rows a
    ``row_expand`` will flatten are checked once flattened)."""
    needed = required_fields(task) if expanded or row_expand_of(task) is None else {}
    for file, number, row in rows:
        for raw, column in needed.items():
            if raw not in row:
                has = ", ".join(map(str, row)) or "no fields"
                raise DataError(f"task {task.id!r}, {file} row {number}: no field {raw!r} ({column}); "
                                f"input rows need the fields {', '.join(needed)} (this row has: {has}){own_loader_hint(task, 'test', file)}")


def own_loader_hint(task: Task, split: str, file: str | Path | None = None) -> str:
    """``"; ... --split test --source local --data-dir FOLDER"`` when the task's official files are read by a loader of
    its plugin (XNLI's renames and filters fields, RuTweetCorp's names the columns and derives the label), so a file of
    theirs given as ``--input`` lacks the fields; ``""`` for a task read by mtcore's own loaders. A ``file`` at the
    place the source's ``files`` give a split (``.../XNLI-1.0/xnli.test.tsv``) names that split and its folder."""
    local = _sources(task).get("local")
    loader = getattr(local, "loader", None)
    if loader is None:
        return ""
    name = loader if isinstance(loader, str) else f"{getattr(loader, '__module__', '?')}:{getattr(loader, '__qualname__', '?')}"
    options = getattr(local, "options", None) or {}
    if name.startswith("mtcore.") or (file is not None and Path(file).name not in _official_names(options)):
        return ""  # not one of the plugin's official files (your own rows missing a field): the line alone says it
    folder = "FOLDER"
    placed = _official_place(options, file)
    if placed is not None:
        split, root = placed
        folder = shlex.quote(str(root))
    return (f"; an official file of {task.id} is read by its plugin's loader ({name}), not as plain rows: give the folder "
            f"holding it instead of --input, with --split {split} --source local --data-dir {folder}")


def _official_names(options: Mapping[str, Any]) -> set[str]:
    """The names of the files a source's loader reads (``files`` per split, ``corpus_files``), globs left out."""
    names = set()
    for key in ("files", "corpus_files"):
        given = options.get(key)
        for value in given.values() if isinstance(given, Mapping) else ():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, str) and not any(c in item for c in "*?["):
                    names.add(Path(item).name)
    return names


def _official_place(options: Mapping[str, Any], file: str | Path | None) -> tuple[str, Path] | None:
    """The split whose file (``options["files"]``, relative to ``data_dir``) ``file`` is, and the ``data_dir`` that
    holds it; None when it is none of them (another name, a glob, a derived split)."""
    files = options.get("files")
    if file is None or not isinstance(files, Mapping):
        return None
    path = Path(file).expanduser().absolute()
    for split, relative in files.items():
        if not isinstance(relative, str) or any(c in relative for c in "*?["):
            continue
        parts = Path(relative).parts
        if len(parts) < len(path.parts) and path.parts[-len(parts):] == parts:
            return str(split), Path(*path.parts[: -len(parts)])
    return None


def _sources(task: Task) -> Any:
    """The task's sources (the installed plugin's task's when the task, rebuilt from a model file, has none)."""
    if task.sources:
        return task.sources
    from mtcore.predict.tasks import registered_task  # a model's manifest keeps no sources

    registered = registered_task(task.id)
    return registered.sources if registered is not None else {}


def row_expand_of(task: Task) -> Any:
    """The ``row_expand`` option of the task's sources, or None."""
    return next((source.options["row_expand"] for source in _sources(task).values() if source.options.get("row_expand")), None)


def reader_options_of(task: Task, fmt: str) -> dict[str, Any]:
    """The reader options (``sep``, ``comment``, ``columns``, ...) a source of the task reading ``fmt`` files gives,
    so an input file in the training files' layout is read as they were (a CoNLL file's separator, comments and
    columns; one may hold fewer columns: :func:`mtcore.data.conll.input_rows`)."""
    from mtcore.data.readers import format_of, reader_option_names
    from mtcore.data.sources import split_options

    def reading(options: Any) -> str | None:  # the first split whose files are fmt files ("" when none says)
        files = options.get("files")
        splits = {split: [v] if isinstance(v, str) else list(v) for split, v in (files.items() if isinstance(files, dict) else ())}
        declared = options.get("format", "auto")
        if declared != "auto":
            return next(iter(splits), "") if declared == fmt else None
        return next((split for split, paths in splits.items() if any(format_of(p) == fmt for p in paths)), None)

    names = reader_option_names(fmt) - {"row_expand", "row_filter"}
    for source in _sources(task).values():
        split = reading(source.options)
        if split is not None:  # the options of every file, and that split's own ({train: {sep: ";"}})
            return {key: value for key, value in split_options(source.options, split).items() if key in names}
    return {}


def expand_rows(rows: Sequence[Row], task: Task) -> Sequence[Row]:
    """``rows`` through the ``row_expand`` function of the task's sources, if one has it, so a file
    in the official nested layout (a MuSeRC passage with its questions) predicts as the sources read it."""
    spec = row_expand_of(task)
    if spec is None:
        return rows
    from mtcore.data.expand import expanded_rows, make_row_expander

    expand = make_row_expander(spec)
    out: list[Row] = []
    for file in dict.fromkeys(file for file, _, _ in rows):
        out.extend((file, number, row) for number, row in expanded_rows(Path(file), ((n, r) for f, n, r in rows if f == file), expand))
    return out


def rows_dataset(rows: Sequence[Row], task: Task) -> Any:
    """An in-memory raw ``Dataset`` of ``rows`` (label field dropped, origin columns added).

    Column types are settled over all rows first (ints widen to floats, missing fields are
    null, and listed in the row's ``MISSING_COLUMN`` as for files read in training, so a lacking
    field is told apart from a null one), so rows that differ a little still fit one Arrow table;
    a real conflict in a field the task reads is one line naming the row (one it does not read is
    kept as text, :func:`mtcore.data.rows.rows_in_memory`).
    """
    from mtcore.data.rows import META_COLUMNS, rows_in_memory
    from mtcore.data.sources import unread_fields

    rows = expand_rows(rows, task)
    check_fields(rows, task, expanded=True)
    drop = label_field(task)
    clean = [(file, number, {k: v for k, v in row.items() if k != drop and k not in META_COLUMNS})
             for file, number, row in rows]
    # fields the task does not read are kept loosely, as training reads them (a key per row: one JSON column)
    return rows_in_memory(clean, what=rows[0][0] if rows else PYTHON_ORIGIN, loose=unread_fields(task))


def raw_dataset(inputs: Any, task: Task, input_format: str = "auto") -> Any:
    """Any accepted input as a raw in-memory ``Dataset`` for ``task``.

    ``inputs``: a ``datasets.Dataset`` (its label column is dropped), a path to a file (or
    ``"-"`` for standard input), one dict or a list of dicts of raw fields.
    """
    try:
        from datasets import Dataset
    except ImportError:  # pragma: no cover - datasets is a dependency
        Dataset = ()  # type: ignore[assignment]
    if isinstance(inputs, Dataset):
        if inputs.num_rows == 0:
            raise DataError(f"task {task.id!r}: the Dataset to predict has no rows")
        drop = label_field(task)
        return inputs.remove_columns([drop]) if drop in inputs.column_names else inputs
    if isinstance(inputs, (str, os.PathLike)):
        return rows_dataset(read_file_rows(inputs, input_format, task), task)
    if isinstance(inputs, Mapping) or isinstance(inputs, Iterable):
        return rows_dataset(python_rows(inputs), task)
    raise ConfigError(f"cannot predict from a {type(inputs).__name__}; pass a list of dicts of raw fields, "
                      "a datasets.Dataset, or a file path")
