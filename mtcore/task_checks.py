"""The checks a :class:`~mtcore.task.Task` runs when it is made: every field a plugin author or a YAML task can get
wrong, refused with one line naming the task, the field and the fix (a :class:`~mtcore.errors.ConfigError`).

They also put a few fields into canonical form (``kind`` to :class:`~mtcore.task.TaskKind`, ``labels`` to a tuple
of strings, ``preprocess`` to a tuple), which is why they write through ``object.__setattr__``: a Task is frozen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mtcore.errors import ConfigError, did_you_mean
from mtcore.source import Source, check_source

if TYPE_CHECKING:
    from mtcore.task import Task


#: Characters a task name may not hold.
NAME_SEPARATORS = (":", ".", "/", "\\")


def check_task(task: Task) -> None:
    """Validate and normalise ``task`` in place (called by ``Task.__post_init__``)."""
    from mtcore.task import INPUT_COLUMNS, TaskKind

    kind = task.kind
    if not isinstance(kind, TaskKind):
        try:
            kind = TaskKind(kind)
        except ValueError:
            raise ConfigError(
                f"task {task.name!r}: kind {kind!r} is not valid{did_you_mean(str(kind), [k.value for k in TaskKind])}; "
                f"choose one of: {', '.join(k.value for k in TaskKind)}"
            ) from None
        object.__setattr__(task, "kind", kind)
    if not isinstance(task.name, str) or not task.name or any(c in task.name for c in NAME_SEPARATORS):
        # ':' parts plugin and name; '.' would split a torch module's name; '/' and '\\' make folders of prediction files
        example = "".join("-" if c in NAME_SEPARATORS else c for c in task.name) if isinstance(task.name, str) and task.name else "my-task"
        raise ConfigError(f"task name {task.name!r} must be a non-empty string with none of {', '.join(map(repr, NAME_SEPARATORS))} "
                          f"(e.g. {example!r})")
    _check_text_fields(task)
    if isinstance(task.labels, str):
        raise ConfigError(f"task {task.name!r}: labels must be a list of label names, not the string {task.labels!r} "
                          f"(write labels=({', '.join(repr(x) for x in task.labels.replace(',', ' ').split()[:3])}, ...))")
    if task.label_values is None and any(not isinstance(x, str) for x in task.labels):
        object.__setattr__(task, "label_values", tuple(task.labels))  # labels written as numbers or booleans are their stored form
    object.__setattr__(task, "labels", tuple(str(x) for x in task.labels))
    if len(set(task.labels)) != len(task.labels):
        dupes = sorted({x for x in task.labels if task.labels.count(x) > 1})
        raise ConfigError(f"task {task.name!r}: labels has duplicates ({', '.join(map(repr, dupes))}); each label name must be unique")
    for alias, target in dict(task.label_aliases).items():
        if task.labels and str(target) not in task.labels:
            raise ConfigError(f"task {task.name!r}: label_aliases maps {alias!r} to {target!r}, which is not one of the labels "
                              f"{', '.join(map(repr, task.labels))}{did_you_mean(str(target), task.labels, n=1)}")
    for column in task.inputs:
        if column not in INPUT_COLUMNS:
            raise ConfigError(f"task {task.name!r}: inputs maps unknown column {column!r}{did_you_mean(column, INPUT_COLUMNS, n=1)}; "
                              f"columns are: {', '.join(INPUT_COLUMNS)}")
    if "idx" in task.inputs:  # the ids' field, spelled as a rename: what id_field says
        field = task.inputs["idx"]
        if task.id_field not in (None, "idx", field):
            raise ConfigError(f"task {task.name!r}: inputs maps idx to {field!r} and id_field is {task.id_field!r}; give the ids' field "
                              "once, as id_field")
        object.__setattr__(task, "id_field", field)
        object.__setattr__(task, "inputs", {k: v for k, v in task.inputs.items() if k != "idx"})
    if task.label_values is not None:
        object.__setattr__(task, "label_values", tuple(task.label_values))
        if len(task.label_values) != len(task.labels):
            raise ConfigError(f"task {task.name!r}: label_values has {len(task.label_values)} entries, labels has {len(task.labels)}")
    if kind in (TaskKind.TEXT_CLASSIFICATION, TaskKind.PAIR_CLASSIFICATION, TaskKind.MULTI_LABEL, TaskKind.TOKEN_CLASSIFICATION):
        if len(task.labels) < 2 and kind is not TaskKind.MULTI_LABEL:
            raise ConfigError(f"task {task.name!r} ({kind}) needs at least two label names in 'labels'")
        if kind is TaskKind.MULTI_LABEL and not task.labels:
            raise ConfigError(f"task {task.name!r} (multi_label) needs its label names in 'labels'")
    if isinstance(task.preprocess, (str,)) or callable(task.preprocess):
        object.__setattr__(task, "preprocess", (task.preprocess,))
    else:
        object.__setattr__(task, "preprocess", tuple(task.preprocess))
    if kind is TaskKind.MASKED_LM:
        _check_masked_lm(task)
    elif task.mask_probability is not None or task.mask_whole_words:
        option = "mask_probability (the share of tokens masked)" if task.mask_probability is not None else "mask_whole_words"
        raise ConfigError(f"task {task.name!r}: {option} is for masked_lm tasks; remove it from a {kind.value} task")
    if kind is TaskKind.EXTRACTIVE_QA and task.labels:
        raise ConfigError(f"task {task.name!r}: extractive_qa tasks take no labels (an answer is a span of the context); "
                          "remove 'labels'")
    if not isinstance(task.no_answer, bool):
        raise ConfigError(f"task {task.name!r}: no_answer must be true or false, not {task.no_answer!r}")
    if task.no_answer and kind is not TaskKind.EXTRACTIVE_QA:
        raise ConfigError(f"task {task.name!r}: no_answer (questions the context does not answer, as in SQuAD 2.0) is for "
                          f"extractive_qa tasks; remove it from a {kind.value} task")
    if isinstance(task.null_threshold, bool) or not isinstance(task.null_threshold, (int, float)) or task.null_threshold != task.null_threshold \
            or abs(task.null_threshold) == float("inf"):
        raise ConfigError(f"task {task.name!r}: null_threshold (how much the \"no answer\" score must beat the best span's) must "
                          f"be a finite number, got {task.null_threshold!r}")
    if task.null_threshold and kind is not TaskKind.EXTRACTIVE_QA:
        raise ConfigError(f"task {task.name!r}: null_threshold (when to answer \"no answer\") is for extractive_qa tasks "
                          f"with no_answer; remove it from a {kind.value} task")
    if task.null_threshold and not task.no_answer:
        raise ConfigError(f"task {task.name!r}: null_threshold applies to questions without an answer; set no_answer: true "
                          "too, or remove null_threshold")
    object.__setattr__(task, "null_threshold", float(task.null_threshold))
    if "candidates" in task.inputs and kind is not TaskKind.EXTRACTIVE_QA:
        raise ConfigError(f"task {task.name!r}: inputs maps 'candidates' (the answer's possible texts), which only extractive_qa "
                          f"tasks read; remove it from a {kind.value} task")
    _check_spans(task, kind)
    if kind is TaskKind.EXTRACTIVE_QA and task.truncation != "longest_first":
        raise ConfigError(f"task {task.name!r}: extractive_qa cuts only the context, into windows (stride); remove "
                          f"truncation {task.truncation!r}")
    if isinstance(task.stride, bool) or not isinstance(task.stride, int) or task.stride < 0:
        raise ConfigError(f"task {task.name!r}: stride (tokens two windows of a long extractive-QA context share) must be an "
                          f"integer >= 0, got {task.stride!r}")
    _check_settings(task)
    _check_formats(task.name, task.sources)
    if task.metrics is not None:
        object.__setattr__(task, "metrics", tuple(task.metrics))
    if task.main_metric is not None and task.main_metric not in task.all_metrics:
        error = ConfigError(f"task {task.name!r}: main_metric {task.main_metric!r} is not among its metrics "
                            f"{list(task.all_metrics)}{_near_metric(str(task.main_metric), task.all_metrics)}; "
                            "set main_metric to one of them, or add it to metrics")
        error.field = "main_metric"  # type: ignore[attr-defined]  # the task field at fault: a config names its key
        raise error


#: What a masked_lm task may map: its texts (and the ids' field).
MASKED_LM_COLUMNS = ("text", "text_pair")


def _check_masked_lm(task: Task) -> None:
    """A masked_lm task's targets are its own tokens: no labels, nothing but texts to read."""
    if task.labels or task.label_values or task.label_aliases:
        raise ConfigError(f"task {task.name!r}: masked_lm tasks take no labels (the masked tokens are the targets); remove "
                          "'labels' (and label_values, label_aliases)")
    p = task.mask_probability
    if isinstance(p, str):  # YAML reads 2e-1 as text
        try:
            p = float(p)
            object.__setattr__(task, "mask_probability", p)
        except ValueError:
            pass
    if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 1):
        raise ConfigError(f"task {task.name!r}: mask_probability (the share of tokens masked) must be a number between 0 and 1 "
                          f"(BERT's 0.15), got {p!r}")
    if not isinstance(task.mask_whole_words, bool):
        raise ConfigError(f"task {task.name!r}: mask_whole_words must be true or false, not {task.mask_whole_words!r}")
    for column in task.inputs:
        if column not in MASKED_LM_COLUMNS:
            raise ConfigError(f"task {task.name!r}: inputs maps {column!r}, and a masked_lm task reads only its texts "
                              f"({', '.join(MASKED_LM_COLUMNS)}); remove it")


