"""The training engine behind ``mt train`` and :class:`mtcore.Trainer`.

Modules: :mod:`~mtcore.train.config` (schema), :mod:`~mtcore.train.config_io` (loading,
overrides, errors), :mod:`~mtcore.train.validate` (registry checks), :mod:`~mtcore.train.build`
(accelerator, data, model, optimiser), :mod:`~mtcore.train.loop` (the loop),
:mod:`~mtcore.train.events` (logging, evaluation, checkpoints), :mod:`~mtcore.train.losses`,
:mod:`~mtcore.train.metrics`, :mod:`~mtcore.train.checkpoint`, :mod:`~mtcore.train.trainer`.
Importing this package imports nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Trainer": "mtcore.train.trainer", "TrainConfig": "mtcore.train.config", "load_config": "mtcore.train.config_io"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mtcore.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = list(_LAZY)
