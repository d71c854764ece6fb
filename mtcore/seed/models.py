"""``MultitaskModel`` (was ``src.models``): mtcore's model, aware of the seed's ``Tasks``.

``MultitaskModel(encoder_path, tasks.heads)`` is :class:`mtcore.model.MultitaskModel` with two
additions: built from a :class:`~mtcore.seed.tasks.TaskHeads` (or a plain dict of the same task
names, such as ``{**tasks.heads, "terra": my_head}``; of several ``Tasks`` with those names, the
one for this encoder), it takes the tasks' tokenizer (saved with the model) and becomes
``tasks.model``; and it starts in training mode, as the seed's did.
``model.forward(batch.name, **batch.data).loss`` works as in the seed. The seed's keywords
``encoder_path=`` and ``task_heads=`` work too.
"""

from __future__ import annotations

import inspect
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


# Same options as the core constructor (``from_pretrained`` checks its options against this).
MultitaskModel.__init__.__signature__ = inspect.signature(_CoreModel.__init__)  # type: ignore[attr-defined]
