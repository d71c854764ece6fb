"""Where ``mt predict`` puts its predictions: stdout, one file, or one file per task in a folder.

* :func:`predict_input` — ``--input FILE`` (or ``-``): the file is read and predicted a chunk at a
  time (:mod:`mtcore.predict.chunks`); mtcore's ``jsonl`` and ``csv`` writers append each chunk's
  rows as they come (:class:`~mtcore.predict.writers.JsonlSink`, ``CsvSink``), into a temporary
  file beside the output renamed into place at the end (:class:`~mtcore.outputs.AtomicText`), so
  memory stays that of one chunk; a plugin's writer gets every row at once, as its hook promises.
* :func:`write_rows` — one task's prediction rows, all at once (``--split``).
* :class:`TaskFolder` — several tasks' files (``--split --task a,b|all``), all or none: written
  into a hidden folder inside the output folder and moved into place only once every task is
  written; on a failure nothing new remains and the files already there are as they were.

A failed write is one line naming the output (exit 1) and leaves no temporary file or folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

#: mtcore's own writers: they stream, write a file or stdout, and are atomic themselves.
STREAMED = ("jsonl", "csv")


@contextlib.contextmanager
def _writing(output: str | os.PathLike[str]) -> Iterator[None]:
    """An ``OSError`` of the block is a failed write of ``output``: one line naming it (a closed stdout
    pipe passes, for the CLI to end quietly)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        from mtcore.outputs import write_error

        raise write_error(output, exc) from exc


def check_writer(writer: Any, spec: Any) -> None:
    """A plugin writer that refuses ``spec`` (the rsg writer and a non-RSG task) says so before any prediction;
    what this trial run creates outside its folder (a writer writing beside its output) is removed at once."""
    from mtcore.errors import MtError
    from mtcore.predict.watch import remove_created, watching

    with tempfile.TemporaryDirectory(prefix="mt-predict-check-") as tmp:
        seen: dict[str, bool] = {}
        try:
            with watching() as seen:
                writer(spec, [], Path(tmp) / "check")
        except MtError:
            raise
        except Exception:  # a writer broken in other ways fails the real write, which names it and leaves nothing
            pass
        finally:
            remove_created(seen, Path(tmp))


class TasksLeftOutWarning(UserWarning):
    """``--task all`` with a writer that refuses some of the tasks: those are left out."""


def tasks_the_writer_takes(writer: Any, format: str, setups: Sequence[Any], split: str, *, leave_out: bool) -> list[Any]:
    """The task setups ``writer`` takes (:func:`check_writer`, before any prediction). A task it refuses is an error
    unless ``leave_out`` (``--task all``: the rsg writer given a model trained on RSG and NLI tasks writes the RSG
    files): then it is left out, all such tasks named in one :class:`TasksLeftOutWarning` with how to predict
    them. A writer that refuses every task is an error (its refusal of the first)."""
    from mtcore.errors import MtError

    taken, refused = [], []
    for setup in setups:
        try:
            check_writer(writer, setup.task)
        except MtError as error:
            if not leave_out:
                raise
            refused.append((setup.task.id, error))
            continue
        taken.append(setup)
    if refused and not taken:
        raise refused[0][1]
    if refused:
        import warnings

        ids = [task_id for task_id, _ in refused]
        them = "it" if len(ids) == 1 else "them"
        reason = " ".join(str(refused[0][1]).split())
        warnings.warn(f"--format {format} left out {', '.join(ids)}, which its writer refuses ({reason}); predict {them} with "
                      f"--task {','.join(ids)} --split {split} --format jsonl --output <another folder>", TasksLeftOutWarning,
                      stacklevel=2)
    return taken


class NumberedRowsWarning(UserWarning):
    """Rows without an id were numbered 0..N-1, and a submission writer writes those numbers as their ids."""


