"""Row counts of a task's shipped sample, for ``mt show-task``: read by mtcore's own reader
(:func:`mtcore.data.readers.iter_rows`, plain Python: no torch, transformers or datasets), so a CoNLL file counts
sentences and a SQuAD-layout JSON file questions, as ``mt check`` counts them."""

from __future__ import annotations

import contextlib
from importlib import resources
from typing import Any

from mtcore.task import SPLITS, Task

#: Source options that are no reader's (where the sample is, which files, how a plugin's loader splits them).
_NOT_READER = {"package", "files", "corpus_files", "format", "cache_dir"}


def _count(path: Any, fmt: str, options: dict[str, Any]) -> int:
    from mtcore.data.readers import detect_format, iter_rows, reader_option_names

    fmt = detect_format(path, fmt)
    known = reader_option_names(fmt) - {"row_expand", "row_filter"}  # records are counted, before any filter
    return sum(1 for _ in iter_rows(path, fmt, **{k: v for k, v in options.items() if k in known}))


def sample_sizes(task: Task) -> dict[str, int | str]:
    """``{split: rows}`` of the task's ``sample`` source (``{file: rows}`` for a corpus split at load time);
    empty when it has none; a split whose file cannot be read gets a short reason instead of a count.
    With ``row_expand`` (nested records, each holding rows) it counts records: ``"24 records"``."""
    from mtcore.errors import MtError

    source = task.sources.get("sample")
    if source is None or "package" not in source.options:
        return {}
    options = dict(source.options)
    shared = {k: v for k, v in options.items() if k not in _NOT_READER}
    sizes: dict[str, int | str] = {}
    for split, name in (options.get("files") or options.get("corpus_files") or {}).items():
        names = name if isinstance(name, list) else [name]
        own = shared.get(split)  # a split's own reader options win over those of every file (as the sources read them)
        reader = {**{k: v for k, v in shared.items() if k not in SPLITS}, **(own if isinstance(own, dict) else {})}
        try:
            total = 0
            for item in names:
                resource = resources.files(options["package"]).joinpath(item)
                if not resource.is_file():
                    raise FileNotFoundError(item)
                with contextlib.ExitStack() as stack:
                    total += _count(stack.enter_context(resources.as_file(resource)), options.get("format", "auto"), reader)
            sizes[split] = f"{total} records" if options.get("row_expand") else total  # rows come out of records when read
        except (OSError, ModuleNotFoundError):
            sizes[split] = f"missing ({', '.join(names)} in package {options['package']!r})"
        except (UnicodeDecodeError, ValueError, MtError) as exc:
            reason = " ".join(str(exc).split())[:120]
            sizes[split] = f"unreadable ({', '.join(names)}: {reason})" if reason else f"unreadable ({', '.join(names)})"
    return sizes
