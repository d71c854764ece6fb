"""Optimizer parameter groups: encoder and heads apart, no weight decay on biases and norms.

With ``layer_decay`` (layer-wise learning-rate decay, LLRD) the encoder's groups go by depth: the
transformer layers are the encoder's largest ``nn.ModuleList`` by parameter count (no
architecture table), layer ``k`` of ``L`` (0-based, as in the module names) gets
``encoder_lr * layer_decay ** (L - 1 - k)``, the parameters registered before the stack (the
embeddings) ``encoder_lr * layer_decay ** L``, those after it (pooler, final norm) ``encoder_lr``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mtcore.errors import ConfigError

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


def find_layer_stack(encoder: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The encoder's stack of transformer layers: its largest non-empty ``nn.ModuleList`` by
    parameter count (the longer one on a tie), as ``(name, list)``; None when it has none."""
    best: tuple[tuple[int, int], str, nn.ModuleList] | None = None
    for name, module in encoder.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            size = (sum(p.numel() for p in module.parameters()), len(module))
            if best is None or size > best[0]:
                best = (size, name, module)
    return None if best is None else (best[1], best[2])


def shared_tables(encoder: nn.Module, layers: nn.ModuleList) -> list[nn.Parameter]:
    """The parameters beside the layer list inside a module of its own, which every layer reads (DeBERTa's
    ``encoder.rel_embeddings`` and its norm; BERT's ``encoder`` holds none). Siblings in the model itself
    (ModernBERT's ``final_norm``) come after the layers instead, and are not among them."""
    path = next((name for name, module in encoder.named_modules() if module is layers), "")
    if "." not in path:
        return []
    inside = {id(p) for p in layers.parameters()}
    return [p for p in encoder.get_submodule(path.rsplit(".", 1)[0]).parameters() if id(p) not in inside]


def encoder_depths(encoder: nn.Module, what: str = "layer_decay", fix: str = "leave layer_decay out (null)") -> dict[int, tuple[str, int]]:
    """``id(parameter) -> (group, power)`` for every parameter of ``encoder``: ``encoder.layer{k}`` (power ``L-1-k``)
    for layer ``k`` of its stack, ``encoder.embeddings`` (power ``L``) for those registered before the stack and the
    tables every layer reads, ``encoder.top`` (power -1) for those after it. ``what`` names the setting that needs
    the stack and ``fix`` what to do instead, for the error when the encoder has none."""
    found = find_layer_stack(encoder)
    if found is None:
        raise ConfigError(f"{what}: encoder {type(encoder).__name__} has no nn.ModuleList of transformer layers; {fix}")
    stack = found[1]
    depth = len(stack)
    place: dict[int, tuple[str, int]] = {}
    for k, layer in enumerate(stack):
        for param in layer.parameters():
            place.setdefault(id(param), (f"encoder.layer{k}", depth - 1 - k))
    for param in shared_tables(encoder, stack):  # read by every layer from the first: below it, with the embeddings
        place.setdefault(id(param), ("encoder.embeddings", depth))
    after_stack = False
    for param in encoder.parameters():
        if id(param) in place:
            after_stack = after_stack or place[id(param)][0] != "encoder.embeddings"
        else:
            place[id(param)] = ("encoder.top", -1) if after_stack else ("encoder.embeddings", depth)
    return place


def encoder_depth_groups(encoder: nn.Module, encoder_lr: float, weight_decay: float, layer_decay: float) -> list[dict[str, Any]]:
    """The encoder's trainable parameters in groups by depth, top first: ``encoder.top`` (after the
    layer stack), ``encoder.layer{L-1}`` ... ``encoder.layer0``, ``encoder.embeddings`` (before
    it), each also as ``<name>_no_decay`` (biases, norms); empty groups are left out."""
    place = encoder_depths(encoder)
    skip = no_decay_names(encoder)
    buckets: dict[tuple[int, str], tuple[list[nn.Parameter], list[nn.Parameter]]] = {}
    for name, param in encoder.named_parameters():
        group, power = place[id(param)]
        if param.requires_grad:
            decay, plain = buckets.setdefault((power, group), ([], []))
            (plain if name in skip else decay).append(param)
    groups = []
    for (power, group), (decay, plain) in sorted(buckets.items()):
        lr = encoder_lr * layer_decay ** max(power, 0)
        groups.append({"name": group, "params": decay, "lr": lr, "weight_decay": weight_decay})
        groups.append({"name": f"{group}_no_decay", "params": plain, "lr": lr, "weight_decay": 0.0})
    return groups


