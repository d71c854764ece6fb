"""Fixtures: the installed registry, a way to read a task's source as mtcore does, a tiny encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PACKAGE = "mt_russian_superglue"


@pytest.fixture(scope="session")
def registry():
    from mtcore.plugins import load_registry

    return load_registry(refresh=True, warn=False)


@pytest.fixture
def read_source(tmp_path: Path):
    """``read_source(task, "local", splits, data_dir=..., raw=False, **option_overrides)`` -> {split: Dataset}."""
    from mtcore.testing.sources import read_source

    return lambda task, source, splits=("train", "validation", "test"), **kw: read_source(
        task, source, splits, cache_dir=tmp_path / "hf-cache", **kw)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A tiny random BERT whose vocabulary holds the words of this plugin's samples (built offline)."""
    from mtcore.testing.sources import sample_words
    from mtcore.testing.tiny import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), "bert", words=sample_words(PACKAGE))