def predict_input(model: Any, head_id: str, task: Any, input: str | os.PathLike[str], *, batch_size: int,
                  input_format: str = "auto", format: str = "jsonl", output: Path | None = None, writer: Any = None,
                  writer_id: str | None = None, chunk_rows: int | None = None, chunk_units: int | None = None,
                  needs_ids: bool | None = None, n_best: int = 0, output_folder: bool = False) -> tuple[int, list[Path]]:
    """Predict the rows of the file ``input`` (``"-"``: standard input) for ``task`` with head ``head_id``
    and write them with ``format`` to ``output`` (``None``: stdout); ``(rows written, paths written)``.

    The file is read once to check it (:func:`~mtcore.predict.chunks.check_rows`: a missing field or
    mixed ids are one line before any prediction), then a chunk at a time to predict it.
    ``writer``/``writer_id``: the registered writer of a ``format`` that is not mtcore's own. When it
    writes submission files keyed by the rows' ids (``needs_ids``; default: every writer but mtcore's,
    :func:`~mtcore.predict.writers.needs_ids`) and the rows gave none, a :class:`NumberedRowsWarning` says
    they were numbered 0..N-1 in file order. ``output_folder``: ``output`` was named as a folder (see
    :func:`~mtcore.predict.writers.write_staged`).
    """
    from mtcore.predict.chunks import Tally, check_rows, predict_chunks
    from mtcore.predict.inputs import STDIN, STDIN_NAME, open_input

    origin = STDIN_NAME if str(input) == STDIN else str(input)
    with open_input(input, input_format) as source:
        source.read_as(task)  # as the training files were read (a CoNLL file's sep and columns, the task's field names)
        if not check_rows(source, task, chunk_rows=chunk_rows, chunk_units=chunk_units):
            raise source.no_rows()
        tally = Tally()
        chunks = predict_chunks(model, head_id, task, source, batch_size=batch_size, origin=origin, chunk_rows=chunk_rows,
                                chunk_units=chunk_units, tally=tally, n_best=n_best)
        if format in STREAMED:
            return stream_rows(format, task, chunks, output)
        rows = [row for chunk in chunks for row in chunk]
        writer_id = writer_id or format
        written = write_rows(writer, format, writer_id, task, rows, output, folder=output_folder)
        if needs_ids is None:  # mtcore's writers (mtcore:conll, or conll in Python) write any rows; others submissions
            needs_ids = writer_id.partition(":")[0] != "mtcore" if ":" in writer_id else format not in ("jsonl", "csv", "conll")
        if tally.numbered and needs_ids:
            _warn_numbered(origin, task, tally, writer_id)  # once written: a failed write is its one line alone
        return len(rows), written


def _warn_numbered(origin: str, task: Any, tally: Any, writer_id: str) -> None:
    import warnings

    field = getattr(task, "id_field", None) or "idx"
    which = (f"none of its {tally.rows} rows has an {field!r}: they were numbered 0..{tally.rows - 1} in file order"
             if tally.numbered == tally.rows else f"{tally.numbered} of its {tally.rows} rows have no {field!r}: "
             "they were numbered by their place in the file")
    warnings.warn(f"{origin}: {which}, and the {writer_id} writer writes those numbers as their ids; give each row its "
                  f"own id in an {field!r} field (e.g. {{\"{field}\": 17, ...}}) for a submission", NumberedRowsWarning, stacklevel=3)


