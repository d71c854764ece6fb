"""Prediction file writers registered as ``jsonl`` and ``csv`` (``mt predict --format NAME``).

A writer is called as ``writer(task, rows, output_path)``: ``rows`` is a list of dicts with
``idx``, ``label`` (in the dataset's stored form, e.g. a bool for DaNetQA) and optionally
``probabilities`` (one per class, in ``task.labels`` order; for token classification one such
list per word, None for a word cut by truncation), and any more fields of the task's kind
(extractive QA: ``answer_start``, ``score``), which both writers write too; it writes the file
atomically and returns the paths written. The CSV writer leaves per-word probabilities out (they are no columns).

``mt predict --input`` does not hold every row for these two: :class:`JsonlSink` and
:class:`CsvSink` write the same files a chunk of rows at a time (:mod:`mtcore.predict.writing`).
A plugin's writer is run by :func:`write_staged` (into a hidden folder, then moved into place).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from mtcore.outputs import write_text_atomic

_BASIC = ("idx", "label", "probabilities")
#: Names that are files, not folders: a writer that fills a folder is refused such an ``--output``.
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".conll")


def needs_ids(component: Any) -> bool:
    """Whether the registered writer ``component`` writes submission files keyed by the rows' ids: every writer but
    mtcore's own (``jsonl``, ``csv``, ``conll``), unless it was registered with ``needs_ids=False``."""
    return bool(component.extra.get("needs_ids", component.plugin != "mtcore"))


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays as plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


def _cell(value: Any) -> Any:
    """A CSV cell: lists and mappings (a token task's words) as JSON text."""
    value = _plain(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def _floats(values: Any) -> Any:
    """Probabilities as floats: a list, or a list per word (None kept for words without one)."""
    return [v if v is None or type(v) is float else _floats(v) if isinstance(v, (list, tuple)) else float(v) for v in values]


def _per_word(values: Any) -> bool:
    return any(v is None or isinstance(v, (list, tuple)) for v in _plain(values))


def _jsonl_line(row: Mapping[str, Any]) -> str:
    record = {"idx": _plain(row.get("idx")), "label": _plain(row.get("label"))}
    if row.get("probabilities") is not None:
        record["probabilities"] = _floats(_plain(row["probabilities"]))
    record.update({key: _plain(value) for key, value in row.items() if key not in _BASIC})
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_jsonl(task: Any, rows: Sequence[Mapping[str, Any]], output_path: str | Path) -> list[Path]:
    """One JSON object per row: ``{"idx": ..., "label": ..., "probabilities": [...]}``."""
    path = Path(output_path)
    write_text_atomic(path, "".join(_jsonl_line(row) for row in rows))
    return [path]


class CsvLayout:
    """The CSV columns of some prediction rows: ``idx,label``, a ``p_<label>`` column per class when
    any row has class probabilities (per-word lists are no columns), then the first row's other fields."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.labels = list(getattr(task, "labels", ()) or ())
        self.with_probs = False
        self.width = 0  # the most probabilities of a row (class names for a task without labels)
        self.extra: list[str] | None = None  # extractive QA: answer_start, score

    def see(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            if self.extra is None:
                self.extra = [key for key in row if key not in _BASIC]
            if row.get("probabilities") is not None:
                probs = _plain(row["probabilities"])
                self.width = max(self.width, len(probs))
                self.with_probs = self.with_probs or (bool(probs) and not _per_word(probs))  # [] (a token row of no words): per word

    def settled(self) -> bool:
        """Whether rows yet to come cannot change the header (rows of a task with labels and class
        probabilities, or of a kind that has no probabilities at all)."""
        kind = getattr(getattr(self.task, "kind", None), "value", None)
        return self.extra is not None and ((self.with_probs and bool(self.labels)) or kind in ("regression", "extractive_qa"))

    def columns(self) -> list[str]:
        return [f"p_{name}" for name in self.probability_names()] if self.with_probs else []

    def probability_names(self) -> list[str]:
        return self.labels or [str(i) for i in range(self.width)]

    def header(self) -> list[str]:
        return ["idx", "label"] + self.columns() + list(self.extra or [])

    def record(self, row: Mapping[str, Any]) -> list[Any]:
        record = [_cell(row.get("idx")), _cell(row.get("label"))]  # MuSeRC's {paragraph, question, answer} idx: JSON too
        if self.with_probs:
            probs = _plain(row.get("probabilities")) or []
            record += [f"{float(p):.6g}" for p in probs] + [""] * (len(self.probability_names()) - len(probs))
        return record + [_cell(row.get(key)) for key in self.extra or []]


def write_csv(task: Any, rows: Sequence[Mapping[str, Any]], output_path: str | Path) -> list[Path]:
    """``idx,label`` and one ``p_<label>`` probability column per class (when given)."""
    import io

    path = Path(output_path)
    layout = CsvLayout(task)
    layout.see(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(layout.header())
    writer.writerows(layout.record(row) for row in rows)
    write_text_atomic(path, buffer.getvalue())
    return [path]


def call_writer(writer: Any, component_id: str, task: Any, rows: Sequence[Mapping[str, Any]], output: Path,
                where: Path | None = None) -> list[Path]:
    """``writer(task, rows, output)``: the paths it returns, checked (:func:`check_returned`; ``where``:
    the folder its hidden folder stands for, in the messages), and its own
    exception as one line naming it (:class:`~mtcore.errors.PluginError`); an ``OSError`` or mtcore error
    passes through. A writer refused or failed leaves no file it created outside the hidden folder
    (:mod:`mtcore.predict.watch`; a file that was there before it ran stays); the line names those removed."""
    from mtcore.errors import MtError, PluginError
    from mtcore.predict.watch import remove_created, watching

    seen: dict[str, bool] = {}
    try:
        with watching() as seen:
            returned = writer(task, rows, output)
        return check_returned(returned, component_id, output, where, seen)
    except BaseException as exc:
        removed = remove_created(seen, output.parent)
        note = f" ({_names(removed)}, which it created outside its output, removed)" if removed else ""
        if isinstance(exc, MtError):
            if note:
                exc.args = (f"{exc}{note}",)
            raise
        if isinstance(exc, Exception) and not _outputs_fault(exc):  # a plugin's bug, as one line naming the writer
            text = " ".join(str(exc).split())
            raise PluginError(f"writer {component_id!r} failed: {type(exc).__name__}{': ' + text if text else ''}; "
                              f"nothing was written{note}") from exc
        raise


def _outputs_fault(exc: BaseException) -> bool:
    """An OSError of the place written to (full disk, no permission, read-only): told as the output's. Another one
    (a folder the writer did not make: ENOENT) is the writer's own doing, named with it."""
    import errno

    faults = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EIO") if hasattr(errno, name)}
    return isinstance(exc, OSError) and exc.errno in faults


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as the user knows it: relative to the current folder when inside it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(os.getcwd()))
    except ValueError:
        return str(absolute)


