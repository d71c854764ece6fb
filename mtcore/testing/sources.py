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


DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")


def _sample_files(folder: Any) -> Iterator[Any]:
    if not folder.is_dir():
        return
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.name.startswith((".", "__pycache__")):
            continue
        if item.is_dir():
            yield from _sample_files(item)
        elif item.name.endswith(DATA_SUFFIXES):
            yield item


def package_of(name: str) -> str:
    """The import package of a plugin given by package, entry-point or distribution name
    (``mt_toxic``, ``toxic`` or ``mt-toxic``); raises ValueError in one line when none fits."""
    import importlib.util
    from importlib.metadata import entry_points

    from mtcore.hookspecs import PROJECT

    if "-" not in name and importlib.util.find_spec(name) is not None:
        return name
    plugins = [ep for ep in entry_points(group=PROJECT) if name in (ep.name, ep.dist.name if ep.dist else None)]
    if plugins:
        return plugins[0].value.split(":", 1)[0].split(".", 1)[0]
    raise ValueError(f"{name!r} is neither an importable package nor an installed plugin: pass the plugin's import package "
                     f"(e.g. {name.replace('-', '_')!r}) and install the plugin (pip install -e .)")


def sample_words(package: str, folder: str | None = None, limit: int = 3000) -> list[str]:
    """The words of a plugin's shipped data files (a vocabulary for a tiny test encoder).

    ``folder`` (e.g. ``"sample"``) limits the search to one folder of the package; by default
    every ``.jsonl``/``.json``/``.csv``/``.tsv`` file in the package counts, wherever the
    sample lives (``sample/``, ``data/``, ...). ``package`` may also be the plugin's name. Over ``limit`` words,
    the most frequent are kept (ids and rare words go first), in sorted order.
    """
    from collections import Counter

    root = resources.files(package_of(package))
    counts: Counter[str] = Counter()
    for path in _sample_files(root / folder if folder else root):
        counts.update(re.findall(r"\w+", path.read_text(encoding="utf-8-sig").lower()))
    return sorted(word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit])