def stream_rows(format: str, task: Any, chunks: Iterable[Sequence[Mapping[str, Any]]], output: Path | None,
                shown: Path | None = None) -> tuple[int, list[Path]]:
    """Write ``chunks`` of prediction rows with mtcore's writer ``format`` as they come: to stdout
    (``output`` None), or to a temporary file renamed onto ``output`` once every chunk is written
    (``shown``: the path a failed write names, when ``output`` is staged elsewhere first).
    Stdout, a pipe or ``/dev/stdout`` get whole records, however the command stops
    (:class:`~mtcore.predict.records.WholeRecords`)."""
    from mtcore.outputs import AtomicText, data_stdout
    from mtcore.predict.records import WholeRecords
    from mtcore.predict.writers import sink

    if output is None:  # each chunk as it comes, whole records only (Ctrl-C cuts no line); UTF-8 as a file is
        with data_stdout() as stdout:
            stream = WholeRecords(stdout)
            out = sink(format, task, stream)
            try:
                for rows in chunks:
                    out.add(rows)
                    del rows
                    stream.flush()
                out.finish()
            finally:
                out.close()
        return out.count, []
    target = AtomicText(output)
    with _writing(shown or output):
        handle = target.open()
    out = None
    try:
        stream = WholeRecords(handle) if target.direct else handle  # a pipe or /dev/stdout: whole records too
        out = sink(format, task, stream, None if target.direct else target.path.parent)
        for rows in chunks:  # a prediction error here is its own, not the output's
            with _writing(shown or output):
                out.add(rows)
                if target.direct:
                    stream.flush()
            del rows  # not held while the next chunk is predicted
        with _writing(shown or output):
            out.finish()
            out.close()
            target.commit()
    except BaseException:
        if out is not None:
            out.close()
        target.discard()
        raise
    return out.count, [output]


def write_rows(writer: Any, format: str, writer_id: str, task: Any, rows: list[dict[str, Any]], output: Path | None,
               folder: bool = False) -> list[Path]:
    """Write one task's prediction rows at once: to stdout (``output`` None; mtcore's own writers), a
    file (mtcore's writers are atomic themselves, and write FIFOs and ``/dev/stdout``), or a plugin
    writer's file or folder (staged beside the output, moved into place:
    :func:`~mtcore.predict.writers.write_staged`; ``folder``: ``output`` was named as a folder)."""
    if output is None:
        with tempfile.TemporaryDirectory(prefix="mt-predict-") as tmp:
            written = writer(task, rows, Path(tmp) / f"predictions.{format}")
            from mtcore.outputs import data_stdout

            with data_stdout() as stdout:
                stdout.write("".join(Path(p).read_text(encoding="utf-8") for p in written))
                stdout.flush()
        return []
    with _writing(output):
        if format in STREAMED:
            return list(writer(task, rows, output) or [output])
        from mtcore.predict.writers import write_staged

        return list(write_staged(writer, writer_id, task, rows, output, folder=folder) or [output])


