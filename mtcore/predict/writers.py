"""Prediction file writers registered as ``jsonl`` and ``csv`` (``mt predict --format NAME``).

A writer is called as ``writer(task, rows, output_path)``: ``rows`` is a list of dicts with
``idx``, ``label`` (in the dataset's stored form, e.g. a bool for DaNetQA) and optionally
``probabilities`` (one per class, in ``task.labels`` order; for token classification one such
list per word, None for a word cut by truncation); it writes the file atomically and returns
the paths written. The CSV writer leaves per-word probabilities out (they are no columns).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.outputs import make_parents, remove_empty, share_modes


def _atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it; nothing is left on failure.

    A symbolic link is written through (its target is replaced, the link stays); a FIFO or a
    device (``/dev/stdout``) is written to directly, never replaced by a file.
    """
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file() and not path.is_dir():
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return
    created = make_parents(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        share_modes(tmp)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        remove_empty(created)
        raise


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays as plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


def _floats(values: Any) -> Any:
    """Probabilities as floats: a list, or a list per word (None kept for words without one)."""
    return [None if v is None else _floats(v) if isinstance(v, (list, tuple)) else float(v) for v in values]


def _per_word(values: Any) -> bool:
    return any(v is None or isinstance(v, (list, tuple)) for v in _plain(values))


def write_jsonl(task: Any, rows: Sequence[Mapping[str, Any]], output_path: str | Path) -> list[Path]:
    """One JSON object per row: ``{"idx": ..., "label": ..., "probabilities": [...]}``."""
    path = Path(output_path)
    lines = []
    for row in rows:
        record = {"idx": _plain(row.get("idx")), "label": _plain(row.get("label"))}
        if row.get("probabilities") is not None:
            record["probabilities"] = _floats(_plain(row["probabilities"]))
        lines.append(json.dumps(record, ensure_ascii=False))
    _atomic_text(path, "".join(line + "\n" for line in lines))
    return [path]


def write_csv(task: Any, rows: Sequence[Mapping[str, Any]], output_path: str | Path) -> list[Path]:
    """``idx,label`` and one ``p_<label>`` probability column per class (when given)."""
    path = Path(output_path)
    labels = list(getattr(task, "labels", ()) or ())
    with_probs = any(row.get("probabilities") is not None and not _per_word(row["probabilities"]) for row in rows)
    if with_probs and not labels:
        width = max(len(_plain(row["probabilities"])) for row in rows if row.get("probabilities") is not None)
        labels = [str(i) for i in range(width)]
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["idx", "label"] + ([f"p_{name}" for name in labels] if with_probs else []))
    for row in rows:
        label = _plain(row.get("label"))
        if isinstance(label, (list, dict)):
            label = json.dumps(label, ensure_ascii=False)
        record = [_plain(row.get("idx")), label]
        if with_probs:
            probs = _plain(row.get("probabilities")) or []
            record += [f"{float(p):.6g}" for p in probs] + [""] * (len(labels) - len(probs))
        writer.writerow(record)
    _atomic_text(path, buffer.getvalue())
    return [path]
