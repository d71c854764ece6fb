"""Fixtures: the installed registry and a way to read a task's source the way mtcore does."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PACKAGE = "mt_nli"


@pytest.fixture(scope="session")
def registry():
    from mtcore.plugins import load_registry

    return load_registry(refresh=True, warn=False)


@pytest.fixture
def read_source(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``read_source(task, "local", splits, data_dir=..., **option_overrides)`` -> {split: prepared Dataset}.

    Calls the source's loader as ``load_task_data`` does (``loader(task, splits, **options)``,
    ``data_dir`` for local sources, a private ``cache_dir``), then mtcore's validation and
    canonicalisation (``prepare_split``), so labels come back as class ids.
    """
    from mtcore.data.prepare import prepare_split
    from mtcore.refs import resolve

    def read(task, source: str, splits: Sequence[str] = ("train", "validation", "test"), *, raw: bool = False, **overrides: Any):
        spec = task.sources[source]
        options = {**spec.options, **overrides}
        loaded = resolve(spec.loader)(task, tuple(splits), cache_dir=str(tmp_path / "hf-cache"), **options)
        if raw:
            return dict(loaded)
        return {split: prepare_split(data, task, split, origin=f"{source} {split}") for split, data in loaded.items()}

    return read


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A tiny random BERT whose vocabulary holds the words of this plugin's samples (built offline)."""
    import re
    from importlib import resources

    from mtcore.testing.tiny import build_tiny_encoder

    words: set[str] = set()
    for path in _sample_files(resources.files(PACKAGE) / "sample"):
        words.update(re.findall(r"\w+", path.read_text(encoding="utf-8-sig").lower()))
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), "bert", words=sorted(words)[:3000])


def _sample_files(folder):
    for item in folder.iterdir():
        if item.is_dir():
            yield from _sample_files(item)
        elif item.name.endswith((".jsonl", ".csv", ".tsv")):
            yield item
