"""Character spans a head pools (``inputs: {spans: F}``, ``pooling: spans``): checked when rows are prepared, turned into
token positions when they are tokenized.

A row's ``spans`` is a list of ``[start, end]`` character spans of ``text`` (end excluded), or ``[start, end, 1]`` of
``text_pair``; every row of a task has as many (the head's ``num_spans``). ``start == end`` marks no span (a test row
whose target could not be placed). Tokenized, each becomes ``[first, last]``: its first and last token (both included);
``[-1, -1]`` for no span, ``[-2, -2]`` for a span no token of which is left (cut off by ``max_length``) and ``[-3, -3]``
for one no token covers (spaces, characters the tokenizer drops), both told with a :class:`CutSpansWarning`; the head
pools all three as zeros.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

#: The tokenized column: each span's first and last token.
SPAN_TOKENS = "span_tokens"
#: No span (``start == end``).
NO_SPAN = [-1, -1]
#: A span none of whose characters has a token left (cut off by ``max_length``).
LOST_SPAN = [-2, -2]
#: A span no token covers although nothing was cut (spaces, characters the tokenizer drops).
BLANK_SPAN = [-3, -3]


class CutSpansWarning(UserWarning):
    """Spans lost every token to ``max_length``, or cover none: the head pools them as zeros."""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def span_value(field: str, value: Any) -> list[list[int]]:
    """A row's spans as ``[[start, end, text], ...]`` (text 0: ``text``, 1: ``text_pair``), or ValueError(reason).
    A CSV cell may hold them as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"field {field!r} (spans) holds {_short(value)}, not a JSON list of [start, end] spans") from None
    spans = []
    for span in value if isinstance(value, (list, tuple)) else [None]:
        if isinstance(span, (list, tuple)):  # 5.0: a whole number (Arrow reads a column of them as floats)
            span = [int(x) if isinstance(x, float) and x.is_integer() else x for x in span]
        if (not isinstance(span, (list, tuple)) or len(span) not in (2, 3)
                or any(isinstance(x, bool) or not isinstance(x, int) for x in span)):
            raise ValueError(f"field {field!r} (spans) holds {_short(value)}; expected a list of [start, end] character spans "
                             "(whole numbers; [start, end, 1] for a span of text_pair)")
        start, end, text = (*span, 0) if len(span) == 2 else span
        if text not in (0, 1):
            raise ValueError(f"field {field!r} (spans): span {list(span)}: its third number must be 0 (text) or 1 (text_pair)")
        if not 0 <= start <= end:
            raise ValueError(f"field {field!r} (spans): span {list(span)} is not [start, end] with 0 <= start <= end")
        spans.append([start, end, text])
    return spans


def check_span_bounds(row: Mapping[str, Any], field: str) -> None:
    """Each of a prepared row's spans ends within its text (and a span of ``text_pair`` has one)."""
    for start, end, text in row["spans"]:
        column = ("text", "text_pair")[text]
        if column not in row:
            raise ValueError(f"field {field!r} (spans): span {[start, end, text]} is in text_pair, and the task has none")
        if end > len(row[column]):
            raise ValueError(f"field {field!r} (spans): span [{start}, {end}] ends past the {len(row[column])} characters of "
                             f"{column}; spans count characters, end excluded")


def token_spans(spans: Sequence[Sequence[int]], offsets: Sequence[Sequence[int]], sequence_ids: Sequence[int | None],
                truncated: bool = True) -> list[list[int]]:
    """Each ``[start, end, text]`` character span as ``[first, last]`` token of one encoding (``offsets``: each token's
    characters in its own text; ``sequence_ids``: which text, None for special tokens; ``truncated``: the encoding was
    cut at ``max_length``); ``[-1, -1]`` for no span, ``[-2, -2]`` for one cut off (past its text's last kept token of a
    truncated encoding), ``[-3, -3]`` for one no token covers (spaces, characters the tokenizer drops)."""
    out = []
    for start, end, text in spans:
        kept = [(a, b) for (a, b), seq in zip(offsets, sequence_ids) if seq == text and b > a]
        inside = [i for i, ((a, b), seq) in enumerate(zip(offsets, sequence_ids)) if seq == text and b > a and a < end and b > start]
        if end <= start:
            out.append(list(NO_SPAN))
        elif inside:
            out.append([inside[0], inside[-1]])
        else:
            out.append(list(LOST_SPAN) if truncated and (not kept or start >= kept[-1][1]) else list(BLANK_SPAN))
    return out


def pools_spans(task: Any) -> bool:
    """Whether the task's head pools its spans (``head_options: {pooling: spans}``)."""
    options = getattr(task, "head_options", None)
    return isinstance(options, Mapping) and options.get("pooling") == "spans"