def parameter_groups(
    model: nn.Module, encoder_lr: float, head_lr: float | None = None, weight_decay: float = 0.0, layer_decay: float | None = None,
    head_lrs: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim`` from a model with ``.encoder`` and ``.heads``.

    Four groups at most (empty ones are left out): ``encoder``, ``encoder_no_decay``, ``heads``,
    ``heads_no_decay``. Heads use ``head_lr`` (default: ``encoder_lr``). Frozen parameters are
    left out. Any other trainable parameter of the model joins the heads' groups.

    ``layer_decay`` in (0, 1) splits the encoder's groups by depth (:func:`encoder_depth_groups`,
    top layer first, so ``param_groups[0]`` has ``encoder_lr``); None or 1 keeps one encoder lr.
    ``head_lrs`` (head name -> lr) gives those heads groups of their own, ``heads.<name>`` and
    ``heads.<name>_no_decay``, after the other heads'. Task-specific top layers (``model.task_layers``) come
    between the encoder's groups and the heads', at the encoder's learning rate
    (:func:`mtcore.model.task_layers.parameter_groups`).
    """
    if layer_decay is not None and not 0 < layer_decay <= 1:
        raise ConfigError(f"layer_decay must be in (0, 1], got {layer_decay!r}")
    head_lr = encoder_lr if head_lr is None else head_lr
    own = {name: lr for name, lr in (head_lrs or {}).items()}
    unknown = [name for name in own if name not in model.heads]
    if unknown:
        raise ConfigError(f"head_lrs names {unknown[0]!r}, which is not a head of this model ({', '.join(model.heads.keys())})")
    encoder_decay, encoder_plain = split_decay(model.encoder)
    head_decay, head_plain = split_decay(model.heads)
    own_groups: list[dict[str, Any]] = []
    for name, lr in own.items():
        decay, plain = split_decay(model.heads[name])
        taken = {id(p) for p in decay + plain}
        head_decay = [p for p in head_decay if id(p) not in taken]
        head_plain = [p for p in head_plain if id(p) not in taken]
        own_groups += [{"name": f"heads.{name}", "params": decay, "lr": lr, "weight_decay": weight_decay},
                       {"name": f"heads.{name}_no_decay", "params": plain, "lr": lr, "weight_decay": 0.0}]
    own_layers = getattr(model, "task_layers", None)
    layer_groups: list[dict[str, Any]] = []
    if own_layers is not None:  # pretrained layers: the encoder's learning rate, not the heads'
        from mtcore.model.task_layers import parameter_groups as task_layer_groups

        layer_groups = task_layer_groups(own_layers, encoder_lr, weight_decay, layer_decay)
    seen = ({id(p) for p in encoder_decay + encoder_plain + head_decay + head_plain} | {id(p) for g in own_groups for p in g["params"]}
            | {id(p) for g in layer_groups for p in g["params"]})
    frozen_or_seen = seen | {id(p) for p in model.parameters() if not p.requires_grad}
    other_skip = no_decay_names(model)
    for name, param in model.named_parameters():
        if id(param) not in frozen_or_seen:
            (head_plain if name in other_skip else head_decay).append(param)
            frozen_or_seen.add(id(param))
    if layer_decay is not None and layer_decay != 1 and encoder_decay + encoder_plain:
        groups = encoder_depth_groups(model.encoder, encoder_lr, weight_decay, layer_decay)
    else:
        groups = [
            {"name": "encoder", "params": encoder_decay, "lr": encoder_lr, "weight_decay": weight_decay},
            {"name": "encoder_no_decay", "params": encoder_plain, "lr": encoder_lr, "weight_decay": 0.0},
        ]
    groups += layer_groups + [
        {"name": "heads", "params": head_decay, "lr": head_lr, "weight_decay": weight_decay},
        {"name": "heads_no_decay", "params": head_plain, "lr": head_lr, "weight_decay": 0.0},
        *own_groups,
    ]
    return [g for g in groups if g["params"]]
