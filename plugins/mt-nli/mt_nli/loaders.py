"""Loaders for the NLI tasks' official files (reached lazily: they import ``datasets``).

* :func:`load_xnli_official` — XNLI's two layouts: ``XNLI-1.0/xnli.{dev,test}.tsv`` (every
  language in one file, ``sentence1``/``sentence2``/``gold_label``/``pairID``) and
  ``XNLI-MT-1.0/multinli/multinli.train.<lang>.tsv`` (``premise``/``hypo``/``label``, with the
  spelling ``contradictory``). Both are read with quoting disabled (the texts hold stray double
  quotes) and renamed to common columns: ``premise``, ``hypothesis``, ``label``, ``idx``.
* :func:`load_headline_cause` — HeadlineCause through mtcore's hub / files / sample loaders, with
  the optional left/right swap augmentation of the training split.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.data.cache import fingerprint
from mtcore.data.files import files_fingerprint, find_files, source_root
from mtcore.data.readers import iter_rows
from mtcore.data.sources import dataset_from_rows, load_files, load_hub, load_sample, task_context
from mtcore.errors import ConfigError, DataError
from mtcore.task import Task

from mt_nli.augment import swap_headlines

#: Bump when the row conversion changes: cached datasets are then rebuilt.
XNLI_LOADER_VERSION = 1
SWAP_VERSION = 1
EVAL_FIELDS = ("sentence1", "sentence2", "gold_label")
TRAIN_FIELDS = ("premise", "hypo", "label")


def xnli_row(path: Path, number: int, row: Mapping[str, Any], language: str) -> dict[str, Any] | None:
    """One raw XNLI row in common columns, ``None`` for another language; a DataError for a row of neither layout."""
    if "hypo" in row or ("premise" in row and "sentence1" not in row):
        missing = [f for f in TRAIN_FIELDS if f not in row]
        if missing:
            raise DataError(f"{path} row {number}: no field {missing[0]!r}; the XNLI-MT train file has columns premise, hypo, label")
        return {"premise": row["premise"], "hypothesis": row["hypo"], "label": row["label"]}
    if "sentence1" in row or "gold_label" in row:
        missing = [f for f in ("language", *EVAL_FIELDS) if f not in row]
        if missing:
            raise DataError(f"{path} row {number}: no field {missing[0]!r}; XNLI-1.0 dev/test files have columns language, gold_label, sentence1, sentence2, pairID")
        if row["language"] != language:
            return None
        pair_id = row.get("pairID")
        idx = int(pair_id) if isinstance(pair_id, str) and pair_id.isdigit() else pair_id
        return {"premise": row["sentence1"], "hypothesis": row["sentence2"], "label": row["gold_label"], "idx": idx}
    raise DataError(f"{path} row {number}: not an XNLI row (columns: {', '.join(map(str, row))}); "
                    "expected premise, hypo, label (XNLI-MT train) or language, sentence1, sentence2, gold_label (XNLI-1.0)")


def _xnli_rows(paths: Sequence[Path], language: str, reader_options: Mapping[str, Any]):
    def rows() -> Iterator[tuple[str, int, dict[str, Any]]]:
        for path in paths:
            for number, row in iter_rows(path, "tsv", **reader_options):
                converted = xnli_row(path, number, row, language)
                if converted is not None:
                    yield str(path), number, converted

    return rows


def load_xnli_official(
    task: Task,
    splits: Sequence[str],
    /,
    *,
    files: Mapping[str, Any],
    data_dir: str | os.PathLike[str] | None = None,
    package: str | None = None,
    language: str = "ru",
    quoting: str = "none",
    encoding: str = "utf-8-sig",
    cache_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """Read XNLI's official TSV files for ``splits`` (rows of ``language`` only) into a DatasetDict.

    ``files`` maps split -> path (or glob/list) under ``data_dir`` (local) or inside ``package``
    (the shipped sample). Columns: ``premise``, ``hypothesis``, ``label`` (as spelled in the file;
    the task maps ``contradictory``), ``idx`` (``pairID``, dev/test only).
    """
    from datasets import DatasetDict

    root = source_root(task, data_dir, package, "XNLI-1.0/ and XNLI-MT-1.0/")
    reader_options = {"quoting": quoting, "encoding": encoding}
    out = {}
    with task_context(task):
        for split in splits:
            if split not in files:
                continue
            paths = find_files(root, files[split])
            what = ", ".join(str(p) for p in paths)
            key = files_fingerprint(paths, "mt_nli.xnli", XNLI_LOADER_VERSION, language, reader_options)
            try:
                out[split] = dataset_from_rows(_xnli_rows(paths, language, reader_options), fingerprint=key, what=what,
                                               cache_dir=str(cache_dir) if cache_dir else None)
            except DataError as exc:
                if str(exc) == f"{what}: no rows":
                    raise DataError(f"{what}: no rows with language == {language!r} for the {split} split") from None
                raise
    return DatasetDict(out)


_BASE_LOADERS = {"hub": load_hub, "local": load_files, "sample": load_sample}


def load_headline_cause(task: Task, splits: Sequence[str], /, *, via: str, swap_augment: bool = False, **options: Any) -> Any:
    """HeadlineCause through mtcore's ``via`` loader (``hub``, ``local`` or ``sample``).

    With ``swap_augment=True`` the training split gets every pair a second time with its
    headlines swapped and its label mirrored (:func:`mt_nli.augment.swap_headlines`); the
    evaluation splits are never augmented.
    """
    if via not in _BASE_LOADERS:
        raise ConfigError(f"task {task.id!r}: source option via={via!r} is not one of {', '.join(_BASE_LOADERS)}")
    if not isinstance(swap_augment, bool):
        raise ConfigError(f"task {task.id!r}: source option swap_augment must be true or false, not {swap_augment!r}")
    loaded = _BASE_LOADERS[via](task, splits, **options)
    if swap_augment and "train" in loaded:
        loaded["train"] = add_swapped_pairs(task, loaded["train"])
    return loaded


def add_swapped_pairs(task: Task, train: Any) -> Any:
    """``train`` and after it every pair again with its headlines swapped (labels mirrored)."""
    from datasets import concatenate_datasets

    scheme = "full" if len(task.labels) == 7 else "simple"
    key = fingerprint("mt_nli.swap_headlines", SWAP_VERSION, train._fingerprint, scheme, swap_headlines)  # by its code too
    swapped = train.map(swap_headlines, fn_kwargs={"scheme": scheme}, desc=f"Swapping {task.id} headlines", new_fingerprint=key)
    if swapped.features != train.features:
        swapped = swapped.cast(train.features)
    return concatenate_datasets([train, swapped])


# mtcore's load_raw adds the swapped pairs itself, after a holdout has carved validation out of the real pairs
# (so no swapped copy, and no mirror of a validation pair, is evaluated or trained on beside it).
load_headline_cause.train_augmentation = ("swap_augment", add_swapped_pairs)  # type: ignore[attr-defined]
