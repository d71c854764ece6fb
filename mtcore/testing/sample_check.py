"""Is a task's shipped sample present, readable and valid? Checked through the real data pipeline.

The sample is read by the task's own ``sample`` loader (:func:`mtcore.data.load_raw`) and every
split goes through :func:`mtcore.data.prepare_split` — the task's preprocessing steps, the
``inputs`` mapping and the label mapping — exactly as training would, so a row with a missing
field or a label outside ``labels`` is reported with its file and row. No tokenizer is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mtcore.errors import MtError
from mtcore.task import SPLITS, Task


def sample_splits(task: Task) -> list[str]:
    """The splits the task's sample declares (its ``files`` option), in canonical order."""
    source = task.sources.get("sample")
    if source is None:
        return []
    files = source.options.get("files")
    if isinstance(files, dict) and files:
        return [split for split in SPLITS if split in files]
    return ["test"] if task.evaluate_only else ["train", "validation"]


def _strip_task(message: str, task: Task) -> str:
    prefix = f"task {task.id!r}, "
    return message[len(prefix):] if message.startswith(prefix) else message


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """No ``datasets`` progress bars inside (restored after)."""
    from datasets.utils import logging as ds_logging

    was_on = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            ds_logging.enable_progress_bar()


def check_sample(task: Task, *, cache_dir: str | Path | None = None) -> list[str]:
    """Problems with the task's ``sample`` source (empty list: it loads and every row is valid)."""
    if "sample" not in task.sources:
        return ["has no 'sample' source: ship a small sample in the package (Source.sample) so demos and tests run offline"]
    with quiet_datasets():
        return _check_sample(task, cache_dir)


def _check_sample(task: Task, cache_dir: str | Path | None) -> list[str]:
    from mtcore.data.prepare import prepare_split
    from mtcore.data.task_data import load_raw

    splits = sample_splits(task)
    problems = []
    if not task.evaluate_only and "train" not in splits:
        problems.append(f"the sample has no train split (it has: {', '.join(splits) or 'none'})")
    try:
        raw = load_raw(task, "sample", splits=splits, cache_dir=cache_dir)
    except MtError as exc:
        return problems + [f"sample: {_strip_task(str(exc), task)}"]
    except Exception as exc:  # a plugin loader that crashed
        return problems + [f"sample loader failed: {type(exc).__name__}: {' '.join(str(exc).split())}"]
    for split, dataset in raw.items():
        try:
            prepared: Any = prepare_split(dataset, task, split, origin=f"sample {split}")
        except MtError as exc:
            problems.append(f"sample {split}: {_strip_task(str(exc), task)}")
            continue
        except Exception as exc:
            problems.append(f"sample {split}: {type(exc).__name__}: {' '.join(str(exc).split())}")
            continue
        if split != "test" and prepared.num_rows == 0:
            problems.append(f"sample {split}: no rows")
    return problems
