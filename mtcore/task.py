"""``Task``: the declarative description of one task.

A Task is plain data: importing it (and a plugin that builds Tasks) imports nothing heavy. Code a
task needs — a loader for its official files, a preprocessing function, a prediction writer — is
named by a lazy ``"module:attr"`` reference and imported only when used.

After loading and preprocessing, every task's examples carry canonical columns:

===================================  ==========================================================
kind                                 columns
===================================  ==========================================================
text_classification, regression,     ``text`` (and ``text_pair`` for pair tasks), ``label``
pair_classification, multi_label
multiple_choice                      ``text`` (context, may be empty), ``choices`` (list of
                                     strings), ``label`` (index of the right choice)
token_classification                 ``tokens`` (list of words), ``label`` (list of tag names)
extractive_qa                        ``text`` (question), ``text_pair`` (context), ``label``
                                     (answers: SQuAD's ``{"text": [...], "answer_start": [...]}``;
                                     fields ``question``, ``context``, ``answers`` by default);
                                     optional ``candidates`` (list of strings: the answer is
                                     one of them, as in ReCoRD's entities); with
                                     ``no_answer``, an empty answers list means the context
                                     holds no answer (SQuAD 2.0), predicted when the "no
                                     answer" score beats the best span's by more than
                                     ``null_threshold`` (0)
masked_lm                            ``text`` (and ``text_pair``): no label; 15% of the tokens
                                     are masked (anew each time a training row is drawn) and
                                     are the targets (:mod:`mtcore.data.masking`): an auxiliary
                                     task that keeps the encoder learning a domain's language;
                                     ``mask_probability`` sets the share (0.15),
                                     ``mask_whole_words`` masks every token of a chosen word
===================================  ==========================================================

Text kinds (the first row) may also map ``spans``: a list of ``[start, end]`` character spans of ``text`` (``[start, end,
1]``: of ``text_pair``; ``start == end``: no span) the same number in every row, which a head with ``pooling: spans`` pools
(jiant's span classification: the target word of a word-in-context pair, a pronoun and its candidate).

plus ``idx`` when the data has an id field (``id_field``; ``inputs: {idx: F}`` means ``id_field: F``). ``inputs`` renames raw fields to these columns
(``{"text": "premise", "text_pair": "hypothesis"}``); ``preprocess`` functions run first for
anything a rename cannot express (PARus builds its choices with a cause/effect connective).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mtcore.errors import ConfigError, DataError, did_you_mean
from mtcore.source import (  # noqa: F401  (re-exported: plugins import Source from mtcore.task)
    OWN_DATA_FILES,
    OWN_DATA_USAGE,
    SOURCE_KINDS,
    SPLITS,
    Source,
    merge_sources,
    own_data_sources,
    source_from_dict,
)
from mtcore.task_checks import check_task


class TaskKind(str, Enum):
    """What a task predicts; decides the canonical columns, default head and metrics."""

    TEXT_CLASSIFICATION = "text_classification"
    PAIR_CLASSIFICATION = "pair_classification"
    MULTIPLE_CHOICE = "multiple_choice"
    REGRESSION = "regression"
    MULTI_LABEL = "multi_label"
    TOKEN_CLASSIFICATION = "token_classification"
    EXTRACTIVE_QA = "extractive_qa"
    MASKED_LM = "masked_lm"

    def __str__(self) -> str:  # "pair_classification", not "TaskKind.PAIR_CLASSIFICATION"
        return self.value


DEFAULT_HEAD = {
    TaskKind.TEXT_CLASSIFICATION: "classification",
    TaskKind.PAIR_CLASSIFICATION: "classification",
    TaskKind.MULTIPLE_CHOICE: "multiple_choice",
    TaskKind.REGRESSION: "regression",
    TaskKind.MULTI_LABEL: "multi_label",
    TaskKind.TOKEN_CLASSIFICATION: "token_classification",
    TaskKind.EXTRACTIVE_QA: "extractive_qa",
    TaskKind.MASKED_LM: "masked_lm",
}

DEFAULT_METRICS = {
    TaskKind.TEXT_CLASSIFICATION: ("accuracy", "f1_macro"),
    TaskKind.PAIR_CLASSIFICATION: ("accuracy", "f1_macro"),
    TaskKind.MULTIPLE_CHOICE: ("accuracy",),
    TaskKind.REGRESSION: ("pearson", "spearman", "mse"),
    TaskKind.MULTI_LABEL: ("f1_micro", "f1_macro", "exact_match"),
    TaskKind.TOKEN_CLASSIFICATION: ("token_accuracy", "f1_macro"),
    TaskKind.EXTRACTIVE_QA: ("squad_f1", "squad_em"),
    TaskKind.MASKED_LM: ("mlm_accuracy", "perplexity"),
}
#: An extractive-QA task with ``no_answer``: SQuAD 2.0's script reports these too.
NO_ANSWER_METRICS = ("squad_f1", "squad_em", "squad_f1_has_answer", "squad_f1_no_answer", "squad_best_f1", "squad_best_f1_threshold")

DEFAULT_INPUTS = {
    TaskKind.TEXT_CLASSIFICATION: {"text": "text"},
    TaskKind.PAIR_CLASSIFICATION: {"text": "text", "text_pair": "text_pair"},
    TaskKind.MULTIPLE_CHOICE: {"text": "text", "choices": "choices"},
    TaskKind.REGRESSION: {"text": "text"},
    TaskKind.MULTI_LABEL: {"text": "text"},
    TaskKind.TOKEN_CLASSIFICATION: {"tokens": "tokens"},
    TaskKind.EXTRACTIVE_QA: {"text": "question", "text_pair": "context", "label": "answers"},  # SQuAD's field names
    TaskKind.MASKED_LM: {"text": "text"},
}

#: Columns ``Task.inputs`` may map (canonical column -> raw field).
INPUT_COLUMNS = ("text", "text_pair", "choices", "tokens", "label", "idx", "candidates", "spans")


@dataclass(frozen=True)
class Task:
    """The declarative description of a task (see the module docstring for the columns)."""

    name: str
    kind: TaskKind
    description: str = ""
    labels: tuple[str, ...] = ()
    label_values: tuple[Any, ...] | None = None
    label_aliases: Mapping[Any, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    preprocess: tuple[str | Callable[..., Any], ...] = ()
    sources: Mapping[str, Source] = field(default_factory=dict)
    head: str | None = None
    head_options: Mapping[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] | None = None
    main_metric: str | None = None
    max_length: int = 256
    truncation: str = "longest_first"
    stride: int = 128
    no_answer: bool = False
    null_threshold: float = 0.0
    mask_probability: float | None = None
    mask_whole_words: bool = False
    id_field: str | None = "idx"
    evaluate_only: bool = False
    writer: str | None = None
    plugin: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_task(self)

    # ---- derived facts -------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The qualified id ``plugin:name`` (just ``name`` before registration)."""
        return f"{self.plugin}:{self.name}" if self.plugin else self.name

    @property
    def head_name(self) -> str:
        return self.head or DEFAULT_HEAD[self.kind]

    @property
    def head_ref(self) -> str:
        """The head to look up: the one the task names, else mtcore's default for its kind by qualified id
        (``mtcore:classification``), so a namesake registered by a plugin or user code does not make it ambiguous."""
        return self.head or f"mtcore:{DEFAULT_HEAD[self.kind]}"

    @property
    def metric_owner(self) -> str:
        """The plugin whose namesake a bare metric name of this task means first (:meth:`~mtcore.registry.Registry.ref`):
        mtcore for the kind's default metrics, else the task's own plugin."""
        return "mtcore" if self.metrics is None else self.plugin

    @property
    def all_metrics(self) -> tuple[str, ...]:
        if self.metrics is not None:
            return self.metrics
        return NO_ANSWER_METRICS if self.no_answer else DEFAULT_METRICS[self.kind]

    @property
    def main(self) -> str:
        """The metric used for the aggregate score and model selection."""
        return self.main_metric or self.all_metrics[0]

    @property
    def input_map(self) -> dict[str, str]:
        """Canonical column -> raw field, defaults filled in for the task's kind."""
        return {**DEFAULT_INPUTS[self.kind], **dict(self.inputs)}

    @property
    def num_labels(self) -> int:
        """Output size of the head: classes, 1 for regression, 1 scorer for multiple choice, 2 (start, end) for extractive QA."""
        if self.kind in (TaskKind.REGRESSION, TaskKind.MULTIPLE_CHOICE):
            return 1
        if self.kind is TaskKind.EXTRACTIVE_QA:
            return 2
        return len(self.labels)

    @property
    def is_pair(self) -> bool:
        return "text_pair" in self.input_map

    # ---- labels --------------------------------------------------------------------------
    def label_id(self, value: Any) -> int | None:
        """Map a label as stored in the data to a class id; ``None`` for "no label" (test splits).

        Accepts the stored form (``label_values``), the label name, an alias, or an integer
        class id (what hub ``ClassLabel`` columns hold) unless the label names are themselves
        numbers (then a number must be one of them). -1 means "no label" unless it names a class.
        Raises ``ValueError`` otherwise.
        """
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == -1 and not self.names_label(value)):
            return None
        if self.kind is TaskKind.MULTIPLE_CHOICE:
            index = int(value)
            if index < 0:
                raise ValueError(value)
            return index
        if self.label_values is not None:
            for i, stored in enumerate(self.label_values):
                if type(stored) is type(value) and stored == value:
                    return i
        text = str(value)
        if text in self.label_aliases:
            text = self.label_aliases[text]
        elif value in self.label_aliases:
            text = self.label_aliases[value]
        if text in self.labels:
            return self.labels.index(text)
        truth = {name.lower(): i for i, name in enumerate(self.labels) if name.lower() in ("true", "false")}
        if isinstance(value, (str, bool)) and text.strip().lower() in truth:  # JSON true, CSV "true", YAML True alike
            return truth[text.strip().lower()]
        if isinstance(value, bool) and self.label_values is not None and value in self.label_values:
            return self.label_values.index(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.labels) and not self.numeric_labels:
            return value
        raise ValueError(value)

    @property
    def numeric_labels(self) -> bool:
        """Label names that are integers (``"1"``..``"5"`` stars): numbers in the data are names, not positions."""
        return bool(self.labels) and all(str(name).strip().lstrip("-").isdigit() for name in self.labels)

    def names_label(self, value: Any) -> bool:
        """Whether ``value`` is a declared label: a stored value, a name or an alias (not a class position)."""
        if self.label_values is not None and any(type(v) is type(value) and v == value for v in self.label_values):
            return True
        try:
            if value in self.label_aliases:
                return True
        except TypeError:  # an unhashable value
            return False
        return str(value) in self.labels or str(value) in self.label_aliases

    def label_value(self, class_id: int) -> Any:
        """The stored form of a class id, for predictions written back in the dataset's form."""
        if self.kind is TaskKind.MULTIPLE_CHOICE:
            return int(class_id)
        if self.label_values is not None:
            return self.label_values[class_id]
        return self.labels[class_id]

    def expected_labels(self) -> str:
        shown = self.label_values if self.label_values is not None else self.labels
        return ", ".join(repr(v) for v in shown)

    # ---- construction --------------------------------------------------------------------
    def replace(self, **changes: Any) -> Task:
        """A copy with some fields changed (per-task overrides from a config), checked as ``Task(...)`` is.

        Built by calling the class here rather than through :func:`dataclasses.replace`, so that a
        mistake is raised with no frame of the standard library between the caller and mtcore's
        checks: a plugin's error names the plugin's line that called ``replace``."""
        names = [f.name for f in dataclasses.fields(self) if f.init]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise _unknown_field(f"task {self.name!r}: ", unknown[0], names, "replace")
        values = {name: getattr(self, name) for name in names}
        values.update(changes)
        return type(self)(**values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, plugin: str = "", also_valid: Sequence[str] = ()) -> Task:
        """Build a Task from plain data (a YAML task definition).

        ``sources`` maps a source name to ``{"kind": "local", "format": ..., "files": {...}}``
        (or ``hub`` options); everything else maps onto the dataclass fields. ``also_valid``:
        keys the caller handles itself (offered in "did you mean" too).
        """
        data = dict(data)
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError(f"task definition: unknown key {key!r}{did_you_mean(key, sorted(names | set(also_valid)))}")
        if "name" not in data or "kind" not in data:
            raise ConfigError("task definition needs at least 'name' and 'kind'")
        sources = merge_sources({}, dict(data.pop("sources", {}) or {}), task_name=str(data["name"]))
        for key in ("labels", "metrics", "preprocess", "label_values"):
            if key in data and isinstance(data[key], list):
                data[key] = tuple(data[key])
        return cls(sources=sources, plugin=data.pop("plugin", plugin), **data)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (what ``mt list-tasks --json`` and manifests print)."""
        return {
            "id": self.id,
            "name": self.name,
            "plugin": self.plugin,
            "kind": self.kind.value,
            "labels": list(self.labels),
            "description": self.description,
            "sources": {name: s.description for name, s in self.sources.items()},
            "head": self.head_name,
            "head_options": dict(self.head_options),
            "metrics": list(self.all_metrics),
            "main_metric": self.main,
            "inputs": self.input_map,
            "max_length": self.max_length,
            "evaluate_only": self.evaluate_only,
            "metadata": dict(self.metadata),
        }


def _unknown_field(prefix: str, name: str, names: Sequence[str], call: str) -> ConfigError:
    """``task 'reviews': replace() got unknown field 'lables' (did you mean 'labels'?); ...``."""
    hint = did_you_mean(str(name), names)
    listed = "" if hint else f"; Task fields are: {', '.join(names)}"
    return ConfigError(f"{prefix}{call}() got unknown field {name!r}{hint}{listed}")


def _checked_init(generated: Callable[..., None]) -> Callable[..., None]:
    """``Task(...)`` with an unknown keyword: a ConfigError with did-you-mean, not Python's bare TypeError."""
    import functools

    @functools.wraps(generated)
    def __init__(self: Task, *args: Any, **kwargs: Any) -> None:
        names = [f.name for f in dataclasses.fields(type(self)) if f.init]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            task = kwargs.get("name", args[0] if args else None)
            raise _unknown_field(f"task {task!r}: " if isinstance(task, str) else "", unknown[0], names, "Task")
        generated(self, *args, **kwargs)

    return __init__


Task.__init__ = _checked_init(Task.__init__)  # type: ignore[method-assign]


def data_error(task: Task, where: str, message: str) -> DataError:
    """A one-line data error: ``task 'rsg:terra', <file> row 12: <message>``."""
    return DataError(f"task {task.id!r}, {where}: {message}")
