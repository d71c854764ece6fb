"""Fixtures for the model tests: tiny offline encoders (built once per architecture) and batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtcore.model.heads.base import HeadSpec
from mtcore.testing import build_tiny_encoder



@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, Path]:
    """Lazily built tiny encoders: ``tiny_encoders[arch]`` is a directory AutoModel loads."""

    class _Cache(dict):
        def __missing__(self, arch: str) -> Path:
            path = build_tiny_encoder(tmp_path_factory.mktemp(f"enc-{arch}"), arch)
            self[arch] = path
            return path

    return _Cache()


@pytest.fixture(scope="session")
def heads_for_every_kind() -> dict[str, HeadSpec]:
    """One task per head kind (ids look like registered task ids)."""
    return {
        "demo:pair": HeadSpec("classification", 3, kind="pair_classification", labels=("a", "b", "c")),
        "demo:mlp": HeadSpec("mlp", 2, kind="text_classification", labels=("no", "yes"), options={"num_layers": 3, "activation": "gelu"}),
        "demo:score": HeadSpec("regression", 1, kind="regression"),
        "demo:tags": HeadSpec("multi_label", 4, kind="multi_label", labels=("w", "x", "y", "z"), options={"pooling": "mean"}),
        "demo:choice": HeadSpec("multiple_choice", 1, kind="multiple_choice"),
        "demo:ner": HeadSpec("token_classification", 5, kind="token_classification", labels=tuple("OBIES")),
    }


def random_batch(kind: str, *, batch: int = 3, length: int = 9, choices: int = 2, num_labels: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """A padded random batch with labels for a task of ``kind`` (the last row is padded)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, choices, length) if kind == "multiple_choice" else (batch, length)
    input_ids = torch.randint(5, 60, shape, generator=gen)
    input_ids[..., 0] = 2
    attention_mask = torch.ones(shape, dtype=torch.long)
    attention_mask[-1, ..., length - 3:] = 0
    input_ids = input_ids.masked_fill(attention_mask == 0, 0)
    token_type_ids = torch.zeros(shape, dtype=torch.long)
    token_type_ids[..., length // 2:] = 1
    if kind in ("text_classification", "pair_classification"):
        labels = torch.randint(0, num_labels, (batch,), generator=gen)
    elif kind == "regression":
        labels = torch.rand(batch, generator=gen)
    elif kind == "multi_label":
        labels = (torch.rand(batch, num_labels, generator=gen) > 0.5).float()
    elif kind == "multiple_choice":
        labels = torch.randint(0, choices, (batch,), generator=gen)
    else:
        labels = torch.randint(0, num_labels, (batch, length), generator=gen)
        labels[:, 0] = -100
        labels = labels.masked_fill(attention_mask == 0, -100)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids, "labels": labels}


@pytest.fixture(scope="session")
def batch_for():
    """``batch_for(spec)`` -> a random labelled batch matching a HeadSpec."""

    def build(spec: HeadSpec, **kwargs) -> dict[str, torch.Tensor]:
        return random_batch(spec.kind, num_labels=max(spec.num_labels, 2), **kwargs)

    return build


@pytest.fixture(scope="session")
def make_batch():
    """``make_batch(kind, batch=3, length=9, choices=2, num_labels=3, seed=0)`` -> a random labelled batch."""
    return random_batch
