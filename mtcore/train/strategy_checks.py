"""What a loss strategy returns to the engine, checked where the engine uses it: a plugin's mistake (a string, a
vector, a gradient of the wrong size) is one line naming the strategy's class, not a torch error from the loop's
arithmetic. The checks read tensor metadata only (no device sync)."""

from __future__ import annotations

from typing import Any

import torch

from mtcore.errors import MtError


def _who(strategy: Any) -> str:
    kind = type(strategy)
    return f"loss strategy {kind.__module__}.{kind.__qualname__}"


def _shown(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {str(value)[:40]!r}"


def checked_term(strategy: Any, task: str, value: Any) -> torch.Tensor:
    """``strategy.term(task, loss)``'s result: one number as a 0-d tensor (what is back-propagated)."""
    if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
        raise MtError(f"{_who(strategy)}: term({task!r}, loss) returned {_shown(value)}; it returns one number as a 0-d float tensor "
                      "(the task's loss, weighted or shifted): fix that method")
    return value


def checked_combined(strategy: Any, value: Any, grads: list[torch.Tensor], step: int | None = None) -> torch.Tensor:
    """A gradient combiner's ``combine(grads, step)`` result, from finite gradients: one flat gradient of the shared
    parameters' size, finite unless the gradients are so large that their squared norms overflow (a diverged run: the
    NaN check names it as such; the caller has read the gradients' finiteness from the device already)."""
    like = grads[0]
    if not isinstance(value, torch.Tensor) or value.ndim != 1 or value.numel() != like.numel():
        raise MtError(f"{_who(strategy)}: combine(grads, step) returned {_shown(value)}; it returns one flat gradient of the shared "
                      f"parameters, a 1-d tensor of {like.numel()} values like each of grads: fix that method")
    if not bool(value.isfinite().all()) and bool(torch.stack([g.dot(g) for g in grads]).isfinite().all()):
        raise MtError(f"{_who(strategy)}: combine(grads, step) returned NaN or infinite values from finite gradients"
                      f"{'' if step is None else f' at step {step}'}; fix that method")
    return value


def checked_weights(strategy: Any, value: Any) -> dict[str, float]:
    """``task_weights()`` (logged as ``loss_weights`` events): a mapping of task id to number."""
    import numbers

    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, numbers.Real) and not isinstance(v, bool)
                                              for k, v in value.items()):
        raise MtError(f"{_who(strategy)}: task_weights() returned {_shown(value)}; it returns {{task id: weight}} with a number "
                      "per task (logged as loss_weights events): fix that method")
    return {task: float(weight) for task, weight in value.items()}
