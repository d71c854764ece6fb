"""``MultitaskModel`` (was ``src.models``): mtcore's model, aware of the seed's ``Tasks``.

``MultitaskModel(encoder_path, tasks.heads)`` is :class:`mtcore.model.MultitaskModel` with one
addition: built from a :class:`~mtcore.seed.tasks.TaskHeads`, it takes the tasks' tokenizer
(saved with the model) and becomes ``tasks.model``. ``model.forward(batch.name, **batch.data).loss``
works as in the seed.
"""

from __future__ import annotations

import inspect
from typing import Any

from mtcore.model.multitask_model import MultitaskModel as _CoreModel
from mtcore.model.multitask_model import MultitaskOutput

__all__ = ["MultitaskModel", "MultitaskOutput"]


class MultitaskModel(_CoreModel):
    """A shared encoder and one head per task (see :class:`mtcore.model.MultitaskModel`)."""

    def __init__(self, encoder: Any, heads_by_task: Any, **options: Any) -> None:
        owner = getattr(heads_by_task, "owner", None)
        if owner is not None:
            options.setdefault("tokenizer", owner.tokenizer)
        super().__init__(encoder, heads_by_task, **options)
        if owner is not None:
            owner.remember_model(self)


# Same options as the core constructor (``from_pretrained`` checks its options against this).
MultitaskModel.__init__.__signature__ = inspect.signature(_CoreModel.__init__)  # type: ignore[attr-defined]