def _names(paths: Sequence[Path], most: int = 3) -> str:
    named = ", ".join(shown_path(p) for p in paths[:most])
    return named + (f" and {len(paths) - most} more" if len(paths) > most else "")


def check_returned(returned: Any, component_id: str, output: Path, where: Path | None = None,
                   seen: dict[str, bool] | None = None) -> list[Path]:
    """The paths a plugin's writer returned for ``output`` (a path in a hidden folder): a non-empty list (or tuple)
    of paths that exist, all in that folder; else a :class:`~mtcore.errors.PluginError` naming the writer and its
    plugin, so that ``mt predict`` never reports predictions it did not write. ``where``: the folder the hidden
    folder stands for (the paths are named as they would have been moved there, as :func:`shown_path` gives them);
    ``seen``: what the writer touched (:func:`~mtcore.predict.watch.watching`), to say that a path outside it
    returned was there before it ran and is not removed."""
    from mtcore.errors import PluginError
    from mtcore.predict.watch import existed_before

    stage = output.parent.resolve()

    def shown(path: Path) -> str:
        relative = path.resolve().relative_to(stage)
        return str(relative) if where is None else shown_path(where / relative)

    who = f"writer {component_id!r} (plugin {component_id.partition(':')[0]!r})"
    fix = "it must write under the path it is given and return a list of the paths it wrote; nothing was written"
    if not isinstance(returned, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in returned):
        raise PluginError(f"{who} returned {_brief(returned)}, not a list of the paths it wrote; {fix}")
    if not returned:
        raise PluginError(f"{who} returned no paths: it wrote no predictions; {fix}")
    paths = [Path(p) for p in returned]
    for path in paths:
        if not path.resolve().is_relative_to(stage):
            kept = (f" ({shown_path(path)} was there before it ran: not removed)"
                    if seen is not None and existed_before(seen, path) else "")
            raise PluginError(f"{who} returned {shown_path(path)!r}, outside the output it was given "
                              f"({shown(output.resolve())}); {fix}{kept}")
        if not os.path.lexists(path):
            raise PluginError(f"{who} returned {shown(path)} but wrote no such file; {fix}")
    return paths


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def write_staged(writer: Any, component_id: str, task: Any, rows: Sequence[Mapping[str, Any]], output: str | Path,
                 folder: bool = False) -> list[Path]:
    """Run a plugin's writer into a hidden folder beside ``output``, then move what it wrote into place.

    ``folder``: the user named ``output`` as a folder (``preds/``, or a folder that exists); a writer
    that writes one file at the path it is given is then refused (a :class:`UsageError` naming a file
    path to give instead), rather than writing a file named like the folder.

    A writer that fails (a bug, a full disk) leaves nothing behind, whatever it had written; the
    missing folders of ``output`` are created for it (and removed on failure); the files get the
    modes ``open()`` gives. A writer's own exception becomes one line naming it
    (:class:`~mtcore.errors.PluginError`); an ``OSError`` passes through for the caller to report.
    """
    import shutil
    import tempfile

    from mtcore.outputs import make_parents, remove_empty, share_modes

    output = Path(output)
    created = make_parents(output.parent)
    stage = Path(tempfile.mkdtemp(prefix=".mt-write-", dir=output.parent))
    try:
        call_writer(writer, component_id, task, rows, stage / output.name, where=output.parent)
        if (stage / output.name).is_dir() and output.suffix.lower() in FILE_SUFFIXES:
            from mtcore.errors import UsageError

            raise UsageError(f"the {component_id} writer writes a folder of files, and --output {output} names a file: give a "
                             f"folder (e.g. {output.with_suffix('')}{os.sep})")
        if (folder or output.is_dir()) and (stage / output.name).is_file():
            from mtcore.errors import UsageError

            raise UsageError(f"the {component_id} writer writes one file at the path it is given, and --output {output}{os.sep} "
                             f"names a folder: give a file path (e.g. {output / ('predictions.' + component_id.rpartition(':')[2])})")
        moved = []
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            target = output.parent / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            share_modes(path)
            path.replace(target)
            moved.append(target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        remove_empty(created)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return moved


class JsonlSink:
    """The ``jsonl`` writer a chunk of rows at a time, into an open text stream (``mt predict --input``)."""

    def __init__(self, task: Any, handle: TextIO) -> None:
        self.handle = handle
        self.count = 0

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.handle.writelines(_jsonl_line(row) for row in rows)  # a line per write: whole records (mtcore.predict.records)
        self.count += len(rows)

    def finish(self) -> None:
        self.handle.flush()

    def close(self) -> None:
        pass


class CsvSink:
    """The ``csv`` writer a chunk of rows at a time, into an open text stream: the same file as
    :func:`write_csv` of all the rows at once.

    Rows go straight out once the first chunk settles the header (:meth:`CsvLayout.settled`:
    classification, multi-label, regression, extractive QA); otherwise (a multiple-choice task
    whose rows may have more choices further on, token classification) they wait, as JSON lines, in an
    anonymous temporary file in ``spool_dir`` until the header is known.
    """

    def __init__(self, task: Any, handle: TextIO, spool_dir: str | Path | None = None) -> None:
        self.layout = CsvLayout(task)
        self.handle = handle
        self.spool_dir = spool_dir
        self.writer: Any = None
        self.spool: IO[str] | None = None
        self.count = 0

    def _start(self) -> None:
        self.writer = csv.writer(self.handle, lineterminator="\n")
        self.writer.writerow(self.layout.header())

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        self.layout.see(rows)
        self.count += len(rows)
        if self.writer is None and self.spool is None and self.layout.settled():
            self._start()
        if self.writer is not None:
            self.writer.writerows(self.layout.record(row) for row in rows)
            return
        if self.spool is None:
            import tempfile

            self.spool = tempfile.TemporaryFile("w+", encoding="utf-8", prefix=".mt-csv-", dir=self.spool_dir)  # no name: nothing left
        self.spool.writelines(json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False) + "\n" for row in rows)

    def finish(self) -> None:
        if self.writer is None:
            self._start()
            if self.spool is not None:
                self.spool.seek(0)
                self.writer.writerows(self.layout.record(json.loads(line)) for line in self.spool)
        self.handle.flush()

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


