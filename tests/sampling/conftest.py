"""Stub task data for the sampling tests: lengths, rows and a collator, nothing tokenized."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


class StubTaskData:
    """Follows :class:`mtcore.sampling.protocol.TaskDataLike` with plain lists."""

    def __init__(self, name: str, lengths, *, evaluate_only: bool = False, split: str = "train", pad_to_multiple_of=None):
        self.task = SimpleNamespace(id=name, name=name, evaluate_only=evaluate_only)
        self._lengths = [int(x) for x in lengths]
        self.splits = {split: [{"idx": f"{name}-{i}", "length": n} for i, n in enumerate(self._lengths)]}
        self.collator = SimpleNamespace(pad_to_multiple_of=pad_to_multiple_of)

    def lengths(self, split: str):
        return self._lengths


def rsg_like_lengths(seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """An RSG-like mix: long DaNetQA passages, medium TERRa pairs, short PARus premises."""
    rng = np.random.default_rng(seed)
    spec = {"danetqa": (100, 400, 1749), "terra": (30, 120, 2616), "parus": (10, 30, 400)}
    return {name: rng.integers(lo, hi + 1, size=max(1, int(n * scale))) for name, (lo, hi, n) in spec.items()}


@pytest.fixture
def make_data():
    """``make_data({"a": lengths, ...}, evaluate_only={"b"})`` -> dict of stub task data."""

    def build(lengths_by_task, *, evaluate_only=(), pad_to_multiple_of=None):
        return {name: StubTaskData(name, lengths, evaluate_only=name in evaluate_only, pad_to_multiple_of=pad_to_multiple_of)
                for name, lengths in lengths_by_task.items()}

    return build


@pytest.fixture
def rsg_data(make_data):
    return make_data(rsg_like_lengths())


@pytest.fixture
def small_data(make_data):
    """Three tasks of very different sizes (fast to iterate many times)."""
    rng = np.random.default_rng(1)
    return make_data({"big": rng.integers(5, 60, 240), "mid": rng.integers(5, 60, 97), "tiny": rng.integers(5, 60, 13)})


@pytest.fixture
def rsg_lengths():
    """The RSG-like length generator (``rsg_lengths(seed=0, scale=1.0)``)."""
    return rsg_like_lengths
