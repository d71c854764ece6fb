"""Optimiser and learning-rate schedule.

* AdamW, fused on CUDA (``optimizer.fused: null`` means "fused when on CUDA").
* Four parameter groups: encoder / head parameters (head learning rate ``optimizer.head_lr``,
  default ``optimizer.lr``), each split into "decay" and "no decay" — biases and normalisation
  weights get no weight decay (the model's own :mod:`mtcore.model.param_groups`). A loss
  strategy's own parameters (uncertainty's log-variances, imtl's loss scales) join the head group without decay.
* ``optimizer.layer_decay`` (layer-wise learning-rate decay) splits the encoder's groups by
  depth, top layer first: ``param_groups[0]`` keeps ``optimizer.lr``, which is what the run logs
  as its ``lr``; each schedule scales every group's own initial learning rate, so the ratios hold.
* Schedules from ``transformers.get_scheduler``; warmup as steps or as a ratio of the total.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError
from mtcore.train.config import OptimizerConfig, ScheduleConfig
from mtcore.train.steps import warmup_steps


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(encoder parameters, everything else)``, trainable ones only, in a fixed order."""
    encoder = getattr(model, "encoder", None)
    encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    shared, others = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (shared if id(p) in encoder_ids else others).append(p)
    return shared, others


def parameter_groups(model: nn.Module, config: OptimizerConfig, extra: Iterable[nn.Parameter] = ()) -> list[dict[str, Any]]:
    """The model's groups (:func:`mtcore.model.param_groups.parameter_groups`: encoder/heads x
    decay/no-decay, the encoder's by depth with ``layer_decay``) plus ``extra`` parameters of the
    loss strategy (no decay, head learning rate)."""
    from mtcore.model.param_groups import parameter_groups as model_groups

    head_lr = config.head_lr if config.head_lr is not None else config.lr
    decay = config.layer_decay
    encoder = getattr(model, "encoder", None)
    if decay not in (None, 1) and encoder is not None and any(p.requires_grad for p in encoder.parameters()):
        check_layer_decay(encoder)
    head_lrs = None
    if config.head_lrs:
        from mtcore.train.validate import match_task_values

        head_lrs = match_task_values(config.head_lrs, list(model.heads.keys()), "optimizer.head_lrs")
    groups = model_groups(model, config.lr, head_lr, config.weight_decay, layer_decay=decay, head_lrs=head_lrs)
    extra = [p for p in extra if p.requires_grad]
    if extra:
        groups.append({"name": "loss_strategy", "params": extra, "lr": head_lr, "weight_decay": 0.0})
    return groups


def check_layer_decay(encoder: nn.Module) -> None:
    """``optimizer.layer_decay`` needs the encoder's stack of transformer layers (``mt check`` calls it on an
    encoder built on the meta device, ``mt train`` on the real one)."""
    from mtcore.model.param_groups import find_layer_stack

    if find_layer_stack(encoder) is None:
        raise ConfigError(f"config key 'optimizer.layer_decay': encoder {type(encoder).__name__} has no nn.ModuleList of "
                          "transformer layers to decay over; remove optimizer.layer_decay (or set it to null)")


def build_optimizer(model: nn.Module, config: OptimizerConfig, device: torch.device, extra: Iterable[nn.Parameter] = ()) -> torch.optim.Optimizer:
    """AdamW over :func:`parameter_groups`; fused when on CUDA unless ``fused`` says otherwise."""
    fused = config.fused if config.fused is not None else device.type == "cuda"
    kwargs: dict[str, Any] = {"lr": config.lr, "betas": tuple(config.betas), "eps": config.eps}
    if fused:
        kwargs["fused"] = True
    return torch.optim.AdamW(parameter_groups(model, config, extra), **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig, total_steps: int, encoder_frozen_steps: int = 0) -> Any:
    """A ``transformers.get_scheduler`` schedule over ``total_steps`` optimizer steps. With ``encoder_frozen_steps``
    (``encoder.freeze_encoder_steps``) the encoder's groups (:func:`encoder_groups`) get rate 0 for those first steps,
    then the same schedule, warmup included, over the steps left; the heads' follow it from the start."""
    from transformers import get_scheduler

    scheduler = get_scheduler(_name(config, total_steps), optimizer=optimizer, num_warmup_steps=warmup_steps(config, total_steps),
                              num_training_steps=total_steps)
    if encoder_frozen_steps:
        later = total_steps - encoder_frozen_steps
        alone = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=optimizer.defaults["lr"])  # for the schedule's function
        # (at the optimizer's rate: polynomial's lr_end is divided by it)
        after = get_scheduler(_name(config, later), optimizer=alone, num_warmup_steps=warmup_steps(config, later),
                              num_training_steps=later).lr_lambdas[0]

        def delayed(step: int) -> float:
            return 0.0 if step < encoder_frozen_steps else after(step - encoder_frozen_steps)

        for index in encoder_groups(optimizer):
            scheduler.lr_lambdas[index] = delayed
            group = optimizer.param_groups[index]
            group["lr"] = group["initial_lr"] * delayed(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    return scheduler


def _name(config: ScheduleConfig, total_steps: int) -> str:
    return "constant_with_warmup" if config.name == "constant" and warmup_steps(config, total_steps) > 0 else config.name


def encoder_groups(optimizer: Any) -> list[int]:
    """The indices of the optimizer's groups of the encoder (with its task layers): all but the heads' and the loss
    strategy's (:func:`parameter_groups`)."""
    return [i for i, group in enumerate(optimizer.param_groups)
            if not (str(group.get("name", "")).startswith("heads") or group.get("name") == "loss_strategy")]
