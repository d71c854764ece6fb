"""A task's initial head depends on the seed and its task id only, not on the other tasks of the run."""

from __future__ import annotations

from pathlib import Path

import torch

from mtcore.model import MultitaskModel
from mtcore.plugins import get_task


def _build(encoder: Path, task_ids: list[str], seed: int) -> tuple[MultitaskModel, torch.Tensor]:
    torch.manual_seed(seed)
    model = MultitaskModel(str(encoder), [get_task(t) for t in task_ids])
    return model, torch.rand(4)  # the global stream right after building


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_head_is_the_same_alone_or_among_other_tasks_and_changes_with_the_seed(small_encoder: Path) -> None:
    alone, after_alone = _build(small_encoder, ["rsg:terra"], seed=0)
    mixed, after_mixed = _build(small_encoder, ["nli:xnli-ru", "rsg:parus", "rsg:terra"], seed=0)
    reordered, _ = _build(small_encoder, ["rsg:terra", "nli:xnli-ru"], seed=0)
    other_seed, _ = _build(small_encoder, ["rsg:terra"], seed=1)

    terra = alone.heads["rsg:terra"].state_dict()
    assert _same(terra, mixed.heads["rsg:terra"].state_dict())
    assert _same(terra, reordered.heads["rsg:terra"].state_dict())
    assert _same(mixed.heads["nli:xnli-ru"].state_dict(), reordered.heads["nli:xnli-ru"].state_dict())
    assert not _same(terra, other_seed.heads["rsg:terra"].state_dict())
    # the heads draw from a forked generator: the global stream after the model is what the seed alone gives
    torch.manual_seed(0)
    assert torch.equal(after_alone, torch.rand(4)) and torch.equal(after_mixed, after_alone)


def test_a_head_added_later_starts_as_if_built_with_the_model(small_encoder: Path) -> None:
    built, _ = _build(small_encoder, ["rsg:danetqa", "rsg:terra"], seed=5)
    added, _ = _build(small_encoder, ["rsg:danetqa"], seed=5)
    torch.rand(10)  # whatever ran in between
    added.add_head("rsg:terra", get_task("rsg:terra"))
    assert _same(built.heads["rsg:terra"].state_dict(), added.heads["rsg:terra"].state_dict())
