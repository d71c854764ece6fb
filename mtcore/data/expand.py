"""``row_expand``: one record of a nested layout -> the rows it holds (a reader option).

MultiRC-style files hold a passage per line with its questions and answers inside; a
``row_expand`` function (``"module:function"`` or a callable) turns each record into its rows.
:func:`mtcore.data.readers.iter_rows` applies it to files, :mod:`mtcore.predict.inputs` to
``mt predict --input`` rows. A record the function cannot read is one line naming the file and row.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, DataError, MtError, did_you_mean
from mtcore.refs import resolve

RowExpander = Callable[[Mapping[str, Any]], Iterable[Mapping[str, Any]]]


def make_row_expander(spec: Any) -> RowExpander | None:
    """A function from a ``row_expand`` option (a callable or a ``"module:func"`` reference) that
    turns one record of a nested layout into the rows it holds (a MultiRC-style passage into one
    row per answer, a ReCoRD-style passage into one row per query)."""
    if spec is None:
        return None
    try:
        expand = resolve(spec) if isinstance(spec, str) else spec
    except MtError as exc:  # a misspelt function: the option and its value named, and what the module has
        raise ConfigError(f"row_expand {spec!r}: {exc}{_near_functions(spec)}") from None
    if not callable(expand):
        raise ConfigError(f"row_expand must be a 'module:function' that turns one record into a list of rows, not {spec!r}")
    return expand


def _near_functions(spec: str) -> str:
    module, _, attr = spec.partition(":")
    try:
        names = [n for n in dir(importlib.import_module(module)) if not n.startswith("_")]
    except ImportError:
        return ""
    return did_you_mean(attr, names)


def expanded_rows(path: Path, rows: Iterable[tuple[int, dict[str, Any]]], expand: RowExpander | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` of every row ``expand`` makes of each record (the records as they are without it)."""
    for number, row in rows:
        if expand is None:
            yield number, row
            continue
        try:
            produced = [dict(item) for item in expand(row)]
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            detail = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else str(exc) or type(exc).__name__
            raise DataError(f"{path} row {number}: {detail} (row_expand {getattr(expand, '__qualname__', expand)})") from None
        for item in produced:
            yield number, item
