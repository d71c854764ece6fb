"""Loaders for the sentiment corpora's files (reached lazily: they import ``datasets``).

* :func:`load_mokoron` — RuTweetCorp's ``positive.csv`` and ``negative.csv`` (``;``-separated,
  no header, every field quoted, ``;`` and newlines inside tweets), one labelled dataset, then a
  seeded stratified train/validation/test split (:mod:`mtcore.data.splits`);
* :func:`load_rusentiment` — RuSentiment's ``label,text`` CSV files, with a seeded stratified
  validation share held out of the training file.

How a split was made (seed, proportions, row counts) is written into every split's
``Dataset.info.description`` and logged, so a run can be reproduced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.data.files import NoFileFound, files_fingerprint, find_files, source_root
from mtcore.data.sources import dataset_from_rows, label_conflict, rows_from_files, task_context
from mtcore.errors import ConfigError, DataError
from mtcore.task import Task

from mtcore.data.splits import check_proportions, describe_split, stratified_split
from mt_sentiment.tasks import MOKORON_COLUMNS

logger = logging.getLogger(__name__)

#: Bump when the row conversion changes: cached datasets are then rebuilt.
LOADER_VERSION = 1
TTYPE_LABELS = {"1": "positive", "-1": "negative"}


def _cache(cache_dir: Any) -> str | None:
    return str(cache_dir) if cache_dir else None


def _split_by_label(task: Task, full: Any, proportions: Mapping[str, float], seed: int, splits: Sequence[str]) -> dict[str, Any]:
    """Select the rows of each requested split; record how the split was made."""
    indices = stratified_split(full.with_format("arrow")["label"].to_pylist(), proportions, seed)
    record = describe_split(task.id, {k: len(v) for k, v in indices.items()}, proportions, seed)
    logger.info(record)
    out = {}
    for split in splits:
        if split in indices:
            part = full.select(indices[split])
            part.info.description = record
            out[split] = part
    return out


# ---- RuTweetCorp (mokoron) -------------------------------------------------------------------
def mokoron_row(path: str, number: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """One tweet with its ``label`` name from ``ttype``; a DataError for any other ttype."""
    ttype = str(row["ttype"]).strip()
    if ttype not in TTYPE_LABELS:
        raise DataError(f"{path} row {number}: ttype {row['ttype']!r} is not 1 (positive) or -1 (negative); "
                        f"is this a RuTweetCorp file (12 columns: {', '.join(MOKORON_COLUMNS)})?")
    return {**row, "ttype": int(ttype), "label": TTYPE_LABELS[ttype]}


def load_mokoron(
    task: Task,
    splits: Sequence[str],
    /,
    *,
    corpus_files: Mapping[str, Any],
    data_dir: str | os.PathLike[str] | None = None,
    package: str | None = None,
    seed: int = 42,
    proportions: Mapping[str, float] | None = None,
    format: str = "csv",
    sep: str = ";",
    header: Any = None,
    encoding: str = "utf-8-sig",
    cache_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """RuTweetCorp as a DatasetDict with a seeded stratified split (default 80/10/10, seed 42).

    ``corpus_files`` names the corpus files (``{"positive": "positive.csv", "negative": "negative.csv"}``)
    under ``data_dir`` (local) or ``package`` (sample); ``proportions`` maps split -> share.
    Columns: the 12 of the corpus, ``ttype`` as an int, ``label`` (``positive``/``negative``).
    """
    from datasets import DatasetDict

    if format != "csv":
        raise ConfigError(f"task {task.id!r}: RuTweetCorp files are CSV; format={format!r} is not supported")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"task {task.id!r}: source option seed must be an integer, not {seed!r}")
    shares = check_proportions(proportions or {"train": 0.8, "validation": 0.1, "test": 0.1})
    root = source_root(task, data_dir, package, "positive.csv and negative.csv")
    reader = {"sep": sep, "header": header, "names": list(MOKORON_COLUMNS), "encoding": encoding}
    with task_context(task):
        paths = [path for spec in corpus_files.values() for path in _corpus_file(root, spec, corpus_files)]
        raw = rows_from_files(paths, "csv", **reader)

        def rows() -> Iterator[tuple[str, int, dict[str, Any]]]:
            for path, number, row in raw():
                yield path, number, mokoron_row(path, number, row)

        key = files_fingerprint(paths, "mt_sentiment.mokoron", LOADER_VERSION, reader)
        full = dataset_from_rows(rows, fingerprint=key, what=", ".join(map(str, paths)), cache_dir=_cache(cache_dir))
        _check_every_file_has_rows(paths, full)
        return DatasetDict(_split_by_label(task, full, shares, seed, splits))


def _corpus_file(root: Path, spec: Any, corpus_files: Mapping[str, Any]) -> list[Path]:
    """The files of one class; one missing is named as such (find_files' "did you mean" would offer the other class's file)."""
    try:
        return find_files(root, spec)
    except NoFileFound:
        wanted = " and ".join(str(value) for value in corpus_files.values())
        present = sorted(p.name for p in root.iterdir())[:8] if root.is_dir() else []
        raise NoFileFound(f"{root}: no file matches {str(spec)!r}; RuTweetCorp needs both {wanted} (one per class), and the folder "
                          f"holds {', '.join(present) or 'nothing'}") from None


def _resolved(path: Any) -> str:
    return str(Path(path).resolve())


def _check_every_file_has_rows(paths: Sequence[Any], full: Any) -> None:
    """An empty ``negative.csv`` (a failed download) would leave one class: a classifier that learns nothing."""
    from mtcore.data.rows import FILE_COLUMN

    # Compared resolved: the cache is keyed by resolved paths, so rows cached when the folder was named
    # another way (relative, absolute, through a symlink) carry that spelling in FILE_COLUMN.
    seen = {_resolved(path) for path in full.unique(FILE_COLUMN)}
    empty = [str(path) for path in paths if _resolved(path) not in seen]
    if empty:
        raise DataError(f"{empty[0]}: the file has no rows; RuTweetCorp needs both positive.csv and negative.csv with tweets "
                        "(download it again)")


# ---- RuSentiment -----------------------------------------------------------------------------
def _numbered(rows: Any) -> Any:
    """``rows`` with ``idx``, each row's place among them (the files' own ``idx`` column, if they have one, is kept)."""
    return rows if "idx" in rows.column_names else rows.add_column("idx", list(range(rows.num_rows)))


def load_rusentiment(
    task: Task,
    splits: Sequence[str],
    /,
    *,
    files: Mapping[str, Any],
    data_dir: str | os.PathLike[str] | None = None,
    package: str | None = None,
    seed: int = 42,
    validation_share: float = 0.1,
    format: str = "csv",
    cache_dir: str | os.PathLike[str] | None = None,
    **reader_options: Any,
) -> Any:
    """RuSentiment's ``label,text`` files; ``validation`` is a seeded stratified share of ``train``.

    The files have no id column: each row gets ``idx``, its place among its file's rows (0-based, the
    header not counted; across the files a pattern matches, in order), so a prediction on
    ``validation`` joins back to its row of the training file. ``files`` maps ``train`` (and ``test``) to files under ``data_dir`` (local) or ``package``
    (sample). ``validation_share=0`` keeps the whole training file and gives no validation split.
    """
    from datasets import DatasetDict

    if not 0 <= float(validation_share) < 1:
        raise ConfigError(f"task {task.id!r}: validation_share must be in [0, 1), not {validation_share!r}")
    root = source_root(task, data_dir, package, "rusentiment_random_posts.csv and rusentiment_test.csv")
    out: dict[str, Any] = {}
    with task_context(task):
        loaded = {}
        for split in ("train", "test"):
            wanted = split in splits or (split == "train" and "validation" in splits)
            if wanted and split in files:
                paths = find_files(root, files[split])
                key = files_fingerprint(paths, "mt_sentiment.rusentiment", LOADER_VERSION, format, reader_options)
                loaded[split] = dataset_from_rows(rows_from_files(paths, format, **reader_options), fingerprint=key,
                                                  what=", ".join(map(str, paths)), cache_dir=_cache(cache_dir),
                                                  describe_conflict=label_conflict(task))
                loaded[split] = _numbered(loaded[split])
        if "train" in loaded:
            if validation_share:
                shares = {"train": 1.0 - float(validation_share), "validation": float(validation_share)}
                out.update(_split_by_label(task, loaded["train"], shares, seed, [s for s in splits if s in shares]))
            elif "train" in splits:
                out["train"] = loaded["train"]
        if "test" in loaded and "test" in splits:
            out["test"] = loaded["test"]
    return DatasetDict({split: out[split] for split in splits if split in out})
