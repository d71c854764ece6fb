"""Raw rows -> canonical, validated columns (``text``, ``text_pair``, ``choices``, ``tokens``, ``spans``, ``labels``, ``idx``).

Extractive-QA answers are checked and normalised by :mod:`mtcore.data.answers`.

:func:`prepare_split` runs the task's preprocessing steps, renames raw fields with
``task.input_map``, maps labels to class ids with ``task.label_id`` and checks every row on the
way. A bad row stops preparation with one line naming the file, the row, the value and what is
expected, e.g. ``task 'rsg:terra', /data/val.jsonl row 12: label 'maybe' is not one of
'entailment', 'not_entailment'``. A row that lacks a field the task reads (a JSON object without the
key, where other rows have it) is told apart from one holding an explicit null. Rows without a
label (absent, null or -1) are kept only in the ``test`` split, with the "no label" value of their
kind (see :func:`no_label`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mtcore.data.answers import answers_feature, has_answers, no_answers, normalize_answers
from mtcore.data.cache import fingerprint, map_or_rebuild, pipeline_key
from mtcore.data.preprocess import Preprocessor, build_preprocessor
from mtcore.data.spans import check_span_bounds, span_value
from mtcore.data.rows import FILE_COLUMN, META_COLUMNS, MISSING_COLUMN, OTHER_COLUMN, ROW_COLUMN, kind_feature, value_kind_or_none
from mtcore.errors import DataError, did_you_mean
from mtcore.task import Task, TaskKind, data_error

#: Bump when preparation changes what it writes: old caches are then not reused.
PREPARE_VERSION = 2
#: Splits whose rows may lack labels (kept for prediction).
UNLABELLED_SPLITS = ("test",)

_TEXT_COLUMNS = ("text", "text_pair")
_LIST_COLUMNS = ("choices", "tokens", "candidates")
_ID_KINDS = ("bool", "int", "float", "str")


def no_label(task: Task, row: Mapping[str, Any]) -> Any:
    """The ``labels`` value of an unlabelled row: -1 (classes, choices), NaN (regression),
    all -1.0 (multi-label), all -100 (token classification, one per word)."""
    if task.kind is TaskKind.REGRESSION:
        return math.nan
    if task.kind is TaskKind.MULTI_LABEL:
        return [-1.0] * len(task.labels)
    if task.kind is TaskKind.TOKEN_CLASSIFICATION:
        return [-100] * len(row["tokens"])
    if task.kind is TaskKind.EXTRACTIVE_QA:
        return no_answers()
    return -1


def labels_feature(task: Task) -> Any:
    from datasets import List, Value

    if task.kind is TaskKind.EXTRACTIVE_QA:
        return answers_feature()
    return {
        TaskKind.REGRESSION: Value("float32"),
        TaskKind.MULTI_LABEL: List(Value("float32")),
        TaskKind.TOKEN_CLASSIFICATION: List(Value("int64")),
    }.get(task.kind, Value("int64"))


class _Labels:
    """Maps one stored label value to what the ``labels`` column holds, or raises ValueError(reason)."""

    def __init__(self, task: Task, class_names: Sequence[str] | None):
        self.task = task
        self.class_names = list(class_names) if class_names else None

    def class_id(self, value: Any) -> int:
        task = self.task
        if self.class_names and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.class_names):
            try:  # a hub ClassLabel id: go through its name, in case the orders differ
                return self._checked(task.label_id(self.class_names[value]), value)
            except ValueError:
                pass
        try:
            return self._checked(task.label_id(value), value)
        except ValueError:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # "1" from a CSV file
                try:
                    return self._checked(task.label_id(int(value)), value)
                except ValueError:
                    pass
            position = str(value).strip().isdigit() and int(str(value).strip()) < len(task.labels)
            numeric = (" (the label names are numbers, so numbers in the data are names, not positions)"
                       if task.numeric_labels and position else "")
            if set(task.labels) == {"False", "True"} and str(value).strip().lower() in ("yes", "no", "on", "off", "y", "n"):
                numeric = (" (the task's labels are the booleans false and true, as JSON writes them; if its YAML definition meant "
                           "the words, quote them: labels: ['no', 'yes'], since YAML reads yes/no/on/off as booleans)")
            raise ValueError(f"label {value!r} is not one of {task.expected_labels()}{did_you_mean(str(value), task.labels, n=1)}"
                             f"{numeric}; fix the data, or the task's labels / label_aliases") from None

    def _checked(self, class_id: int | None, value: Any) -> int:
        if class_id is None:
            raise ValueError(f"label {value!r} means 'no label' where a label is needed")
        return class_id

    def __call__(self, value: Any, row: Mapping[str, Any]) -> Any:
        kind = self.task.kind
        if kind is TaskKind.REGRESSION:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(f"label {value!r} is not a number")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"label {value!r} is not a number") from None
            if math.isnan(number):
                raise ValueError("label is NaN; leave it out or null for unlabelled rows")
            if math.isinf(number):
                raise ValueError(f"label {value!r} is infinite; a regression target must be a finite number")
            return number
        if kind is TaskKind.MULTI_LABEL:
            if isinstance(value, str) and value.strip().startswith("["):  # a CSV cell: the JSON list mt predict -o x.csv writes
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise ValueError(f"label {value!r} is not a JSON list of labels (a CSV cell holds one as [\"a\", \"b\"])") from None
            values = value if isinstance(value, (list, tuple)) else [value]
            hot = [0.0] * len(self.task.labels)
            for item in values:
                hot[self.class_id(item)] = 1.0
            return hot
        if kind is TaskKind.TOKEN_CLASSIFICATION:
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"label {_short(value)} is not a list of tags, one per word")
            if len(value) != len(row["tokens"]):
                words, tags = self.task.input_map.get("tokens", "tokens"), self.task.input_map.get("label", "label")
                raise ValueError(f"label has {len(value)} tags for {len(row['tokens'])} words; give one tag per word "
                                 f"(field {tags!r} holds the tags, field {words!r} the words)")
            tags = []
            for position, item in enumerate(value, start=1):  # which word: a CoNLL sentence's row is its first line
                try:
                    tags.append(self.class_id(item))
                except ValueError as exc:
                    raise ValueError(f"word {position} ({_short(row['tokens'][position - 1])}): {exc}") from None
            return tags
        if kind is TaskKind.EXTRACTIVE_QA:
            return normalize_answers(value, row["text_pair"], no_answer=self.task.no_answer)
        if kind is TaskKind.MULTIPLE_CHOICE:
            try:
                index = self.task.label_id(value)
            except (ValueError, TypeError):
                raise ValueError(f"label {value!r} is not the index of a choice") from None
            if index is None or index >= len(row["choices"]):
                raise ValueError(f"label {value!r} is not the index of a choice (the row has {len(row['choices'])} choices)")
            return index
        return self.class_id(value)


def label_problem(task: Task, value: Any) -> str | None:
    """Why a single stored label ``value`` is not valid for ``task`` (None when it is, or when it cannot be judged alone)."""
    if task.kind not in (TaskKind.TEXT_CLASSIFICATION, TaskKind.PAIR_CLASSIFICATION, TaskKind.MULTI_LABEL):
        return None
    try:
        _Labels(task, None).class_id(value)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def _is_unlabelled(value: Any, task: Task, split: str, scores: bool = False) -> bool:
    """None or NaN; also -1 (and from CSV files "" and "-1"), except where it is a declared label
    or, for regression, a real score: outside the test split, or where other test rows have scores (``scores``; the
    hub's -1 marks hidden test labels, all of them)."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return True
    if task.kind is TaskKind.EXTRACTIVE_QA:  # with no_answer, an empty list is an answer: "none in the context"
        return (isinstance(value, str) and not value.strip()) if task.no_answer else not has_answers(value)
    marks = ("", "-1", "-1.0") if task.kind is TaskKind.REGRESSION else ("", "-1")  # pandas writes -1.0
    if isinstance(value, str) and value.strip() in marks and task.kind is not TaskKind.TOKEN_CLASSIFICATION:
        return not task.names_label(value) and (task.kind is not TaskKind.REGRESSION or split in UNLABELLED_SPLITS and not scores
                                                or not value.strip())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == -1:
        if task.kind is TaskKind.REGRESSION:
            return split in UNLABELLED_SPLITS and not scores
        return not task.names_label(int(value))
    return False


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _canonical_value(column: str, field: str, value: Any) -> Any:
    """Check one canonical input's type; return it, or raise ValueError(reason)."""
    if column == "spans":
        return span_value(field, value)
    if column in _TEXT_COLUMNS:
        if value is None:
            raise ValueError(f"field {field!r} ({column}) is null; expected text")
        if not isinstance(value, str):
            raise ValueError(f"field {field!r} ({column}) holds {_short(value)} ({type(value).__name__}); expected text")
        return value
    if isinstance(value, str) and value.strip()[:1] == "[":  # a CSV cell holding the list as JSON text
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"field {field!r} ({column}) holds {_short(value)}, not a JSON list of strings") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        hint = " (in a CSV cell: the list as JSON text, e.g. [\"a\", \"b\"])" if isinstance(value, str) else ""
        raise ValueError(f"field {field!r} ({column}) holds {_short(value)}; expected a list of strings{hint}")
    if column == "choices" and len(value) < 2:
        raise ValueError(f"field {field!r} (choices) has {len(value)} choice(s); expected at least 2")
    return list(value)


