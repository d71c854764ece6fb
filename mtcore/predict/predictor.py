"""``predict(model, task, inputs)``: labels in the dataset's own form and class probabilities.

>>> model = MultitaskModel.from_pretrained("runs/demo/model")
>>> out = predict(model, "rsg:terra", [{"premise": "...", "hypothesis": "..."}])
>>> out.labels, out.probabilities          # ['entailment'], [[0.83, 0.17]]

Inputs hold the task's raw fields; the task's preprocessing, renaming and tokenization run
exactly as in training (same code). Rows are batched longest first with dynamic padding and the
results are put back in input order. Nothing needs labels.

What each kind predicts (``label`` / ``probabilities`` per row):

* classification: the stored label value (``task.label_values``; else the label name) / softmax
  over the classes, in ``task.labels`` order;
* multiple choice: the index of the chosen choice / softmax over the choices;
* multi-label: the list of stored label values whose probability exceeds 0.5 / sigmoid per label;
* regression: the predicted value / ``None``;
* token classification: one tag per word (``None`` for words cut by truncation) / per-word
  softmax lists (kept in Python results, left out of prediction files);
* extractive QA: the answer, a span of the context (:func:`mtcore.data.answers.best_span`) /
  ``None``; each row also carries ``answer_start`` (its first character in the context) and
  ``score`` (the probability of its start times that of its end).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtcore.errors import DataError, ModelFileError, UsageError
from mtcore.task import Task, TaskKind

DEFAULT_BATCH_SIZE = 32


@dataclass
class Predictions:
    """Per-row predictions of one task, in input order."""

    task: Task
    head: str
    labels: list[Any]
    probabilities: list[Any] | None
    class_ids: list[Any]
    idx: list[Any]
    logits: list[np.ndarray] = field(repr=False, default_factory=list)
    #: More per-row fields for prediction files (extractive QA: ``answer_start``, ``score``).
    extras: list[dict[str, Any]] | None = None
    #: Whether ``idx`` was numbered from the first row (the rows gave no id).
    numbered: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self) -> list[dict[str, Any]]:
        """``[{"idx", "label", "probabilities"}]`` as prediction writers take them (token
        classification: a label and a probability list per word, None for words cut by truncation)."""
        return [{"idx": self.idx[i], "label": self.labels[i],
                 "probabilities": self.probabilities[i] if self.probabilities is not None else None,
                 **(self.extras[i] if self.extras is not None else {})}
                for i in range(len(self))]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """No ``datasets`` progress bars for the in-memory preparation of prediction inputs (kept in a terminal:
    a large input takes a while)."""
    import os
    import sys

    from datasets.utils.tqdm import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if sys.stderr.isatty() or are_progress_bars_disabled() or os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS") is not None:
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def progress_over(items: Any, total: int, description: str, *, show: bool = True) -> Any:
    """``items`` with a progress bar on stderr when it is a terminal and there are over 10 of them (prediction and
    evaluation batches: minutes on a CPU, silent otherwise); the items themselves elsewhere."""
    import sys

    if not show or total <= 10 or not sys.stderr.isatty():
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=description, unit="batch", leave=False)


def resolve_device(device: Any = None) -> Any:
    """``device`` as a torch device; ``None`` or ``"auto"`` means the GPU when there is one.

    An unknown or unavailable device is a one-line :class:`~mtcore.errors.UsageError`.
    """
    import torch

    from mtcore.predict.devices import check_device

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


def predict(model: Any, task: str | Task, inputs: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, device: Any = None,
            max_length: int | None = None, tokenizer: Any = None, input_format: str = "auto", n_best: int = 0) -> Predictions:
    """Predict ``task`` for ``inputs`` with ``model`` (a :class:`~mtcore.model.MultitaskModel`).

    :param task: a head id or unambiguous bare name, a registered task another head serves, or
        a :class:`~mtcore.task.Task` (see :func:`mtcore.predict.tasks.prediction_task`).
    :param inputs: a list of dicts (or one dict) of raw fields, a ``datasets.Dataset``, or a
        path to a JSON Lines / CSV / JSON / Parquet file (``"-"``: standard input).
    :param device: where to run; ``None`` keeps the model where it is. The model is moved there.
    :param max_length: override the task's ``max_length`` (default: what it was trained with).
    :param tokenizer: override ``model.tokenizer``.
    :param n_best: extractive QA: also each question's ``n_best`` best answers (extras ``n_best``).
    """
    from mtcore.predict.inputs import raw_dataset
    from mtcore.predict.tasks import prediction_task

    head_id, spec = prediction_task(model, task)
    with quiet_datasets():
        raw = raw_dataset(inputs, spec, input_format)
    return predict_raw(model, head_id, spec, raw, batch_size=batch_size, device=device, max_length=max_length, tokenizer=tokenizer,
                       n_best=n_best)


def check_predictable(task: Task) -> None:
    """A masked_lm task predicts nothing (a one-line UsageError)."""
    if task.kind is TaskKind.MASKED_LM:
        raise UsageError(f"task {task.id!r} is a masked_lm task: it trains the encoder for the other tasks and predicts nothing; "
                         "mt evaluate scores it (mlm_accuracy, perplexity)")


def check_n_best(n_best: Any, task: Task) -> None:
    """``n_best`` is a count >= 0, and above 0 only for an extractive-QA task (a one-line UsageError otherwise)."""
    from mtcore.errors import UsageError

    if isinstance(n_best, bool) or not isinstance(n_best, int) or n_best < 0:
        raise UsageError(f"n_best: a number of answers >= 0 (0: none listed), not {n_best!r}")
    if n_best and task.kind is not TaskKind.EXTRACTIVE_QA:
        raise UsageError(f"n_best lists answers of extractive QA tasks; {task.id} is a {task.kind} task: leave it out")


def predict_raw(model: Any, head_id: str, task: Task, raw: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, device: Any = None,
                max_length: int | None = None, tokenizer: Any = None, origin: str = "input", first_row: int = 0,
                n_best: int = 0, row_numbers: Sequence[int] | None = None) -> Predictions:
    """Prepare, tokenize and predict a raw ``Dataset`` of ``task`` rows with head ``head_id`` (rows without an id
    are numbered from ``first_row``, or given ``row_numbers[i]``, one per row: a holdout's rows their places in
    the train rows; ``n_best``: see :func:`predict`)."""
    check_n_best(n_best, task)
    check_predictable(task)
    from mtcore.data.collate import Collator
    from mtcore.data.prepare import prepare_split
    from mtcore.data.spans import check_read_counts, check_span_counts, pools_spans, warn_cut_spans
    from mtcore.data.tokenize import resolve_max_length, tokenize_split, uses_token_type_ids, warn_cut_words

    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ModelFileError("the model has no tokenizer (none was given to it or saved with it); pass tokenizer=, or build or "
                             "save the model with its tokenizer")
    if batch_size < 1:
        from mtcore.errors import ConfigError

        raise ConfigError(f"batch size {batch_size} must be at least 1")
    with quiet_datasets():
        prepared = prepare_split(raw, task, "test", origin=origin)
        length = resolve_max_length(task, tokenizer, max_length, model.encoder.config)
        segments = uses_token_type_ids(model.encoder.config, tokenizer)
        tokenized = tokenize_split(prepared, task, tokenizer, max_length=length, use_token_type_ids=segments, split="predict")
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        warn_cut_words(tokenized, task, "predict", length, limit=getattr(tokenizer, "model_max_length", None),
                       outcome="their predicted label is null", where=origin)
    check_span_counts(task, tokenized, origin)
    if head_id != task.id:  # --head: another task's head reads these rows
        check_read_counts(task.id, tokenized, origin, f"the head of {head_id!r}", model.tasks.get(head_id, {}).get("head_options"))
    if pools_spans(task):
        warn_cut_spans(tokenized, task.id, origin, length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    collator = Collator(pad_id, task.kind, uses_token_type_ids=segments)
    examples = prepared if task.kind is TaskKind.EXTRACTIVE_QA else tokenized  # QA: a row per window, an idx per example
    idx = examples.with_format("arrow")["idx"].to_pylist() if "idx" in examples.column_names else [None] * examples.num_rows
    given = next(((i, value) for i, value in enumerate(idx) if value is not None), None)
    missing = next((i for i, value in enumerate(idx) if value is None), None)
    if given is not None and missing is not None:  # numbering the others could repeat a real idx
        from mtcore.data.rows import FILE_COLUMN, ROW_COLUMN

        def where(i: int) -> str:  # the file and row when the rows came from a file (the raw rows keep them)
            located = raw if getattr(raw, "num_rows", None) == examples.num_rows else None
            if located is not None and FILE_COLUMN in located.column_names and ROW_COLUMN in located.column_names:
                return f"{located[i][FILE_COLUMN]} row {located[i][ROW_COLUMN]}"
            return f"inputs row {i + 1}"

        raise DataError(f"{where(missing)} has no idx while {where(given[0])} has {given[1]!r}; give every row an "
                        "idx, or none (rows are then numbered from 0)")
    numbered = given is None
    if row_numbers is not None and len(row_numbers) != len(idx):
        raise ValueError(f"row_numbers has {len(row_numbers)} numbers for {len(idx)} rows")
    numbers = row_numbers if row_numbers is not None else range(first_row, first_row + len(idx))
    idx = [number if value is None else value for number, value in zip(numbers, idx)]
    logits = run_batches(model, head_id, tokenized, collator, task.kind, batch_size, device)
    words = None
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:  # each word's first sub-token, as tokenizing found it (and cached it)
        from mtcore.data.tokenize import FIRST_TOKEN_COLUMN

        words = tokenized.with_format("arrow")[FIRST_TOKEN_COLUMN].to_pylist()
    if task.kind is TaskKind.EXTRACTIVE_QA:
        from mtcore.data.answers import max_answer_tokens
        from mtcore.data.cut_answers import warn_cut_contexts
        from mtcore.data.qa_decoding import answers_from_logits

        warn_cut_contexts(tokenized, task, length, origin)

        columns = [c for c in ("offsets", "context", "example", "candidates") if c in tokenized.column_names]
        labels, extras = answers_from_logits(logits, tokenized.select_columns(columns), max_answer_tokens(task), task.no_answer,
                                             task.null_threshold, n_best)
        return Predictions(task=task, head=head_id, labels=labels, probabilities=None, class_ids=[e["answer_start"] for e in extras],
                           idx=idx, logits=logits, extras=extras, numbered=numbered)
    predictions = from_logits(task, head_id, logits, idx, words)
    predictions.numbered = numbered
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:  # each tag beside its word, in files too (the CoNLL writer needs them)
        predictions.extras = [{"tokens": list(tokens)} for tokens in prepared["tokens"]]
    return predictions


def batch_order(dataset: Any, kind: TaskKind, batch_size: int) -> list[list[int]]:
    """Row indices in batches: longest first (less padding); multiple-choice rows grouped by choice count."""
    lengths = np.asarray(dataset.with_format("arrow")["length"].to_numpy(), dtype=np.int64)  # one Arrow read, not a row at a time
    if kind is TaskKind.MULTIPLE_CHOICE:
        groups = np.asarray([len(ids) for ids in dataset["input_ids"]], dtype=np.int64)
        order = np.lexsort((-lengths, groups))
    else:
        groups = np.zeros(len(lengths), dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
    batches: list[list[int]] = []
    current: list[int] = []
    for row in order.tolist():
        if current and (len(current) == batch_size or groups[row] != groups[current[0]]):
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


def run_batches(model: Any, head_id: str, dataset: Any, collator: Any, kind: TaskKind, batch_size: int, device: Any = None
                ) -> list[np.ndarray]:
    """Each row's logits (float32, on the CPU), in row order."""
    import torch

    from mtcore.sampling.protocol import fetch_rows

    if device is not None:
        model.to(resolve_device(device))
    target = next(model.parameters()).device
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids", "span_tokens") if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    out: list[np.ndarray | None] = [None] * dataset.num_rows
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            order = batch_order(dataset, kind, batch_size)
            for indices in progress_over(order, len(order), "Predicting"):
                batch = collator(fetch_rows(rows, indices))
                batch.pop("labels", None)
                real_tokens = batch["attention_mask"].sum(-1).tolist()
                batch.to(target)
                logits = model(head_id, **batch).logits.float().cpu().numpy()
                for j, row in enumerate(indices):
                    value = logits[j]
                    if kind in (TaskKind.TOKEN_CLASSIFICATION, TaskKind.EXTRACTIVE_QA):
                        value = value[: int(real_tokens[j])]
                    out[row] = value
    finally:
        model.train(was_training)
    return [value for value in out if value is not None]


