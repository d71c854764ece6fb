"""Task sampling and batching: which task trains at each step and which rows form its batch.

* :mod:`mtcore.sampling.base` — :class:`Sampler`, the base class of task samplers;
* :mod:`mtcore.sampling.samplers` — proportional, temperature, uniform, round-robin, annealed,
  fixed weights;
* :mod:`mtcore.sampling.batching` — random, length-grouped and token-budget batches;
* :mod:`mtcore.sampling.schedule` — cycles, rounds and stop rules as a pure function of
  ``(seed, epoch, step)``;
* :mod:`mtcore.sampling.batch_sampler` — :class:`MultitaskBatchSampler`.

Names are resolved lazily so importing this package stays cheap.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

_LAZY = {
    "Sampler": "mtcore.sampling.base",
    "MultitaskBatchSampler": "mtcore.sampling.batch_sampler",
    "TaskDataLike": "mtcore.sampling.protocol",
    "ProportionalSampler": "mtcore.sampling.samplers",
    "TemperatureSampler": "mtcore.sampling.samplers",
    "UniformSampler": "mtcore.sampling.samplers",
    "RoundRobinSampler": "mtcore.sampling.samplers",
    "AnnealedSampler": "mtcore.sampling.samplers",
    "FixedWeightsSampler": "mtcore.sampling.samplers",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