def _prepare_row(row: dict[str, Any], task: Task, split: str, preprocess: Preprocessor, labels: _Labels,
                 idx_field: str | None, scores: bool = False) -> dict[str, Any]:
    """One raw row -> canonical columns; raises ValueError(reason) or DataError (from a step)."""
    absent = frozenset(row.get(MISSING_COLUMN) or ())  # fields other rows have and this one lacks (stored as null)
    if len(preprocess):
        try:
            row = preprocess({k: v for k, v in row.items() if k not in META_COLUMNS})  # steps see the data's own fields
        except DataError:
            raise
        except Exception as exc:  # a user step that crashed on this row
            text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
            raise ValueError(f"preprocessing failed with {type(exc).__name__}: {text}") from None
    out: dict[str, Any] = {}
    for column, field in task.input_map.items():
        if column == "label":
            continue
        if column == "candidates" and row.get(field) in (None, ""):  # optional (an empty CSV cell too): any span answers
            out[column] = []
            continue
        if _lacks(row, field, absent):
            raise ValueError(f"no field {field!r} for {column} in this row (it has: {_has(row, absent)}); other rows have it: "
                             "add it to this row, or remove the row")
        if field not in row:
            fields = _own_fields(row, absent)
            if fields and str(fields[0]).lstrip().startswith(("{", "[")):  # JSON lines read as CSV: its header is the first object
                raise ValueError(f"no field {field!r} for {column}: the CSV header is {str(fields[0])[:40]!r}...; the file looks like "
                                 f"JSON Lines: set format: jsonl (or give the file a .jsonl name)")
            if (task.kind.value == "token_classification" and len(fields) == 1 and len(str(fields[0]).split()) >= 2
                    and not any(sep in str(fields[0]) for sep in (";", "|", ","))):  # 'Today O': a CoNLL line read as CSV
                raise ValueError(f"no field {field!r} for {column}: the row has one field {fields[0]!r}; the file looks like CoNLL "
                                 "(a token and its tags per line): set format: conll (or give the file a .conll name)")
            separator = next((sep for sep in (";", "\t", "|") if len(fields) == 1 and sep in fields[0]), None)
            if separator is not None:  # one field named 'a;b;c': a CSV read with the wrong separator
                raise ValueError(f"no field {field!r} for {column}: the row has one field {fields[0]!r}; the file looks "
                                 f"separated by {separator!r}: set the reader option sep={separator!r}")
            near = did_you_mean(field, fields)
            raise ValueError(f"no field {field!r} for {column} (the row has: {_has(row, absent)}){near}; "
                             f"map it in the task's inputs, e.g. inputs: {{{column}: <field>}}")
        out[column] = _canonical_value(column, field, row[field])
    if "spans" in out:
        check_span_bounds(out, task.input_map["spans"])
    label_field = task.input_map.get("label", "label")
    value = row.get(label_field)
    if task.kind is TaskKind.MASKED_LM:  # its targets are its tokens, masked when tokenized
        out["labels"] = 0
    elif _is_unlabelled(value, task, split, scores):
        if split not in UNLABELLED_SPLITS:
            if label_field not in row:
                raise ValueError(f"no label: the row has no field {label_field!r} (it has: {_has(row, absent)}); {split} rows need "
                                 f"one (if the labels are in another field, map it: inputs: {{label: <field>}})")
            if _lacks(row, label_field, absent):
                raise ValueError(f"no label: this row has no field {label_field!r} (it has: {_has(row, absent)}); {split} rows "
                                 "need one: add it to this row, or remove the row (only test rows may be unlabelled)")
            hint = ""
            if task.kind is TaskKind.EXTRACTIVE_QA:
                hint = (" (for a question the context does not answer, write an empty list: [])" if task.no_answer else
                        " (for questions the context does not answer, as in SQuAD 2.0, set the task's no_answer: true)")
            raise ValueError(f"no label (field {label_field!r} is {value!r}); {split} rows need one{hint}")
        out["labels"] = no_label(task, out)
    else:
        out["labels"] = labels(value, out)
    if idx_field is not None:
        out["idx"] = row.get(idx_field)
    return out


