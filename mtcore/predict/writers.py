"""Prediction file writers registered as ``jsonl`` and ``csv`` (``mt predict --format NAME``).

A writer is called as ``writer(task, rows, output_path)``: ``rows`` is a list of dicts with
``idx``, ``label`` (in the dataset's stored form, e.g. a bool for DaNetQA) and optionally
``probabilities`` (one per class, in ``task.labels`` order; for token classification one such
list per word, None for a word cut by truncation), and any more fields of the task's kind
(extractive QA: ``answer_start``, ``score``), which both writers write too; it writes the file
atomically and returns the paths written. The CSV writer leaves per-word probabilities out (they are no columns).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.outputs import write_text_atomic

_BASIC = ("idx", "label", "probabilities")


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
        record.update({key: _plain(value) for key, value in row.items() if key not in _BASIC})
        lines.append(json.dumps(record, ensure_ascii=False))
    write_text_atomic(path, "".join(line + "\n" for line in lines))
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
    extra = [key for key in (rows[0] if rows else {}) if key not in _BASIC]  # extractive QA: answer_start, score
    writer.writerow(["idx", "label"] + ([f"p_{name}" for name in labels] if with_probs else []) + extra)
    for row in rows:
        label = _plain(row.get("label"))
        if isinstance(label, (list, dict)):
            label = json.dumps(label, ensure_ascii=False)
        record = [_plain(row.get("idx")), label]
        if with_probs:
            probs = _plain(row.get("probabilities")) or []
            record += [f"{float(p):.6g}" for p in probs] + [""] * (len(labels) - len(probs))
        record += [_plain(row.get(key)) for key in extra]
        writer.writerow(record)
    write_text_atomic(path, buffer.getvalue())
    return [path]


def write_staged(writer: Any, component_id: str, task: Any, rows: Sequence[Mapping[str, Any]], output: str | Path) -> list[Path]:
    """Run a plugin's writer into a hidden folder beside ``output``, then move what it wrote into place.

    A writer that fails (a bug, a full disk) leaves nothing behind, whatever it had written; the
    missing folders of ``output`` are created for it (and removed on failure); the files get the
    modes ``open()`` gives. A writer's own exception becomes one line naming it
    (:class:`~mtcore.errors.PluginError`); an ``OSError`` passes through for the caller to report.
    """
    import shutil
    import tempfile

    from mtcore.errors import MtError, PluginError
    from mtcore.outputs import make_parents, remove_empty, share_modes

    output = Path(output)
    created = make_parents(output.parent)
    stage = Path(tempfile.mkdtemp(prefix=".mt-write-", dir=output.parent))
    try:
        try:
            returned = writer(task, rows, stage / output.name) or []
        except (MtError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug, reported as one line naming the writer
            text = " ".join(str(exc).split())
            raise PluginError(f"writer {component_id!r} failed: {type(exc).__name__}{': ' + text if text else ''}; "
                              "nothing was written") from exc
        outside = [Path(p) for p in returned if not Path(p).resolve().is_relative_to(stage.resolve())]
        moved = []
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            target = output.parent / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            share_modes(path)
            path.replace(target)
            moved.append(target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        remove_empty(created)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return moved + outside
