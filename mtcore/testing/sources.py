"""Reading a task's source the way ``load_task_data`` does, for plugin tests."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any


def read_source(task: Any, source: str, splits: Sequence[str] = ("train", "validation", "test"), *,
                cache_dir: str | Path, raw: bool = False, **overrides: Any) -> dict[str, Any]:
    """``{split: Dataset}`` of one of ``task``'s sources, prepared (labels as class ids) unless ``raw``.

    Calls the source's loader as ``load_task_data`` does (``loader(task, splits, **options)``;
    pass ``data_dir=`` for local sources), then mtcore's validation (``prepare_split``).
    """
    from mtcore.data.prepare import prepare_split
    from mtcore.refs import resolve

    spec = task.sources[source]
    options = {**spec.options, **overrides}
    loaded = resolve(spec.loader)(task, tuple(splits), cache_dir=str(cache_dir), **options)
    if raw:
        return dict(loaded)
    return {split: prepare_split(data, task, split, origin=f"{source} {split}") for split, data in loaded.items()}


def _sample_files(folder: Any) -> Iterator[Any]:
    for item in folder.iterdir():
        if item.is_dir():
            yield from _sample_files(item)
        elif item.name.endswith((".jsonl", ".csv", ".tsv")):
            yield item


def sample_words(package: str, folder: str = "sample", limit: int = 3000) -> list[str]:
    """The words of a plugin's shipped sample files (a vocabulary for a tiny test encoder)."""
    words: set[str] = set()
    for path in _sample_files(resources.files(package) / folder):
        words.update(re.findall(r"\w+", path.read_text(encoding="utf-8-sig").lower()))
    return sorted(words)[:limit]