def _lacks(row: Mapping[str, Any], field: str, absent: frozenset[str]) -> bool:
    """Whether ``field`` was absent from the row in its file (and no preprocessing step filled it in)."""
    return field in absent and row.get(field) is None


def _own_fields(row: Mapping[str, Any], absent: frozenset[str]) -> list[str]:
    """The fields the row really has, for messages (not mtcore's columns, nor other rows' fields stored as null)."""
    other = list(json.loads(row[OTHER_COLUMN])) if row.get(OTHER_COLUMN) else []  # fields the task does not read, folded
    return [str(k) for k in row if k not in META_COLUMNS and not _lacks(row, str(k), absent)] + other


def _has(row: Mapping[str, Any], absent: frozenset[str]) -> str:
    return ", ".join(_own_fields(row, absent)) or "no fields"


def _class_names(raw: Any, task: Task) -> list[str] | None:
    """Names of a hub ``ClassLabel`` label column (also inside a list, for tags)."""
    feature = raw.features.get(task.input_map.get("label", "label"))
    feature = getattr(feature, "feature", feature)  # List(ClassLabel) -> ClassLabel
    return list(feature.names) if hasattr(feature, "names") else None


def _idx_feature(raw: Any, task: Task, preprocess: Preprocessor) -> tuple[str | None, Any]:
    """Where ``idx`` comes from and how it is stored (``(None, None)``: no id column)."""
    field = task.id_field
    if not field:
        return None, None
    if field in raw.column_names:
        return field, raw.features[field]
    try:  # the id may come from a preprocessing step: look at what it makes of the first row
        value = preprocess({k: v for k, v in raw[0].items() if k not in META_COLUMNS}).get(field)
    except Exception:  # the real run reports the failure with its row
        return None, None
    if value is None:
        return None, None
    kind = value_kind_or_none(value)
    return field, kind_feature(kind if kind in _ID_KINDS or isinstance(kind, tuple) else "str")