class TaskFolder:
    """Several tasks' prediction files for the folder ``folder``, all or none.

    Each :meth:`write` goes into a hidden ``.mt-write-*`` folder inside ``folder`` (created, with
    its missing parents, if needed); leaving the ``with`` block without an error moves every file
    into place (a file of the same name already there is replaced, and put back if a later move
    fails); an error, Ctrl-C or a failed write removes the hidden folder and the folders made, and
    the files already in ``folder`` stay as they were. mtcore's writers write
    ``<plugin>_<task>.<format>``; a plugin's writer is given the folder and names its files.
    """

    def __init__(self, folder: str | os.PathLike[str], format: str, writer: Any, writer_id: str) -> None:
        self.folder = Path(os.path.abspath(Path(folder).expanduser()))
        self.format, self.writer, self.writer_id = format, writer, writer_id
        self.written: list[tuple[Any, str, int, list[Path]]] = []  # (task, head, rows, paths), once in place
        self._staged: list[tuple[Any, str, int, list[Path]]] = []
        self._created: list[Path] = []
        self.stage: Path | None = None

    def __enter__(self) -> TaskFolder:
        from mtcore.outputs import make_parents, remove_empty

        with _writing(self.folder):
            self._created = make_parents(self.folder)
            try:
                self.stage = Path(tempfile.mkdtemp(prefix=".mt-write-", dir=self.folder))
            except BaseException:
                remove_empty(self._created)
                raise
        return self

    def __len__(self) -> int:
        """Tasks written so far."""
        return len(self._staged)

    def write(self, task: Any, head: str, rows: list[dict[str, Any]]) -> None:
        """Write one task's rows into the hidden folder."""
        assert self.stage is not None, "use TaskFolder in a with block"
        inside = self.stage / self.folder.name  # the output folder, as the writer sees it
        if self.format in STREAMED or self.writer_id == "mtcore:conll":  # mtcore's own one-file writers: a file per task
            target = inside / f"{task.id.replace(':', '_')}.{self.format}"
            with _writing(self.folder / target.name):
                paths = [Path(p) for p in self.writer(task, rows, target) or [target]]
        else:
            from mtcore.predict.writers import call_writer

            with _writing(self.folder):
                paths = [Path(p) for p in call_writer(self.writer, self.writer_id, task, rows, inside, where=self.folder.parent)]
            if inside.is_file():  # one file at the path given: no folder of tasks (each task's file would replace the last)
                from mtcore.errors import UsageError

                raise UsageError(f"the {self.writer_id} writer writes one file at the path it is given, so it cannot write several "
                                 f"tasks' predictions into the folder {self.folder}: predict one task at a time, --task "
                                 f"{task.id} --output FILE (e.g. {self.folder / ('predictions.' + self.writer_id.rpartition(':')[2])})")
        self._staged.append((task, head, len(rows), paths))

    def write_chunks(self, task: Any, head: str, chunks: Iterable[Sequence[Mapping[str, Any]]]) -> None:
        """Write one task's rows into the hidden folder a chunk at a time, as they come (mtcore's jsonl and csv)."""
        assert self.stage is not None and self.format in STREAMED, "use TaskFolder in a with block, with jsonl or csv"
        target = self.stage / self.folder.name / f"{task.id.replace(':', '_')}.{self.format}"
        count, _ = stream_rows(self.format, task, chunks, target, shown=self.folder / target.name)
        self._staged.append((task, head, count, [target]))

    def _final(self, path: Path) -> Path:
        """Where a file written into the hidden folder goes (a path outside it stays as it is)."""
        assert self.stage is not None
        try:
            return self.folder.parent / path.resolve().relative_to(self.stage.resolve())
        except ValueError:
            return path

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import shutil

        from mtcore.outputs import remove_empty

        assert self.stage is not None
        try:
            if exc_type is None:
                with _writing(self.folder):
                    self._move_in()
                self.written = [(task, head, count, [self._final(p) for p in paths]) for task, head, count, paths in self._staged]
        except BaseException:
            shutil.rmtree(self.stage, ignore_errors=True)
            remove_empty(self._created)
            raise
        shutil.rmtree(self.stage, ignore_errors=True)
        if exc_type is not None:
            remove_empty(self._created)

    def _move_in(self) -> None:
        """Move every staged file into place; on a failure undo the moves made (the replaced files come back)."""
        from mtcore.outputs import make_parents, remove_empty, share_modes

        assert self.stage is not None
        files = sorted(p for p in self.stage.rglob("*") if p.is_file() or p.is_symlink())
        backups = self.stage / ".replaced"
        done: list[tuple[Path, Path | None, list[Path]]] = []  # (target, its former file, folders made for it)
        try:
            for number, path in enumerate(files):
                target = self.folder.parent / path.relative_to(self.stage)
                made = make_parents(target.parent)
                backup = None
                if os.path.lexists(target) and not (target.is_dir() and not target.is_symlink()):
                    backups.mkdir(exist_ok=True)
                    backup = backups / str(number)
                    os.replace(target, backup)
                done.append((target, backup, made))
                share_modes(path)
                os.replace(path, target)
        except BaseException:
            for target, backup, made in reversed(done):
                with contextlib.suppress(OSError):
                    if backup is None:
                        target.unlink(missing_ok=True)
                    else:
                        os.replace(backup, target)
                    remove_empty(made)
            raise