def _softmax(values: np.ndarray) -> np.ndarray:
    import torch

    return torch.softmax(torch.as_tensor(values, dtype=torch.float32), dim=-1).numpy()


def _sigmoid(values: np.ndarray) -> np.ndarray:
    import torch

    return torch.sigmoid(torch.as_tensor(values, dtype=torch.float32)).numpy()


def _token_row(task: Task, logits: np.ndarray, first_tokens: list[int]) -> tuple[list, list, list]:
    """A row's label, probabilities and class id per word, read at each word's first sub-token (None: it has none)."""
    n_words = len(first_tokens)
    labels: list[Any] = [None] * n_words
    probs: list[Any] = [None] * n_words
    ids: list[Any] = [None] * n_words
    words = [word for word, position in enumerate(first_tokens) if 0 <= position < len(logits)]
    if words:  # the words' rows at once (a per-word argmax and float list took as long as the model on CPU)
        chosen = np.asarray(logits)[[first_tokens[word] for word in words]]
        for word, class_id, row in zip(words, chosen.argmax(-1).tolist(), _softmax(chosen).tolist()):
            ids[word], labels[word], probs[word] = class_id, task.label_value(class_id), row
    return labels, probs, ids


def from_logits(task: Task, head_id: str, logits: list[np.ndarray], idx: list[Any],
                words: list[list[int]] | None = None) -> Predictions:
    """Turn per-row logits into :class:`Predictions` (see the module docstring for each kind)."""
    kind = task.kind
    labels: list[Any] = []
    probabilities: list[Any] | None = []
    class_ids: list[Any] = []
    for i, row in enumerate(logits):
        if kind is TaskKind.REGRESSION:
            value = float(row.reshape(-1)[0])
            labels.append(value)
            class_ids.append(value)
        elif kind is TaskKind.MULTI_LABEL:
            probs = _sigmoid(row)
            chosen = [int(j) for j in np.flatnonzero(row > 0)]
            class_ids.append(chosen)
            labels.append([task.label_value(j) for j in chosen])
            probabilities.append([float(p) for p in probs])
        elif kind is TaskKind.TOKEN_CLASSIFICATION:
            assert words is not None, "token classification needs each row's words' first sub-tokens"
            row_labels, row_probs, row_ids = _token_row(task, row, words[i])
            labels.append(row_labels)
            probabilities.append(row_probs)
            class_ids.append(row_ids)
        else:
            probs = _softmax(row)
            class_id = int(np.argmax(row))
            class_ids.append(class_id)
            labels.append(task.label_value(class_id))
            probabilities.append([float(p) for p in probs])
    if kind is TaskKind.REGRESSION:
        probabilities = None
    return Predictions(task=task, head=head_id, labels=labels, probabilities=probabilities, class_ids=class_ids, idx=idx, logits=logits)