def prepared_features(task: Task, idx_feature: Any = None) -> Any:
    """The ``datasets.Features`` of a prepared split."""
    from datasets import Features, List, Value

    features: dict[str, Any] = {}
    for column in task.input_map:
        if column in _TEXT_COLUMNS:
            features[column] = Value("string")
        elif column in _LIST_COLUMNS:
            features[column] = List(Value("string"))
        elif column == "spans":
            features[column] = List(List(Value("int32")))
    features["labels"] = labels_feature(task)
    if idx_feature is not None:
        features["idx"] = idx_feature
    return Features(features)


def prepare_split(raw: Any, task: Task, split: str, *, origin: str) -> Any:
    """Preprocess, rename and validate one raw split; return the cached prepared ``Dataset``.

    ``origin`` names the data in errors when rows carry no file and row (hub data):
    ``"hub 'facebook/xnli' (ru) validation"`` gives ``... validation row 12: ...``.
    """
    if raw.num_rows == 0:
        raise data_error(task, origin, f"the {split} split has no rows")
    preprocess = build_preprocessor(task.preprocess)
    idx_field, idx_feature = _idx_feature(raw, task, preprocess)
    labels = _Labels(task, _class_names(raw, task))
    features = prepared_features(task, idx_feature)
    scores = _has_scores(raw, task, split)
    key = fingerprint("prepare", PREPARE_VERSION, raw._fingerprint, split, task.kind, task.labels, task.label_values,
                      dict(task.label_aliases), task.input_map, idx_field, preprocess, pipeline_key(), task.no_answer, scores)

    def prepare_batch(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        columns = list(batch)
        out: dict[str, list[Any]] = {name: [] for name in features}
        for position, values in enumerate(zip(*(batch[c] for c in columns))):
            row = dict(zip(columns, values))
            try:
                prepared = _prepare_row(row, task, split, preprocess, labels, idx_field, scores)
            except (ValueError, DataError) as exc:
                raise data_error(task, _where(row, indices[position], origin), str(exc)) from None
            for name in features:
                out[name].append(prepared.get(name))
        return out

    return map_or_rebuild(raw, prepare_batch, batched=True, with_indices=True, remove_columns=raw.column_names, features=features,
                          new_fingerprint=key, desc=f"Preparing {task.id} {split}")


def _has_scores(raw: Any, task: Task, split: str) -> bool:
    """A regression task's test split where some row has a score other than -1: there -1 is a score too, not the hub's
    mark of a hidden label (which every row of a hidden split has). Read from the raw label column, when it has one."""
    field = task.input_map.get("label", "label")
    if task.kind is not TaskKind.REGRESSION or split not in UNLABELLED_SPLITS or field not in raw.column_names:
        return False
    for value in raw.with_format("arrow")[field].to_pylist():
        if value is None or isinstance(value, bool) or isinstance(value, float) and math.isnan(value):
            continue
        if str(value).strip() not in ("", "-1", "-1.0"):
            return True
    return False


def _where(row: Mapping[str, Any], index: int, origin: str) -> str:
    if row.get(FILE_COLUMN) is not None:
        return f"{row[FILE_COLUMN]} row {row[ROW_COLUMN]}"
    return f"{origin} row {index + 1}"
