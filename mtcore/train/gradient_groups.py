"""Groups of the shared encoder's parameters, for gradient combiners that work group by group (``gradvac``'s
``groups`` option).

A :class:`~mtcore.train.losses.GradientCombiner` sees each task's gradient on the shared parameters as one flat
vector, the trainable encoder parameters in :func:`~mtcore.train.optim.split_parameters`' order. A grouping cuts
that vector into :class:`Run` s, slices of consecutive parameters of one group, so a Gram matrix can be built and
a combination applied per group:

* ``encoder`` — one group, the whole encoder (the default, as before);
* ``layers`` — one group per depth, as ``optimizer.layer_decay`` counts it (:func:`~mtcore.model.param_groups.encoder_depths`):
  the embeddings (with the tables every layer reads), each transformer layer, what comes after the stack (pooler,
  final norm), as GradVac's paper sets targets per layer of its Transformer (LibMTL's ``GradVac_group_type`` 1 goes
  finer: one group per module, each linear map and norm);
* ``parameters`` — one group per parameter tensor (LibMTL's ``GradVac_group_type`` 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mtcore.errors import ConfigError

GROUPINGS = ("encoder", "layers", "parameters")


@dataclass(frozen=True)
class Run:
    """Consecutive entries ``[start, stop)`` of the flat gradient that belong to group ``group``."""

    group: int
    start: int
    stop: int


def check_grouping(value: object, strategy: str) -> str:
    """``value`` if it names a grouping, else a :class:`ConfigError` naming the option."""
    if value not in GROUPINGS:
        raise ConfigError(f"loss strategy {strategy!r}: option 'groups' (what shares one set of target cosines) must be "
                          f"one of {', '.join(repr(g) for g in GROUPINGS)}, got {value!r}")
    return str(value)


def group_runs(model: nn.Module, grouping: str) -> tuple[list[Run], list[str]]:
    """The runs of ``model``'s shared parameters (its trainable encoder parameters, in the loop's order) and the
    groups' names, for ``grouping`` (see the module docstring)."""
    from mtcore.train.optim import split_parameters

    shared, _ = split_parameters(model)
    if grouping == "encoder":
        names = ["encoder"]
        label = ["encoder"] * len(shared)
    elif grouping == "parameters":
        labels = {id(p): name for name, p in model.named_parameters()}
        label = [labels[id(p)] for p in shared]
        names = list(label)
    else:
        from mtcore.model.param_groups import encoder_depths

        depths = encoder_depths(model.encoder, what="config key 'loss.options.groups': 'layers'",
                                fix="use groups 'parameters' (or 'encoder')")
        label = [depths[id(p)][0] for p in shared]
        names = list(dict.fromkeys(label))
    index = {name: i for i, name in enumerate(names)}
    runs: list[Run] = []
    offset = 0
    for p, name in zip(shared, label):
        group, size = index[name], p.numel()
        if runs and runs[-1].group == group and runs[-1].stop == offset:
            runs[-1] = Run(group, runs[-1].start, offset + size)
        elif size:
            runs.append(Run(group, offset, offset + size))
        offset += size
    return runs, names


def group_grams(grads: list[torch.Tensor], runs: list[Run], groups: int) -> np.ndarray:
    """``(groups, K, K)``: each group's Gram matrix of the ``K`` flat task gradients, in float64."""
    from mtcore.train.gradient_balancers import gram

    grams = np.zeros((groups, len(grads), len(grads)))
    for run in runs:
        grams[run.group] += gram([g[run.start: run.stop] for g in grads])
    return grams


def combine_by_group(weights: np.ndarray, grads: list[torch.Tensor], runs: list[Run]) -> torch.Tensor:
    """The flat update whose slice in each run is ``Σⱼ weights[group, j] · gⱼ``."""
    out = torch.zeros_like(grads[0])
    for run in runs:
        part = out[run.start: run.stop]
        for w, g in zip(weights[run.group], grads):
            part.add_(g[run.start: run.stop], alpha=float(w))
    return out


def check_covers(runs: list[Run], length: int, strategy: str) -> None:
    """Refuse gradients whose length is not the grouped parameters' (the strategy was attached to another model)."""
    covered = runs[-1].stop if runs else 0
    if covered != length:
        raise ConfigError(f"loss strategy {strategy!r}: its parameter groups cover {covered} gradient entries, but the "
                          f"gradients have {length}; attach it to the model it trains (strategy.attach(model))")