#: Kinds whose rows may carry ``spans`` (one vector per text): what span pooling reads.
SPAN_KINDS = ("text_classification", "pair_classification", "regression", "multi_label")


def _check_spans(task: Task, kind: object) -> None:
    """``inputs: {spans: F}`` only for one-vector-per-text kinds; a head pooling ``spans`` needs them mapped."""
    if "spans" in task.inputs and str(kind) not in SPAN_KINDS:
        raise ConfigError(f"task {task.name!r}: inputs maps 'spans' (character spans a head pools), which only "
                          f"{', '.join(SPAN_KINDS)} tasks read; remove it from a {kind} task")
    options = task.head_options if isinstance(task.head_options, Mapping) else {}
    if options.get("pooling") == "spans" and str(kind) not in SPAN_KINDS:
        raise ConfigError(f"task {task.name!r}: head option pooling 'spans' is for {', '.join(SPAN_KINDS)} tasks, and this is a "
                          f"{kind} task; choose pooling cls, mean, max or pooler")
    if options.get("pooling") == "spans" and "spans" not in task.inputs:
        raise ConfigError(f"task {task.name!r}: head option pooling 'spans' pools each row's spans, and the task maps none; add "
                          "inputs: {spans: <field>} (a list of [start, end] character spans per row), or choose pooling cls")


