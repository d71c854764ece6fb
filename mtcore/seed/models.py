"""``MultitaskModel`` (was ``src.models``): mtcore's model, aware of the seed's ``Tasks``.

``MultitaskModel(encoder_path, tasks.heads)`` is :class:`mtcore.model.MultitaskModel` with two
additions: built from a :class:`~mtcore.seed.tasks.TaskHeads` (or a plain dict of the same task
names, such as ``{**tasks.heads, "terra": my_head}``; of several ``Tasks`` with those names, the
one for this encoder), it takes the tasks' tokenizer (saved with the model) and becomes
``tasks.model``; and it starts in training mode, as the seed's did.
``model.forward(batch.name, **batch.data).loss`` works as in the seed (its ``only_head={"labels"}``
too, not needed). The seed's keywords ``encoder_path=`` and ``task_heads=`` work too.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from mtcore.errors import ConfigError
from mtcore.model.multitask_model import MultitaskModel as _CoreModel
from mtcore.model.multitask_model import MultitaskOutput

__all__ = ["MultitaskModel", "MultitaskOutput"]


class MultitaskModel(_CoreModel):
    """A shared encoder and one head per task (see :class:`mtcore.model.MultitaskModel`)."""

    def __init__(self, encoder: Any = None, heads_by_task: Any = None, **options: Any) -> None:
        for seed_name, name in (("encoder_path", "encoder"), ("task_heads", "heads_by_task")):  # the seed's keywords
            if seed_name in options:
                value = options.pop(seed_name)
                if (encoder if name == "encoder" else heads_by_task) is not None:
                    raise ConfigError(f"MultitaskModel got {name} and {seed_name} (its seed name); pass one")
                encoder, heads_by_task = (value, heads_by_task) if name == "encoder" else (encoder, value)
        if encoder is None or heads_by_task is None:
            raise ConfigError("MultitaskModel(encoder_path, tasks.heads) needs the encoder and the tasks' heads")
        owner = getattr(heads_by_task, "owner", None)
        if owner is None and isinstance(heads_by_task, dict):  # {**tasks.heads, "terra": my_head}: a plain dict
            from mtcore.seed.tasks import tasks_named

            owner = tasks_named(heads_by_task, encoder)
        if owner is not None:
            options.setdefault("tokenizer", owner.tokenizer)
        super().__init__(encoder, heads_by_task, **options)
        self.train()  # the seed's model was a plain nn.Module: in training mode from the start
        if owner is not None:
            owner.remember_model(self)


    def forward(self, task: Any, *args: Any, only_head: Any = None, **inputs: Any) -> Any:
        """:meth:`mtcore.model.MultitaskModel.forward`; the seed's ``only_head={"labels"}`` (the keys its heads took) is
        accepted and not needed: the labels reach the head anyway. The seed's ``tasks.model(encoder_path)`` built the
        model; here ``tasks.model`` is the model itself, so a path given as the task is said to be one."""
        if isinstance(task, (str, os.PathLike)) and str(task) not in self.heads and _looks_like_a_path(str(task)):
            raise ConfigError(f"{str(task)!r} looks like an encoder path, not a task: the seed's tasks.model(encoder_path) built the "
                              "model; here tasks.model is the model (built by MultitaskModel(encoder_path, tasks.heads)); call "
                              "model.forward(batch.name, **batch.data)")
        return super().forward(task, *args, **inputs)


def _looks_like_a_path(text: str) -> bool:
    return os.sep in text or "/" in text or os.path.isdir(text)


# Same options as the core constructor (``from_pretrained`` checks its options against this).
MultitaskModel.__init__.__signature__ = inspect.signature(_CoreModel.__init__)  # type: ignore[attr-defined]
