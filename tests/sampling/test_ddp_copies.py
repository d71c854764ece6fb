"""Under DDP, a task with fewer batches in its cycle than there are ranks (smaller than one global round): the
ranks beyond its batches read copies of lower ranks' batches, marked ``duplicate`` so that the training loop gives
them no weight and counts none of their rows (``examples_seen`` counted them once per rank)."""

from __future__ import annotations

import numpy as np
import pytest

from mtcore.sampling.batch_sampler import MultitaskBatchSampler


class _Collator:
    pad_to_multiple_of = None

    def __call__(self, rows):
        return {"rows": [row["idx"] for row in rows]}


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("mode", ["all", "single"])
def test_copies_of_a_tiny_task_are_marked_and_each_step_holds_its_rows_once(make_data, world, mode):
    data = make_data({"tiny": [5, 7, 9], "big": list(range(5, 45))})  # tiny: 1 batch of 3 rows; big: 10 batches of 4
    for task in data.values():
        task.collator = _Collator()
    samplers = [MultitaskBatchSampler(data, batch_size=4, mode=mode, sampler="uniform", seed=1, rank=r, world_size=world,
                                      group_by_length=False) for r in range(world)]
    seen = {"tiny": 0, "big": 0}
    for items in list(zip(*samplers))[:12]:  # the ranks' items, step by step (one epoch)
        groups = [item if isinstance(item, list) else [item] for item in items]
        for batches in zip(*groups):  # one task's batch on every rank
            name = batches[0].name
            seen[name] += 1
            assert [b.duplicate for b in batches] == [name == "tiny" and r >= 1 for r in range(world)]
            kept = [row for b in batches if not b.duplicate for row in b.data["rows"]]
            assert len(kept) == len(set(kept))  # no row twice in one step's global batch
            if name == "tiny":
                assert sorted(kept) == ["tiny-0", "tiny-1", "tiny-2"]
                assert all(b.data["rows"] == batches[0].data["rows"] for b in batches)  # the copies hold the same rows
    assert seen["tiny"] and seen["big"]
    # iter_indices keeps its shape: (task, rows) pairs, no flag
    first = next(MultitaskBatchSampler(data, batch_size=4, mode=mode, seed=1, rank=1, world_size=world).iter_indices())
    pairs = first if mode == "all" else [first]
    assert all(len(pair) == 2 and isinstance(pair[1], np.ndarray) for pair in pairs)


def test_a_cycle_with_enough_batches_wraps_across_rounds_without_copies(make_data):
    """3 batches on 2 ranks: the second round reads batch 2 and batch 0 again (the next pass starts early): trained
    again and counted, as one process's next cycle would be; only copies within one round are marked."""
    from mtcore.sampling.schedule import Batching, TaskPlan

    plan = TaskPlan("t", np.full(10, 8), Batching(4, group_by_length=False), seed=0, epoch=0, world_size=2)
    assert plan.batch_count(0) == 3
    assert not any(plan.duplicate(draw, rank) for draw in range(6) for rank in range(2))
    tiny = TaskPlan("t", np.full(3, 8), Batching(4, group_by_length=False), seed=0, epoch=0, world_size=4)
    assert [tiny.duplicate(0, rank) for rank in range(4)] == [False, True, True, True]
