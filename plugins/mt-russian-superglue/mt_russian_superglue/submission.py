"""The ``rsg`` prediction writer: official Russian SuperGLUE submission files.

One ``<Task>.jsonl`` per task (``DaNetQA.jsonl``, ``TERRa.jsonl``, ``PARus.jsonl``, ``RCB.jsonl``,
``LiDiRus.jsonl``, ``RUSSE.jsonl``, ``RWSD.jsonl``, ``MuSeRC.jsonl``, ``RuCoS.jsonl``), one
``{"idx": ..., "label": ...}`` object per line, labels in the stored form: a JSON bool for DaNetQA,
RUSSE and RWSD, an int for PARus, the label string for TERRa, RCB and LiDiRus, the answer text for
RuCoS (``idx``: the query's). MuSeRC's file nests its answers as the official files do, one line
per paragraph: ``{"idx": p, "passage": {"questions": [{"idx": q, "answers": [{"idx": a, "label": 0|1}]}]}}``.
Put the files of every task in one folder and zip it to submit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, DataError
from mtcore.outputs import write_text_atomic
from mtcore.task import Task

from mt_russian_superglue.tasks import OFFICIAL_NAMES


def submission_file_name(task: Task) -> str:
    """``DaNetQA.jsonl`` for ``rsg:danetqa`` and so on; a ConfigError for any other task."""
    try:
        return f"{OFFICIAL_NAMES[task.name]}.jsonl"
    except KeyError:
        raise ConfigError(
            f"the 'rsg' writer only writes Russian SuperGLUE tasks ({', '.join(OFFICIAL_NAMES)}), not {task.id!r}; "
            "use --format jsonl or csv for this task"
        ) from None


def official_label(task: Task, label: Any) -> Any:
    """The label in the official form of ``task`` (bool, int or string), whatever form it came in."""
    if task.name == "rucos":
        if not isinstance(label, str):
            raise DataError(f"task {task.id!r}: RuCoS prediction {label!r} is not an answer text")
        return label
    if task.name == "parus":
        if isinstance(label, bool) or not isinstance(label, (int, str)) or str(label) not in ("0", "1"):
            raise DataError(f"task {task.id!r}: PARus prediction {label!r} is not the choice index 0 or 1")
        return int(label)
    if task.label_values is not None and label in task.label_values and type(label) is type(task.label_values[0]):
        return label
    try:
        class_id = task.label_id(label)
    except ValueError:
        class_id = None
    if class_id is None:
        raise DataError(f"task {task.id!r}: prediction {label!r} is not one of {task.expected_labels()}")
    return task.label_value(class_id)


def _idx(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    return value


def _part(task: Task, number: int, idx: Any, key: str) -> Any:
    if not isinstance(idx, Mapping) or key not in idx:
        raise DataError(f"task {task.id!r}, prediction row {number}: idx {idx!r} has no {key!r}; the {OFFICIAL_NAMES[task.name]} "
                        f"submission needs the official ids, as the task's sources give them")
    return _idx(idx[key])


def _records(task: Task, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    records, seen = [], {}
    for number, row in enumerate(rows, start=1):
        if "idx" not in row or row["idx"] is None:
            raise DataError(f"task {task.id!r}, prediction row {number}: no 'idx'; the submission needs the official ids")
        label = row["label"]
        if hasattr(label, "item"):
            label = label.item()
        rucos_pair = task.name == "rucos" and isinstance(row["idx"], Mapping)  # {passage, query}: the query's is submitted
        idx = _part(task, number, row["idx"], "query") if rucos_pair else row["idx"]
        record = {"idx": idx if isinstance(idx, Mapping) else _idx(idx), "label": official_label(task, label)}
        if task.name == "muserc":
            record["idx"] = {key: _part(task, number, row["idx"], key) for key in ("paragraph", "question", "answer")}
        key = json.dumps(record["idx"], sort_keys=True, ensure_ascii=False, default=str)
        first = seen.setdefault(key, number)
        if first != number:  # the leaderboard takes one line per idx: a file with two is rejected or scored wrongly
            raise DataError(f"task {task.id!r}: prediction rows {first} and {number} both have idx {key}; the submission needs "
                            "one line per idx: give every row of the input (the official test file) its own idx")
        records.append(record)
    return records


def muserc_passages(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per-answer records (``idx`` = ``{paragraph, question, answer}``) nested back into the official
    one-line-per-paragraph form, paragraphs and questions in the order they first appear."""
    passages: dict[Any, dict[Any, list[dict[str, Any]]]] = {}
    for record in records:
        idx = record["idx"]
        passages.setdefault(idx["paragraph"], {}).setdefault(idx["question"], []).append({"idx": idx["answer"], "label": record["label"]})
    return [{"idx": paragraph, "passage": {"questions": [{"idx": question, "answers": answers} for question, answers in questions.items()]}}
            for paragraph, questions in passages.items()]


def submission_lines(task: Task, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The JSON lines of the submission file, in the order of ``rows`` (MuSeRC: of their paragraphs)."""
    records: list[Any] = _records(task, rows)
    if task.name == "muserc":
        records = muserc_passages(records)
    return [json.dumps(record, ensure_ascii=False) for record in records]


def write_rsg(task: Task, rows: Iterable[Mapping[str, Any]], output_path: str | os.PathLike[str]) -> list[Path]:
    """Write ``<Task>.jsonl`` for ``task`` and return the paths written.

    ``output_path`` is a directory (created if needed) that receives the official file name (a
    path that already ends in the official name is taken as the file). ``rows`` are dicts with ``idx`` and
    ``label`` (``probabilities`` is ignored: the leaderboard takes labels only). The file is
    written to a temporary name first and then moved into place.
    """
    name = submission_file_name(task)
    output = Path(output_path)
    target = output if output.name == name else output / name
    lines = submission_lines(task, rows)
    write_text_atomic(target, "".join(line + "\n" for line in lines))
    return [target]
