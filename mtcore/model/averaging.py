"""Averaging the weights of trained models of one shape: a "uniform soup" (Wortsman et al. 2022) of seeds or of a run's
last checkpoints (``mt average``).

Every tensor of the models' state dicts is averaged (in float32, stored back in its dtype); integer buffers must be equal.
The models must have the same tasks (kind, labels, head and its options), the same tensors and the same vocabulary: the
average of models fine-tuned from one pretrained encoder is one model, usually as good as the best of them and steadier
(several seeds of a small task), while models of other shapes have no average. Per-task LoRA adapters are refused: the
average of ``B`` and of ``A`` is not the average of ``B @ A``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from mtcore.errors import UsageError

#: What of a task's saved description must match for two heads to be averaged.
_TASK_KEYS = ("kind", "labels", "head", "head_id", "head_options")


def average_models(paths: Sequence[Any], load: Callable[[Any], Any]) -> Any:
    """The model at ``paths[0]`` with every weight the mean over all ``paths`` (``load(path)``: a MultitaskModel). Loads
    one model at a time: memory for two models and the sums."""
    if len(paths) < 2:
        raise UsageError(f"averaging needs two models or more, got {len(paths)}; give the runs, models or checkpoints to average")
    first = load(paths[0])
    _check_averageable(first, paths[0])
    reference = first.state_dict()
    sums = {k: v.detach().float().clone() if v.is_floating_point() else v for k, v in reference.items()}
    for path in paths[1:]:
        model = load(path)
        _check_averageable(model, path)
        _check_same_shape(first, model, paths[0], path)
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                sums[key] += value.detach().float()
            elif not torch.equal(value, reference[key]):
                raise UsageError(f"{path}: its {key} differs from {paths[0]}'s and cannot be averaged (not a weight); average models "
                                 "trained from one encoder with one config")
        del model
    averaged = {k: (v / len(paths)).to(reference[k].dtype) if reference[k].is_floating_point() else v for k, v in sums.items()}
    first.load_state_dict(averaged)
    return first


def _check_averageable(model: Any, path: Any) -> None:
    lora = getattr(model, "lora", None) or {}
    if lora.get("per_task"):
        raise UsageError(f"{path}: has per-task LoRA adapters, whose average is not the average of the weights they add; average "
                         "models without them (a shared LoRA run saves its adapters merged in)")


def _check_same_shape(first: Any, other: Any, first_path: Any, path: Any) -> None:
    """Same tasks, heads, tensors and vocabulary as the first model; else one line naming the first difference."""
    if set(first.tasks) != set(other.tasks):  # the same tasks in another order average alike (weights are keyed by task)
        raise UsageError(f"{path}: has the tasks {', '.join(other.tasks)}, and {first_path} {', '.join(first.tasks)}; average models "
                         "of the same tasks")
    for task_id, info in first.tasks.items():
        theirs = other.tasks[task_id]
        different = next((key for key in _TASK_KEYS if info.get(key) != theirs.get(key)), None)
        if different is not None:
            raise UsageError(f"{path}: task {task_id!r} has {different} {theirs.get(different)!r}, and {first_path} {info.get(different)!r}; "
                             "average models trained with one config")
    mine, theirs = first.state_dict(), other.state_dict()
    odd = next((k for k in mine if k in theirs and mine[k].shape != theirs[k].shape), None)
    if odd is not None:
        raise UsageError(f"{path}: its tensor {odd} has the shape {tuple(theirs[odd].shape)}, and {first_path}'s "
                         f"{tuple(mine[odd].shape)} (other encoder or settings); average models of one shape")
    lacking = next(((k, path, first_path) for k in mine if k not in theirs), None) or next(((k, first_path, path) for k in theirs if k not in mine), None)
    if lacking is not None:
        key, without, holder = lacking
        raise UsageError(f"{without}: has no tensor {key}, which {holder} has (other encoder or settings); average models of one shape")
    tokenizers = [getattr(m, "tokenizer", None) for m in (first, other)]
    if all(t is not None for t in tokenizers) and tokenizers[0].get_vocab() != tokenizers[1].get_vocab():
        raise UsageError(f"{path}: has another tokenizer than {first_path}; average models of one encoder")
