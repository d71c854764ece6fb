"""``load_task_data``: a task's source -> raw rows -> prepared, validated rows -> token ids.

>>> data = load_task_data(task, tokenizer, source="local", data_dir="~/data/RSG/TERRa")
>>> data.splits["train"][0].keys()   # input_ids, attention_mask, [token_type_ids], labels, length, [idx]
>>> batch = data.collator([data.splits["train"][i] for i in range(8)])

Every stage is cached by ``datasets`` under a fingerprint of its input and settings (Arrow files
on disk, memory-mapped), so the second run with the same files and tokenizer reads the caches:
it neither re-reads the files nor tokenizes again. All data problems surface here, before any
training, as one-line :class:`~mtcore.errors.DataError` messages.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtcore.data.collate import Collator, is_labelled
from mtcore.data.files import EmptySplit, NoFileFound
from mtcore.errors import ConfigError, DataError, did_you_mean
from mtcore.refs import resolve
from mtcore.task import SOURCE_KINDS, SPLITS, Source, Task


@dataclass
class TaskData:
    """One task's tokenized splits and the collator that batches them."""

    task: Task
    splits: dict[str, Any]
    collator: Collator
    source: str = "sample"
    max_length: int = 0
    uses_token_type_ids: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def lengths(self, split: str) -> list[int]:
        """Real tokens per row of ``split`` (summed over choices), for length-grouped batching."""
        return self._column(split, "length")

    def batching_lengths(self, split: str) -> list[int]:
        """Token slots per row once padded within the row (``slots`` for multiple choice, else
        ``length``): what length grouping and token budgets count. With the collator's
        ``pad_to_multiple_of`` a multiple-choice row costs choices x its longest choice rounded up
        (single rows are rounded by the batcher itself)."""
        ds = self._split(split)
        if "slots" not in ds.column_names:
            return self._column(split, "length")
        slots = self._column(split, "slots")
        multiple = int(getattr(self.collator, "pad_to_multiple_of", None) or 1)
        if multiple <= 1:
            return slots
        import numpy as np

        choices = self.choice_counts(split)
        longest = -(-np.asarray(slots, dtype=np.int64) // np.maximum(choices, 1) // multiple) * multiple
        return (choices * longest).tolist()

    def choice_counts(self, split: str) -> Any:
        """Choices per row of ``split`` (an int64 numpy array) for a multiple-choice task, else
        ``None``: rows of a batch are padded to its most choices, which token budgets count.
        Read from the Arrow list lengths of ``input_ids``, with no per-row Python objects."""
        ds = self._split(split)
        if "slots" not in ds.column_names:
            return None
        import numpy as np
        import pyarrow.compute as pc

        return np.asarray(pc.list_value_length(ds.with_format("arrow")["input_ids"]), dtype=np.int64)

    def num_rows(self, split: str) -> int:
        """Rows of the tokenized split (extractive QA: windows; see :meth:`num_examples`)."""
        return self._split(split).num_rows

    def num_examples(self, split: str) -> int:
        """Examples of ``split``: its rows, or extractive QA's questions (a long context gives several windows)."""
        ds = self._split(split)
        if "example" not in ds.column_names:
            return ds.num_rows
        import pyarrow.compute as pc

        return int(pc.count_distinct(ds.with_format("arrow")["example"]).as_py())

    def rows_text(self, split: str) -> str:
        """``"12"``, or ``"12 (51 windows)"`` when extractive QA's windows outnumber its questions."""
        examples, rows = self.num_examples(split), self.num_rows(split)
        return str(rows) if examples == rows else f"{examples} ({rows} windows)"

    def is_labelled(self, split: str) -> bool:
        """Whether any row of ``split`` has a label (test splits of benchmarks usually have none)."""
        return any(is_labelled(self.task.kind, label) for label in self._column(split, "labels"))

    def label_counts(self, split: str) -> list[int]:
        """Labelled items of each class in ``split`` (class ids ``0..K-1``; classification rows or token tags; unlabelled
        ``-1`` / ``-100`` left out): what ``class_weights: balanced`` weighs by."""
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self._split(split).with_format("arrow")["labels"]
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = pc.list_flatten(column)
        counts = [0] * len(self.task.labels)
        for item in pc.value_counts(column).to_pylist():
            value = item["values"]
            if value is not None and 0 <= int(value) < len(counts):
                counts[int(value)] = int(item["counts"])
        return counts

    def _column(self, split: str, name: str) -> list[Any]:
        return self._split(split).with_format("arrow")[name].to_pylist()  # fast: no per-row Python objects

    def _split(self, split: str) -> Any:
        if split not in self.splits:
            raise DataError(f"task {self.task.id!r} has no loaded split {split!r} (loaded: {', '.join(self.splits) or 'none'})")
        return self.splits[split]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={ds.num_rows}" for name, ds in self.splits.items())
        return f"TaskData({self.task.id!r}, source={self.source!r}, {sizes})"


def _pick_source(task: Task, source: str) -> Source:
    if source in task.sources:
        return task.sources[source]
    have = ", ".join(task.sources) or "none"
    if source in SOURCE_KINDS:
        raise ConfigError(f"task {task.id!r} has no {source!r} source; it has: {have}")
    raise ConfigError(f"unknown source {source!r} for task {task.id!r}{did_you_mean(source, list(task.sources))}; "
                      f"it has: {have}")


def _accepts(function: Any, name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class RawSplits(dict):
    """``{split: raw Dataset}``; ``held_out``: the validation rows a holdout carved from train (None: none);
    ``held_out_because``: why, naming the missing or empty validation file (None: the source has no validation split);
    ``positions``: after a holdout, each carved split's rows' places among the train rows as read (0-based,
    ``{split: [place, ...]}``): the number a row without an id is given, so predictions join back to the file."""

    held_out: int | None = None
    held_out_because: str | None = None
    positions: dict[str, list[int]] | None = None


class MissingSplit(DataError):
    """The source has no such split (``split``: its name)."""

    def __init__(self, message: str, split: str) -> None:
        super().__init__(message)
        self.split = split


def _hold_out(task: Task, loaded: dict[str, Any], share: float) -> dict[str, list[int]]:
    """Carve ``validation`` out of ``loaded["train"]``: ``share`` of each class, the same rows every time;
    ``{split: its rows' places in the train rows}``."""
    from mtcore.data.splits import holdout_indices

    from mtcore.task import TaskKind

    train = loaded["train"]
    field = task.input_map.get("label", "label")
    stratify = task.kind in (TaskKind.TEXT_CLASSIFICATION, TaskKind.PAIR_CLASSIFICATION, TaskKind.MULTIPLE_CHOICE)
    labels = train.with_format("arrow")[field].to_pylist() if stratify and field in train.column_names else [None] * train.num_rows
    kept, held = holdout_indices(labels, share, stratify=stratify)
    if not held or not kept:
        if train.num_rows < 2:  # no share helps: one row cannot be both trained on and held out
            raise ConfigError(f"task {task.id!r}: a holdout needs at least 2 train rows (one to train on, one to evaluate) and "
                              f"it has {train.num_rows}; add rows, or give the task a validation file")
        raise ConfigError(f"task {task.id!r}: holdout {share:g} of its {train.num_rows} train rows leaves "
                          f"{'no validation' if not held else 'no train'} row; {'raise' if not held else 'lower'} holdout")
    loaded["validation"], loaded["train"] = train.select(held), train.select(kept)
    return {"validation": held, "train": kept}


def load_raw(task: Task, source: str = "sample", *, data_dir: str | Path | None = None, splits: Sequence[str] = ("train", "validation"),
             cache_dir: str | Path | None = None, holdout: float | None = None) -> RawSplits:
    """The raw rows of the requested splits from one of the task's sources (no preprocessing).

    A loader with a ``train_augmentation`` attribute, ``(option, function)``, adds rows to train when its
    source's ``option`` is true (HeadlineCause's ``swap_augment``): here ``function(task, train)`` runs
    instead, after any holdout, so that validation holds only real rows and no copy of one trains.

    ``holdout``: when the source has no ``validation`` split (or its declared file is missing), that
    share of the train rows becomes it (stratified by label for classification, a fixed seed: the
    same rows in every run, evaluation and prediction), and ``train`` never includes them, whichever
    splits are asked for."""
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ConfigError(f"unknown split {unknown[0]!r}{did_you_mean(unknown[0], SPLITS)}; use {', '.join(SPLITS)}")
    spec = _pick_source(task, source)
    if data_dir is not None and spec.kind != "local":
        raise ConfigError(f"data_dir is read only by local sources; task {task.id!r} source {source!r} is {spec.kind}: "
                          f"use the local source to read your files (source='local', --source local)")
    loader = resolve(spec.loader)
    options = dict(spec.options)
    if spec.kind == "local":
        if data_dir is None:
            files = options.get("files")
            wanted = f" ({', '.join(f'{split}: {pattern}' for split, pattern in files.items())})" if isinstance(files, dict) else ""
            raise DataError(f"task {task.id!r}: the local source ({spec.description}) needs data_dir=<folder with the downloaded files>{wanted}")
        options["data_dir"] = str(Path(data_dir).expanduser())
    if cache_dir is not None and _accepts(loader, "cache_dir"):
        options["cache_dir"] = str(cache_dir)
    switch, augment = getattr(loader, "train_augmentation", (None, None))  # see train_augmentation below
    augment = augment if switch and options.get(switch) is True else None
    if augment is not None:
        options[switch] = False
    carve = bool(holdout) and ("validation" in splits or "train" in splits)  # train never holds the held-out rows
    why = None
    if carve:  # validation alone: its file may be missing from the user's folder, which is what a holdout is for
        loaded = dict(loader(task, [s for s in dict.fromkeys([*splits, "train"]) if s != "validation"], **options))
        try:
            loaded.update(loader(task, ["validation"], **options))
        except (NoFileFound, EmptySplit) as exc:  # no validation file, or an empty one: the holdout is the validation split
            why = f"its file {'holds no rows' if isinstance(exc, EmptySplit) else 'is missing'}: {exc}"
    else:
        try:
            loaded = dict(loader(task, list(splits), **options))
        except (NoFileFound, EmptySplit) as exc:
            raise _with_holdout_hint(exc, task, loader, splits, options) from None
    held = carve and "validation" not in loaded and "train" in loaded
    positions = _hold_out(task, loaded, float(holdout)) if held else {}
    if augment is not None and "train" in loaded:  # after the holdout: augmented copies of validation rows never train
        loaded["train"] = augment(task, loaded["train"])
        positions.pop("train", None)  # its added rows have no place among the rows read
    missing = [split for split in splits if split not in loaded]
    if missing:
        have = ", ".join(loaded) or "none of the requested"
        hint = (" (or set the task's holdout, e.g. 0.1: that share of train becomes validation)"
                if missing[0] == "validation" and "train" in loaded and not task.evaluate_only else "")
        raise MissingSplit(f"task {task.id!r}: source {source!r} ({spec.description}) has no {missing[0]!r} split "
                           f"(it has {have}); request only splits it has{hint}", missing[0])
    result = RawSplits((split, loaded[split]) for split in splits)
    if held:
        result.held_out = loaded["validation"].num_rows
        result.held_out_because = why
        result.positions = {split: positions[split] for split in splits if split in positions}
    return result


def _with_holdout_hint(error: DataError, task: Task, loader: Any, splits: Sequence[str], options: dict[str, Any]) -> DataError:
    """``error`` (a missing file, or an empty one), plus the holdout hint when it is the validation split's (train reads)."""
    if "validation" not in splits or "train" not in splits or task.evaluate_only:
        return error
    if isinstance(error, EmptySplit) and error.split != "validation":
        return error
    try:
        loader(task, [s for s in splits if s != "validation"], **options)
    except DataError:
        return error
    if isinstance(error, EmptySplit):
        return EmptySplit(f"{error}; fill it, or hold out train rows instead: the task's holdout, e.g. holdout: 0.1 (that share of "
                          "train becomes validation)", error.split)
    return NoFileFound(f"{error} (the validation split's file; with only a training file, set the task's holdout, e.g. "
                       f"holdout: 0.1: that share of train becomes validation)")


def load_task_data(task: Task, tokenizer: Any, *, source: str = "sample", data_dir: str | Path | None = None,
                   splits: Sequence[str] = ("train", "validation"), max_length: int | None = None, encoder_config: Any = None,
                   pad_to_multiple_of: int | None = None, cache_dir: str | Path | None = None,
                   padding_free: bool = False, holdout: float | None = None) -> TaskData:
    """Load, prepare, validate and tokenize the ``splits`` of ``task`` from its ``source``.

    ``source`` names one of the task's sources (``sample``, ``local``, ``hub``); ``data_dir`` is
    the folder of the downloaded files for ``local``. ``max_length`` overrides the task's;
    ``encoder_config`` (the encoder's config) decides whether ``token_type_ids`` are kept.
    ``cache_dir`` defaults to the ``datasets`` cache. Token-classification rows that lose words to
    ``max_length`` give one :class:`~mtcore.data.tokenize.CutWordsWarning` per split (also when
    the tokenized split comes from the cache). ``holdout``: see :func:`load_raw`.
    """
    from mtcore.data.cut_answers import warn_cut_answers
    from mtcore.data.prepare import prepare_split
    from mtcore.data.spans import check_span_counts, pools_spans, warn_cut_spans
    from mtcore.data.tokenize import resolve_max_length, tokenize_split, tokenizer_fingerprint, uses_token_type_ids, warn_cut_words

    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        raise ConfigError(f"the tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no pad token; set tokenizer.pad_token first")
    raw = load_raw(task, source, data_dir=data_dir, splits=splits, cache_dir=cache_dir, holdout=holdout)
    held_out = {"rows": raw.held_out, "because": raw.held_out_because} if raw.held_out else None
    description = task.sources[source].description or source
    length = resolve_max_length(task, tokenizer, max_length, encoder_config)
    segments = uses_token_type_ids(encoder_config, tokenizer)
    tokenizer_key = tokenizer_fingerprint(tokenizer)
    tokenized = {}
    for split in list(raw):
        # each stage's Arrow file is memory-mapped, and the pages a map reads stay in the process's RSS while the
        # dataset lives: let go of the raw and prepared splits as soon as the next stage is written
        prepared = prepare_split(raw.pop(split), task, split, origin=f"{description} {split}")
        tokenized[split] = tokenize_split(prepared, task, tokenizer, max_length=length, use_token_type_ids=segments,
                                          split=split, tokenizer_key=tokenizer_key)
        del prepared
        where = f"{split} split" + (f" ({description})" if description.startswith("--input") else "")
        warn_cut_words(tokenized[split], task, split, length, limit=getattr(tokenizer, "model_max_length", None), where=where)
        warn_cut_answers(tokenized[split], task, split, length, where=where)
        check_span_counts(task, tokenized[split], where)
        if pools_spans(task):
            warn_cut_spans(tokenized[split], task.id, where, length)
    collator = Collator(pad_id, task.kind, pad_to_multiple_of=pad_to_multiple_of, uses_token_type_ids=segments, padding_free=padding_free)
    if task.kind.value == "masked_lm":  # the training sampler draws new masks with it (mtcore.data.masking)
        from mtcore.data.masking import Masker

        collator.masker = Masker(tokenizer, task.id, task.mask_probability, task.mask_whole_words)
    return TaskData(task=task, splits=tokenized, collator=collator, source=source, max_length=length,
                    uses_token_type_ids=segments, info={"data_dir": str(data_dir) if data_dir is not None else None, "held_out": held_out})
