"""CoNLL-style column files (CoNLL-2003, WikiNER, factRuEval exports, MultiCoNER): one token per line.

::

    EU B-ORG
    rejects O
    German B-MISC
    call O

    Peter B-PER
    Blackburn I-PER

Each line holds a token and its columns (tag, and in CoNLL-2003 part of speech and chunk before
it), separated by whitespace (``sep``: any run of spaces or tabs; set ``sep: "\\t"`` when tokens may
hold spaces). A blank line ends a sentence, and each sentence is one row whose fields are lists, one
item per token: ``{"tokens": [...], "label": [...]}``, what a ``token_classification`` task reads by
default. The first column is ``tokens`` and the last ``label``; ``columns`` names them all (CoNLL-2003:
``[tokens, pos, chunk, label]``; ``null`` drops a column). ``-DOCSTART-`` lines (document
boundaries) are skipped, and so are lines starting with ``comment`` when it is set (``"# id"``:
MultiCoNER's ``# id ...`` lines; off by default, since ``#`` can be a token). Spaces and tabs
around a line, and around each field with ``sep``, are dropped. A row's number is the
line its sentence starts on; a line with another number of columns than its sentence's first is
one error naming the file and the line.

A file to predict (``mt predict -i new.conll``: :func:`input_rows`) is read with the task's own
options, and may leave out the columns after its words: the words alone (one column) or the first
columns of the task's ``columns`` (those up to its words; gold tags after them are not needed).
Its words take the task's name for them (``inputs: {tokens: words}``), with or without ``columns``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, DataError

#: Reader options of the ``conll`` format (besides ``row_filter`` / ``row_expand``).
OPTIONS = {"encoding", "sep", "columns", "comment"}
_WHITESPACE = re.compile(r"[ \t]+")


def _default_names(width: int, tokens: str = "tokens") -> list[str | None]:
    return [tokens] + [f"column_{i + 1}" for i in range(1, width - 1)] + ["label"] if width > 1 else [tokens]


def _checked(path: Path, columns: Sequence[Any]) -> list[str | None]:
    if isinstance(columns, str) or not all(name is None or isinstance(name, str) for name in columns):
        raise ConfigError(f"{path}: the conll reader option columns is a list of column names (null drops one), "
                          f"e.g. [tokens, pos, chunk, label]; got {columns!r}")
    names = list(columns)
    kept = [name for name in names if name is not None]
    if len(set(kept)) != len(kept):
        raise ConfigError(f"{path}: the conll reader option columns names a column twice: {names!r}")
    return names


def _names(path: Path, columns: Sequence[Any] | None, width: int) -> list[str | None]:
    if columns is None:
        return _default_names(width)
    names = _checked(path, columns)
    if len(names) != width:
        raise ConfigError(f"{path}: its lines have {width} columns, and the reader option columns names {len(names)} ({names!r}); "
                          "name every column (null drops one)")
    return names


def _input_names(path: Path, columns: Sequence[Any] | None, width: int, tokens: str) -> list[str | None]:
    """The columns of a file to predict of ``width`` columns (see the module docstring)."""
    if columns is None:
        return _default_names(width, tokens)
    names = _checked(path, columns)
    if tokens not in names:
        raise ConfigError(f"{path}: the task reads CoNLL files with the columns {names!r}, none of them {tokens!r}, the words "
                          f"it tags; name that column {tokens!r} in the reader option columns")
    if width == len(names):
        return names
    if width == 1:
        return [tokens]
    if width < len(names) and tokens in names[:width]:
        return names[:width]
    fewest = names.index(tokens) + 1
    listed = [name if name is not None else "null" for name in names]
    first_columns = f"its first {fewest} columns ({', '.join(listed[:fewest])}), " if fewest > 1 else ""
    raise DataError(f"{path}: its lines have {width} columns, and the task reads CoNLL files of {len(names)} "
                    f"({', '.join(listed)}); give the words alone (one per line), {first_columns}or every column")


def conll_rows(path: Path, encoding: str = "utf-8-sig", sep: str | None = None, columns: Sequence[Any] | None = None,
               comment: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line where the sentence starts, {column: [one value per token]})`` (see the module docstring)."""
    yield from _sentences(path, encoding, sep, comment, lambda width: _names(path, columns, width))


def input_rows(path: Path, *, tokens: str = "tokens", encoding: str = "utf-8-sig", sep: str | None = None,
               columns: Sequence[Any] | None = None, comment: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a CoNLL file to predict, read with a task's options, its words in the field ``tokens``: the
    task's ``columns``, or fewer (the words alone, or the columns up to them; see the module docstring)."""
    yield from _sentences(path, encoding, sep, comment, lambda width: _input_names(path, columns, width, tokens), words_alone=True)


def width(path: Path, *, encoding: str = "utf-8-sig", sep: str | None = None, comment: str | None = None, **_: Any) -> int:
    """The number of columns of the first token line of a CoNLL file (0: none), read with a task's options."""
    for _, row in _sentences(path, encoding, sep, comment, lambda n: [f"c{i}" for i in range(n)]):
        return len(row)
    return 0


def _sentences(path: Path, encoding: str, sep: str | None, comment: str | None, name: Callable[[int], list[str | None]],
               words_alone: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each sentence of ``path`` as a row, its columns named by ``name(width)`` at the first line. ``words_alone``
    (input to predict): in a file of one column, a line of one field is a word even when it starts like a
    comment (``#hash`` with ``comment: "#"``); a comment line there has more (``# id 12``)."""
    from mtcore.data.readers import text_lines

    if sep is not None and (not isinstance(sep, str) or not sep):
        raise ConfigError(f"{path}: the conll reader option sep is a separator such as \"\\t\" (null: any whitespace), not {sep!r}")
    names: list[str | None] | None = None
    sentence: list[list[str]] = []
    start = 0

    def row() -> dict[str, Any]:
        assert names is not None
        return {name: [fields[i] for fields in sentence] for i, name in enumerate(names) if name is not None}

    for number, line in text_lines(path, encoding):
        text = line.strip()  # the line's outer spaces and tabs are never part of a token or a tag
        if comment and text.startswith(comment) and not (words_alone and names is not None and len(names) == 1
                                                          and len(text.split()) == 1):
            continue
        if not text:
            if sentence:
                yield start, row()
                sentence = []
            continue
        fields = _WHITESPACE.split(text) if sep is None else [field.strip() for field in text.split(sep)]
        if text.split()[0] == "-DOCSTART-":  # whatever the separator: CoNLL-2003 writes it with spaces
            if sentence:
                yield start, row()
                sentence = []
            continue
        if names is None:
            names = name(len(fields))
        if len(fields) != len(names):
            raise DataError(f"{path} row {number}: {len(fields)} columns where the file's lines have {len(names)} "
                            f"({text[:60]!r}); CoNLL files hold one token and its tags per line, separated by "
                            f"{'whitespace' if sep is None else repr(sep)}")
        if not sentence:
            start = number
        sentence.append(fields)
    if sentence:
        yield start, row()