def sink(format: str, task: Any, handle: TextIO, spool_dir: str | Path | None = None) -> JsonlSink | CsvSink:
    """A streaming sink of mtcore's own writer ``format`` (``jsonl`` or ``csv``)."""
    return JsonlSink(task, handle) if format == "jsonl" else CsvSink(task, handle, spool_dir)


def write_conll(task: Any, rows: Sequence[Mapping[str, Any]], output_path: str | Path) -> list[Path]:
    """A token task's predictions in CoNLL's layout: a word and its predicted tag per line (tab-separated),
    a blank line after each sentence; a word cut by truncation gets ``O`` when the task has that tag, else ``_``."""
    from mtcore.errors import UsageError

    kind = getattr(getattr(task, "kind", None), "value", None)
    if kind != "token_classification":
        raise UsageError(f"--format conll writes a word and its tag per line: task {getattr(task, 'id', task)!r} is {kind}, "
                         "not token_classification; use jsonl or csv")
    cut = "O" if "O" in (getattr(task, "labels", ()) or ()) else "_"
    lines = []
    for row in rows:
        for word, tag in zip(row.get("tokens") or [], _plain(row.get("label")) or []):
            lines.append(f"{word}\t{cut if tag is None else tag}\n")
        lines.append("\n")
    path = Path(output_path)
    write_text_atomic(path, "".join(lines))
    return [path]
