"""Optimizer parameter groups: encoder and heads apart, no weight decay on biases and norms."""

from __future__ import annotations

from typing import Any

from torch import nn

_NORM_TYPES: tuple[type, ...] = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm, nn.modules.normalization.RMSNorm)


def no_decay_names(module: nn.Module) -> set[str]:
    """Names of parameters that should get no weight decay: biases and normalisation weights.

    A normalisation layer is any torch norm module or any module whose class name contains
    ``Norm`` (``T5LayerNorm``, ``DebertaLayerNorm``, ...).
    """
    names: set[str] = set()
    for module_name, sub in module.named_modules():
        is_norm = isinstance(sub, _NORM_TYPES) or "norm" in type(sub).__name__.lower()
        for param_name, _ in sub.named_parameters(recurse=False):
            if is_norm or param_name == "bias" or param_name.endswith("_bias"):
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return names


def split_decay(module: nn.Module, prefix: str = "") -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters of ``module`` split into (with decay, without decay), each listed once."""
    skip = no_decay_names(module)
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        (plain if name in skip else decay).append(param)
    return decay, plain


def parameter_groups(
    model: nn.Module, encoder_lr: float, head_lr: float | None = None, weight_decay: float = 0.0
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim`` from a model with ``.encoder`` and ``.heads``.

    Four groups at most (empty ones are left out): ``encoder``, ``encoder_no_decay``, ``heads``,
    ``heads_no_decay``. Heads use ``head_lr`` (default: ``encoder_lr``). Frozen parameters are
    left out. Any other trainable parameter of the model joins the heads' groups.
    """
    head_lr = encoder_lr if head_lr is None else head_lr
    encoder_decay, encoder_plain = split_decay(model.encoder)
    head_decay, head_plain = split_decay(model.heads)
    seen = {id(p) for p in encoder_decay + encoder_plain + head_decay + head_plain}
    frozen_or_seen = seen | {id(p) for p in model.parameters() if not p.requires_grad}
    other_skip = no_decay_names(model)
    for name, param in model.named_parameters():
        if id(param) not in frozen_or_seen:
            (head_plain if name in other_skip else head_decay).append(param)
            frozen_or_seen.add(id(param))
    groups = [
        {"name": "encoder", "params": encoder_decay, "lr": encoder_lr, "weight_decay": weight_decay},
        {"name": "encoder_no_decay", "params": encoder_plain, "lr": encoder_lr, "weight_decay": 0.0},
        {"name": "heads", "params": head_decay, "lr": head_lr, "weight_decay": weight_decay},
        {"name": "heads_no_decay", "params": head_plain, "lr": head_lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
