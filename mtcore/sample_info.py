"""Row counts of a task's shipped sample, with the standard library only (for ``mt show-task``)."""

from __future__ import annotations

import csv
import io
from importlib import resources

from mtcore.task import Task


def _count(text: str, fmt: str, options: dict) -> int:
    if fmt in ("jsonl", "json"):
        return sum(1 for line in text.splitlines() if line.strip())
    if fmt in ("csv", "tsv"):
        sep = options.get("sep", "\t" if fmt == "tsv" else ",")
        quoting = csv.QUOTE_NONE if options.get("quoting") == "none" else csv.QUOTE_MINIMAL
        rows = sum(1 for row in csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting) if row)
        return rows - (0 if options.get("header", True) is None or options.get("header") is False else 1)
    raise ValueError(fmt)


def sample_sizes(task: Task) -> dict[str, int | str]:
    """``{split: rows}`` of the task's ``sample`` source (``{file: rows}`` for a corpus split at load time);
    empty when it has none; a split whose file cannot be read gets a short reason instead of a count.
    With ``row_expand`` (nested records, each holding rows) it counts records: ``"24 records"``."""
    source = task.sources.get("sample")
    if source is None or "package" not in source.options:
        return {}
    options = dict(source.options)
    sizes: dict[str, int | str] = {}
    for split, name in (options.get("files") or options.get("corpus_files") or {}).items():
        names = name if isinstance(name, list) else [name]
        try:
            total = 0
            for item in names:
                text = resources.files(options["package"]).joinpath(item).read_text(encoding="utf-8-sig")
                fmt = options.get("format", "auto")
                if fmt == "auto":
                    fmt = item.rsplit(".", 1)[-1]
                total += _count(text, fmt, options)
            sizes[split] = f"{total} records" if options.get("row_expand") else total  # rows come out of records when read
        except (OSError, ModuleNotFoundError):
            sizes[split] = f"missing ({', '.join(names)} in package {options['package']!r})"
        except (UnicodeDecodeError, ValueError):
            sizes[split] = f"unreadable ({', '.join(names)})"
    return sizes
