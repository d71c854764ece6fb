"""What ``max_length`` cuts from extractive-QA rows: answers no window holds (training, evaluation)
and contexts read only in part (prediction), each reported in one :class:`CutAnswersWarning` line."""

from __future__ import annotations

import warnings
from typing import Any

from mtcore.data.answers import tokenless


class CutAnswersWarning(UserWarning):
    """Answers of extractive-QA rows lie past ``max_length`` (the model never sees them; scored as missed)."""


def count_cut_answers(rows: Any) -> int:
    """Examples of a tokenized extractive-QA split with answers but no window holding one: their answer
    lies past ``max_length`` (no windows, ``stride`` 0) or is longer than a window."""
    names = getattr(rows, "column_names", None)
    if names is None or "answers" not in names:
        return 0
    table = rows.with_format("arrow")
    found: dict[int, bool] = {}
    for example, texts, span in zip(table["example"].to_pylist(), table["answers"].to_pylist(), table["labels"].to_pylist()):
        if texts:
            found[example] = found.get(example, False) or span[0] >= 0  # [0, 0]: another window holds it
    return sum(1 for held in found.values() if not held)


def warn_cut_answers(rows: Any, task: Any, split: str, max_length: int, where: str | None = None) -> int:
    """One :class:`CutAnswersWarning` line when examples of ``split`` have their answer in no window."""
    cut = count_cut_answers(rows)
    if cut:
        examples = len(set(rows.with_format("arrow")["example"].to_pylist()))
        fix = ("raise the task's stride or max_length" if task.stride else "set the task's stride (e.g. 128: long contexts are read "
               "in overlapping windows) or raise its max_length")
        warnings.warn(f"task {task.id!r}, {where or split + ' split'}: {cut} of {examples} rows have their answer in no window of "
                      f"max_length {max_length} (the model never sees it: no training target, scored as missed): {fix} "
                      "(config: tasks.<i>.stride=N, tasks.<i>.max_length=N)", CutAnswersWarning, stacklevel=3)
    return cut


def count_cut_contexts(rows: Any) -> tuple[int, int]:
    """``(cut, examples)``: examples of a tokenized extractive-QA split whose windows leave the end of the
    context unread (``stride`` 0, or a question that left a window no room), and all examples."""
    table = rows.with_format("arrow")
    read_to: dict[int, int] = {}
    text_end: dict[int, int] = {}
    for example, offsets, context in zip(table["example"].to_pylist(), table["offsets"].to_pylist(), table["context"].to_pylist()):
        read_to[example] = max(read_to.get(example, 0), max((end for start, end in offsets if start >= 0), default=0))
        if example not in text_end:
            end = len(context)
            while end > 0 and tokenless(context[end - 1]):
                end -= 1
            text_end[example] = end
    return sum(1 for example, end in read_to.items() if end < text_end[example]), len(read_to)


def warn_cut_contexts(rows: Any, task: Any, max_length: int, where: str) -> int:
    """One :class:`CutAnswersWarning` line when predicted rows had part of their context cut off."""
    cut, examples = count_cut_contexts(rows)
    if cut:
        fix = "raise max_length" if task.stride else "set the task's stride (e.g. 128: long contexts are read in overlapping windows)"
        warnings.warn(f"task {task.id!r}, {where}: {cut} of {examples} rows have a context longer than max_length {max_length} "
                      f"allows, cut off: an answer in the cut part cannot be predicted; {fix}", CutAnswersWarning, stacklevel=3)
    return cut
