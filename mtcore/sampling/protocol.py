"""What the multitask batch sampler needs from a task's data, and how it reads rows.

:class:`mtcore.data.TaskData` (``load_task_data``) satisfies :class:`TaskDataLike`; so does any
object with the same four members, which is how tests and benchmarks use the sampler on
lengths alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TaskDataLike(Protocol):
    """A task's tokenized splits, its collator, and the token count of every example.

    * ``task`` — the :class:`mtcore.task.Task` (``.id``; ``.evaluate_only`` tasks are never
      trained on);
    * ``splits`` — split name -> rows, indexable by a list of row indices: a
      ``datasets.Dataset`` (``ds[[3, 7]]`` gives a dict of columns) or a plain list of row dicts;
    * ``collator`` — ``collator(list_of_row_dicts) -> BatchData`` (dynamic padding); its
      ``pad_to_multiple_of`` attribute, when present, is honoured by token budgets;
    * ``lengths(split)`` — tokens per example, in row order.
    * optionally ``batching_lengths(split)`` — token slots per example once padded within the
      example (multiple choice: choices x longest choice); grouping and budgets count these.
    * optionally ``choice_counts(split)`` — multiple choice: the number of choices of each row
      (``None`` for other kinds). A batch pads its rows to its most choices, so token budgets
      count ``rows x most choices x longest choice`` (with ``batching_lengths``), or, for
      padding-free batches, real tokens plus one token per stand-in choice.
    """

    task: Any
    splits: Mapping[str, Any]
    collator: Callable[[list[dict[str, Any]]], Any]

    def lengths(self, split: str) -> Sequence[int]: ...


def fetch_rows(rows: Any, indices: list[int]) -> list[dict[str, Any]]:
    """The rows at ``indices`` as a list of dicts, in that order.

    A ``datasets.Dataset`` is read with one ``ds[indices]`` call (a single Arrow ``take``, ~15x
    faster than ``ds.select(indices)``) and the columns are turned into rows; sequences that are
    not indexable by a list (plain lists) are read row by row.
    """
    try:
        got = rows[indices]
    except (TypeError, KeyError, IndexError):
        return [rows[i] for i in indices]
    if isinstance(got, Mapping):
        columns = list(got)
        return [dict(zip(columns, values)) for values in zip(*(got[c] for c in columns))]
    return list(got)
