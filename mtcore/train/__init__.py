"""The training engine behind ``mt train`` and :class:`mtcore.Trainer`.

Modules: :mod:`~mtcore.train.config` (schema), :mod:`~mtcore.train.config_io` (loading,
overrides, errors), :mod:`~mtcore.train.validate` (registry checks), :mod:`~mtcore.train.build`
(accelerator, data, model, optimiser), :mod:`~mtcore.train.loop` (the loop),
:mod:`~mtcore.train.events` (logging, evaluation, checkpoints), :mod:`~mtcore.train.losses`,
:mod:`~mtcore.train.metrics`, :mod:`~mtcore.train.checkpoint`, :mod:`~mtcore.train.trainer`.
Importing this package imports nothing heavy.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

_LAZY = {"Trainer": "mtcore.train.trainer", "TrainConfig": "mtcore.train.config", "load_config": "mtcore.train.config_io"}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