def span_misfit(task: Any, head_options: Any) -> str | None:
    """Why a head with ``head_options`` (another task's: ``evaluate_with``, ``--head``, a teacher) cannot read ``task``'s
    rows, or None: a spans head needs the task to map spans, as many as it pools when the task's own head pools them."""
    if not isinstance(head_options, Mapping) or head_options.get("pooling") != "spans":
        return None
    wanted = head_options.get("num_spans") or 2
    if "spans" not in task.input_map:
        return f"that head pools {wanted} spans of each row, and task {task.id!r} maps no spans (inputs: {{spans: <field>}})"
    if pools_spans(task) and (task.head_options.get("num_spans") or 2) != wanted:
        return f"that head pools {wanted} spans of each row, and the rows of task {task.id!r} have {task.head_options.get('num_spans') or 2}"
    return None


def check_span_counts(task: Any, rows: Any, where: str) -> None:
    """Every row of a tokenized split of a task that maps spans has as many, and (when its head pools them) the number the
    head pools (``num_spans``, default 2): checked before training, a DataError naming the task, the rows and the fix."""
    from mtcore.errors import DataError

    if SPAN_TOKENS not in getattr(rows, "column_names", ()) or not rows.num_rows:
        return
    import pyarrow.compute as pc

    lengths = pc.list_value_length(rows.with_format("arrow")[SPAN_TOKENS])
    counts = sorted(pc.unique(lengths).to_pylist())
    if len(counts) > 1:
        first = lengths[0].as_py()
        odd = next(i for i, n in enumerate(lengths.to_pylist()) if n != first)
        raise DataError(f"task {task.id!r}, {where}: row {odd + 1} has {lengths[odd].as_py()} span(s) and row 1 {first}; every row "
                        "needs the same number (write [0, 0] for a span a row lacks)")
    wanted = task.head_options.get("num_spans") or 2
    if pools_spans(task) and counts[0] != wanted:
        before = f", or (before training) set head_options: {{num_spans: {counts[0]}}}" if counts[0] else ""
        raise DataError(f"task {task.id!r}, {where}: rows have {counts[0]} span(s) and the head pools {wanted} (head option num_spans"
                        f"{'' if task.head_options.get('num_spans') else ', default 2'}); give each row {wanted} (write [0, 0] for "
                        f"a span a row lacks){before}")


def check_read_counts(task_id: str, rows: Any, where: str, reader: str, head_options: Any) -> None:
    """Rows of ``task_id`` read by another task's head (``reader``: "the head of 'x', which scores them,", a teacher) have
    as many spans as that head pools when it pools spans (a DataError naming both, before any batch runs)."""
    from mtcore.errors import DataError

    if not isinstance(head_options, Mapping) or head_options.get("pooling") != "spans":
        return
    wanted = head_options.get("num_spans") or 2
    if SPAN_TOKENS in getattr(rows, "column_names", ()) and rows.num_rows and len(rows[0][SPAN_TOKENS]) != wanted:
        raise DataError(f"task {task_id!r}, {where}: rows have {len(rows[0][SPAN_TOKENS])} span(s), and {reader} pools {wanted}; "
                        f"give each row {wanted} (write [0, 0] for a span a row lacks)")


def _count(rows: Any, marker: list[int]) -> tuple[int, int, int]:
    """``(rows, spans, first row)`` of a tokenized split whose spans are ``marker`` (read from ``span_tokens``)."""
    names = getattr(rows, "column_names", None)
    if names is None or SPAN_TOKENS not in names:
        return 0, 0, 0
    found = [sum(1 for span in row if span[0] == marker[0]) for row in rows.with_format("arrow")[SPAN_TOKENS].to_pylist()]
    return sum(1 for n in found if n), sum(found), next((i + 1 for i, n in enumerate(found) if n), 0)


def count_cut_spans(rows: Any) -> tuple[int, int]:
    """``(rows, spans)`` of a tokenized split whose spans ``max_length`` cut off (works on a cache hit)."""
    return _count(rows, LOST_SPAN)[:2]


def warn_cut_spans(rows: Any, task_id: str, where: str, max_length: int) -> int:
    """One :class:`CutSpansWarning` line when spans of ``rows`` were cut off, one when no token covers some (spaces,
    characters the tokenizer drops); returns how many spans have no token."""
    cut_rows, spans = count_cut_spans(rows)
    if spans:
        warnings.warn(f"task {task_id!r}, {where}: {spans} span(s) of {cut_rows} of {rows.num_rows} rows have no token (cut off past "
                      f"max_length {max_length}); the head pools them as zeros: raise max_length, or check the spans",
                      CutSpansWarning, stacklevel=3)
    blank_rows, blank, first = _count(rows, BLANK_SPAN)
    if blank:
        warnings.warn(f"task {task_id!r}, {where}: {blank} span(s) of {blank_rows} rows cover no token (only spaces, or characters "
                      f"the tokenizer drops; the first in row {first}); the head pools them as zeros: check the spans",
                      CutSpansWarning, stacklevel=3)
    return spans + blank