def _near_metric(name: str, metrics: Sequence[str]) -> str:
    """``" (did you mean 'f1_macro'?)"``: a near spelling, else the metrics that begin with ``name``
    (``f1`` -> ``f1_macro``, ``f1_micro``), else ``""``."""
    hint = did_you_mean(name, metrics, n=1)
    if hint or not name:
        return hint
    family = [m for m in metrics if m.lower().startswith(name.lower()) or name.lower().startswith(m.lower())]
    return " (did you mean " + " or ".join(repr(m) for m in family[:3]) + "?)" if family else ""


#: What ``Task.truncation`` may be (the tokenizer's pair strategies; a config takes the first three).
TRUNCATIONS = ("longest_first", "only_first", "only_second", "do_not_truncate")


def _check_settings(task: Task) -> None:
    """``max_length`` a whole number of tokens, ``truncation`` a known strategy, ``evaluate_only`` true or false:
    refused when the task is made (a plugin's line, a config key), not deep inside tokenization."""
    length = task.max_length
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        fix = f"write max_length={int(length)}" if isinstance(length, str) and length.strip().isdigit() and int(length) > 0 \
            else "e.g. max_length=256"
        raise ConfigError(f"task {task.name!r}: max_length (tokens per example) must be a whole number >= 1, got {length!r}; {fix}")
    if task.truncation not in TRUNCATIONS:
        raise ConfigError(f"task {task.name!r}: truncation {task.truncation!r} is not one of {', '.join(TRUNCATIONS)}"
                          f"{did_you_mean(str(task.truncation), TRUNCATIONS, n=1)}")
    if not isinstance(task.evaluate_only, bool):
        raise ConfigError(f"task {task.name!r}: evaluate_only must be true or false, not {task.evaluate_only!r}")


def _check_text_fields(task: Task) -> None:
    """``description`` is a string and ``metadata`` a mapping with string keys (what the listing commands print)."""
    object.__setattr__(task, "description", "" if task.description is None else task.description)
    bad = next((key for key in task.metadata if not isinstance(key, str)), None) if isinstance(task.metadata, Mapping) else None
    if not isinstance(task.description, str):
        raise ConfigError(f"task {task.name!r}: description must be a string, got {type(task.description).__name__} {task.description!r}")
    if not isinstance(task.metadata, Mapping) or bad is not None:
        what = f"key {bad!r} is not a string; write it as {str(bad)!r}" if bad is not None else f"must be a mapping, not {type(task.metadata).__name__}"
        raise ConfigError(f"task {task.name!r}: metadata {what}")


def _check_formats(task_name: str, sources: Mapping[str, Source]) -> None:
    """Every source read by one of mtcore's own loaders (``Source.hub`` / ``local`` / ``sample``) has options that loader
    takes: a known ``format`` (formats are not extensible: a source in another format gives its own loader), reader
    options of that format, split names under ``files`` (see :func:`mtcore.source.check_source`)."""
    for name, source in dict(sources).items():
        if isinstance(source, Source):
            check_source(name, source, task_name)
