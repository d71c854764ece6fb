"""``MultitaskBatchSampler`` (was ``src.dataloaders``): mtcore's, unchanged.

``MultitaskBatchSampler(tasks.data, "train", batch_size=12)`` yields batches with ``.name`` (the
task) and ``.data`` (collated tensors; ``batch.data.to(device)`` moves them in place); ``len()``
is the number of steps in an epoch. See :mod:`mtcore.sampling.batch_sampler` for the options
(samplers, ``mode="all"`` for the seed's metabatches, length grouping, resuming).
"""

from __future__ import annotations

from mtcore.sampling.batch_sampler import MultitaskBatchSampler

__all__ = ["MultitaskBatchSampler"]
