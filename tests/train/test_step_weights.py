"""Each step's loss of a task is the mean over all its labelled items, whatever the batches: the divisors of
:func:`mtcore.train.step_weights.step_divisors`, with DDP's average over processes, give the gradient of one
batch holding every row (it was a mean of the batches' means: under a token budget, a row of a small batch counted
for more)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mtcore.data.batch import BatchData
from mtcore.train.monitor import LossMeter
from mtcore.train.step_weights import loss_items, step_divisors


def _batch(name, rows, labels, duplicate=False):
    return SimpleNamespace(name=name, size=len(rows), data=BatchData(x=rows, labels=labels), duplicate=duplicate)


def _loss(weight, batch):  # a head's masked mean over labelled items (label -100: none)
    logits = batch.data["x"] @ weight
    mask = batch.data["labels"] >= 0
    per_item = F.cross_entropy(logits, batch.data["labels"].clamp(min=0), reduction="none")
    return (per_item * mask).sum() / mask.sum().clamp(min=1)


def test_ranks_and_micro_steps_of_unequal_batches_give_the_gradient_of_one_batch():
    torch.manual_seed(0)
    weight = torch.randn(3, 2, requires_grad=True)
    rows = torch.randn(13, 3)
    labels = torch.randint(0, 2, (13,))
    labels[[2, 9]] = -100  # unlabelled rows count nothing
    cuts = [(0, 2), (2, 7), (7, 8), (8, 13)]  # rank r, micro-step m: cuts[2 * m + r] (a token budget's uneven batches)
    batches = [_batch("a", rows[i:j], labels[i:j]) for i, j in cuts]
    copy = _batch("a", rows[0:2], labels[0:2], duplicate=True)
    per_rank = {0: [[batches[0]], [batches[2]]], 1: [[batches[1]], [batches[3]]]}
    per_rank_copy = {0: [[batches[0]]], 1: [[copy]]}  # a tiny task: rank 1 reads rank 0's batch again

    def ddp_gradient(groups_by_rank):
        grads = []
        counts = {r: [[loss_items(b, "text_classification") for b in g] for g in groups] for r, groups in groups_by_rank.items()}
        total = sum(n for c in counts.values() for g in c for n in g)
        for rank, groups in groups_by_rank.items():  # what all_reduce(sum) gives every process
            divisors = step_divisors(groups, counts[rank], ["a"], processes=2, reduce_sum=lambda t: torch.full_like(t, float(total)))
            weight.grad = None
            for group, divs in zip(groups, divisors):
                for b, d in zip(group, divs):
                    (_loss(weight, b) / d).backward()
            grads.append(weight.grad.clone())
        return sum(grads) / len(grads)  # DDP averages over processes

    weight.grad = None
    _loss(weight, _batch("a", rows, labels)).backward()
    whole = weight.grad.clone()
    assert torch.allclose(ddp_gradient(per_rank), whole, atol=1e-6)
    weight.grad = None
    _loss(weight, batches[0]).backward()
    first = weight.grad.clone()
    assert torch.allclose(ddp_gradient(per_rank_copy), first, atol=1e-6)
    # the mean of the four batches' means (what DDP and loss / accumulation gave) is another gradient
    weight.grad = None
    (sum(_loss(weight, b) for b in batches) / 4).backward()
    assert not torch.allclose(weight.grad, whole, atol=1e-3)


def test_one_process_equal_batches_keep_the_plain_divisors():
    batches = [[_batch("a", torch.zeros(4, 3), torch.ones(4, dtype=torch.long))], [_batch("b", torch.zeros(4, 3), torch.ones(4, dtype=torch.long))],
               [_batch("a", torch.zeros(4, 3), torch.ones(4, dtype=torch.long))]]
    items = [[4], [4], [4]]
    assert step_divisors(batches, items, ["a", "b"], processes=1) == [[3.0], [3.0], [3.0]]  # loss / accumulation, as before
    assert step_divisors([batches[0]], [[0]], ["a"], processes=1) == [[math.inf]]  # nothing labelled: trains nothing
    tokens = _batch("t", torch.zeros(2, 3), torch.tensor([[0, -100, 1], [-100, -100, 1]]))
    assert loss_items(tokens, "token_classification") == 3
    assert loss_items(_batch("r", torch.zeros(2, 3), torch.tensor([0.5, float("nan")])), "regression") == 1


def test_the_logged_loss_is_the_mean_over_items_not_over_batches():
    meter = LossMeter(["a"], torch.device("cpu"))
    meter.add("a", torch.tensor(1.0), examples=2, tokens=20, items=2)
    meter.add("a", torch.tensor(4.0), examples=6, tokens=60, items=6)
    meter.add("a", torch.tensor(float("nan")), examples=0, tokens=0, items=0)  # a DDP copy: not in the loss or counts
    rows, _ = meter.flush()
    assert rows["a"]["loss"] == (1.0 * 2 + 4.0 * 6) / 8 and rows["a"]["batches"] == 3
    assert meter.take_counts() == (8, 80)


def test_class_weighted_batches_of_a_step_give_the_gradient_of_one_batch():
    """A head with class_weights takes the weighted mean over its batch (cross_entropy(weight=)): the batches of a step
    count their items' weight sums, not their item counts, or accumulation and DDP give another gradient."""
    from mtcore.model.heads.losses import classification_loss

    torch.manual_seed(1)
    weight = torch.randn(3, 2, requires_grad=True)
    features, labels = torch.randn(8, 3), torch.tensor([0, 0, 0, 1, 0, 1, 1, -100])
    class_weights = torch.tensor([0.1, 2.0])

    def loss(batch):
        return classification_loss(batch.data["x"] @ weight, batch.data["labels"], training=True, class_weights=class_weights)

    loss(_batch("a", features, labels)).backward()
    whole = weight.grad.clone()
    groups = [[_batch("a", features[:4], labels[:4])], [_batch("a", features[4:], labels[4:])]]
    items = [[loss_items(b, "text_classification", class_weights) for b in g] for g in groups]
    assert items == [[pytest.approx(2.3)], [pytest.approx(4.1)]]
    weight.grad = None
    for group, divisors in zip(groups, step_divisors(groups, items, ["a"], processes=1)):
        (loss(group[0]) / divisors[0]).backward()
    assert torch.allclose(weight.grad, whole, atol=1e-6)
    meter = LossMeter(["a"], torch.device("cpu"))  # the logged loss: the same weighted mean (weight sums were cut to ints)
    for group, counts in zip(groups, items):
        meter.add("a", loss(group[0]).detach(), examples=4, tokens=0, items=counts[0])
    rows, _ = meter.flush()
    assert rows["a"]["loss"] == pytest.approx(float(loss(_batch("a", features, labels)).detach()), rel=1e-6)
