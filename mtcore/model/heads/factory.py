"""Building heads from tasks, :class:`HeadSpec` s or custom modules, and calling them uniformly.

Registered heads are looked up in the plugin registry (``mtcore.plugins``) and built as
``HeadClass(hidden_size=..., num_labels=..., **options)``. Unknown names and options fail in one
line with "did you mean". A custom ``nn.Module`` can be any module:

* a :class:`~mtcore.model.heads.base.Head` subclass is called with the full contract;
* a seed-style module whose ``forward`` takes ``encoder_outputs`` first is called as
  ``head(encoder_outputs, labels=labels)`` (port a seed notebook by changing imports);
* any other module is called as ``head(hidden_states, attention_mask, **kw)`` with the keyword
  arguments of the contract it declares (``pooler_output``, ``labels``, ``num_choices``).

It may return a :class:`HeadOutput`, any mapping / ``ModelOutput`` with ``logits`` (and
``loss``), or a logits tensor; when it gives no loss, the task kind's default loss is used.

A multiple-choice batch whose rows have different numbers of choices carries ``choice_mask``
(false at the stand-in choices the collator padded with). The head is then called without
labels, the logits of the stand-ins are set to the dtype's lowest value, and the loss is
cross-entropy over the masked logits, so each row scores, and is trained, as it would be alone.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError, DataError, MtError, PluginError, unknown
from mtcore.model.heads.base import Head, HeadOutput, HeadSpec
from mtcore.model.heads.losses import classification_loss, default_loss
from mtcore.refs import describe
from mtcore.task import Task

CONTRACT_KWARGS = ("pooler_output", "labels", "num_choices")
#: Given only to heads whose forward names it: each row's spans, ``(batch, spans, 2)`` (tasks that map ``spans``).
SPANS_KWARG = "spans"
SEED_FIRST_ARGS = ("encoder_outputs", "outputs", "encoder_output")


@dataclass
class HeadCall:
    """How the model calls one head: ``style`` is ``"head"``, ``"seed"`` or ``"module"``."""

    style: str
    kwargs: tuple[str, ...] = CONTRACT_KWARGS
    kind: str | None = None


def as_spec(task_id: str, value: Any) -> HeadSpec:
    """Normalise a ``heads_by_task`` value (Task, HeadSpec or nn.Module) to a :class:`HeadSpec`."""
    if isinstance(value, HeadSpec):
        return value
    if isinstance(value, Task):
        return HeadSpec.from_task(value)
    if isinstance(value, nn.Module):
        kinds = getattr(value, "kinds", ())
        return HeadSpec(name="", num_labels=int(getattr(value, "num_labels", 0) or 0),
                        kind=kinds[0] if len(kinds) == 1 else None,
                        options=dict(getattr(value, "head_options", {}) or {}), module=value)
    raise ConfigError(
        f"task {task_id!r}: head must be a mtcore Task, a HeadSpec or a torch nn.Module, got {type(value).__name__}"
    )


def build_head(task_id: str, spec: HeadSpec, hidden_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """Build (or take) the head for ``task_id``; return it and its manifest entry (task info + head)."""
    if spec.module is not None:
        module = spec.module
        info = _base_info(task_id, spec)
        info.update(head=spec.name or None, head_id=None, head_options=_json_options(task_id, spec.options), head_registered=False,
                    head_class=describe(type(module)), num_labels=spec.num_labels or getattr(module, "num_labels", None))
        return module, info

    from mtcore.plugins import load_registry

    component = load_registry().component("head", spec.name, (spec.task or {}).get("plugin"))
    name = spec.name.removeprefix("mtcore:")  # a kind's default is looked up by its qualified id; said and saved bare
    kinds = list(component.extra.get("kinds") or [])
    if spec.kind and kinds and spec.kind not in kinds:
        raise ConfigError(
            f"task {task_id!r} ({spec.kind}) cannot use head {name!r}, which serves {', '.join(kinds)} tasks; "
            f"choose a head for {spec.kind} tasks"
        )
    head_class = component.load()
    if isinstance(head_class, type) and not issubclass(head_class, nn.Module):  # it failed as "rejected options {}: ... no arguments"
        raise PluginError(component.type_problem(head_class, f" (head of task {task_id!r})"))
    options = _json_options(task_id, spec.options)
    check_options(task_id, name, head_class, options)  # first: a head without class_weights says so, whatever their form
    options = _label_keyed_weights(task_id, spec, options)
    try:
        module = head_class(hidden_size=hidden_size, num_labels=spec.num_labels, **options)
    except MtError as exc:
        raise type(exc)(f"task {task_id!r}, head {name!r}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        problem = component.type_problem(head_class, f" (head of task {task_id!r})")
        if problem:  # a module that is not a Head (takes no hidden_size): the plugin's mistake, not the options'
            raise PluginError(f"{problem} ({type(exc).__name__}: {exc})") from exc
        raise ConfigError(f"task {task_id!r}, head {name!r} rejected options {options}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ConfigError(f"head {name!r} ({component.id}) built a {type(module).__name__}, not a torch nn.Module")
    info = _base_info(task_id, spec)
    if (spec.options or {}).get("class_weights") == "balanced":  # recorded as asked until the data sets the numbers
        options = {**options, "class_weights": "balanced"}
    info.update(head=name, head_id=component.id, head_options=options, head_registered=True,
                head_class=describe(head_class), num_labels=spec.num_labels)
    return module, info


def check_options(task_id: str, head_name: str, head_class: Any, options: Mapping[str, Any]) -> None:
    """Refuse options the head's constructor does not take (one line, with did-you-mean)."""
    try:
        params = inspect.signature(head_class).parameters
    except (TypeError, ValueError):
        return
    for reserved in ("hidden_size", "num_labels"):
        if reserved in options:
            raise ConfigError(f"task {task_id!r}: head option {reserved!r} is set by the model; remove it from the head options")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if n not in ("self", "hidden_size", "num_labels") and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for name in options:
        if name not in valid:
            raise unknown("head option", name, valid, hint=f"head {head_name!r} of task {task_id!r} takes: {', '.join(valid) or 'no options'}")


def _label_keyed_weights(task_id: str, spec: HeadSpec, options: dict[str, Any]) -> dict[str, Any]:
    """A ``class_weights`` option given as ``{label: weight}`` becomes the list, in the task's label order, that heads
    take (labels left out weigh 1); an unknown label is one line with "did you mean"."""
    weights = options.get("class_weights")
    if weights == "balanced":  # mt train / Trainer set it from the train split's labels (mtcore.train.class_balance)
        return {**options, "class_weights": None}
    if not isinstance(weights, Mapping):
        return options
    labels = [str(label) for label in spec.labels]
    for label in weights:
        if str(label) not in labels:
            raise unknown("label", str(label), labels, hint=f"head option class_weights of task {task_id!r} is keyed by its labels: "
                                                             f"{', '.join(labels)}")
    named = {str(k): v for k, v in weights.items()}
    return {**options, "class_weights": [named.get(label, 1.0) for label in labels]}


def _json_options(task_id: str, options: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(options or {})
    try:
        json.dumps(options)
    except (TypeError, ValueError):
        raise ConfigError(f"task {task_id!r}: head options must be JSON values (numbers, strings, lists), got {options!r}") from None
    return options


def _base_info(task_id: str, spec: HeadSpec) -> dict[str, Any]:
    info = dict(spec.task or {})
    info["id"] = task_id
    info.setdefault("name", task_id.rpartition(":")[2])
    info["kind"] = spec.kind or info.get("kind")
    if spec.labels or "labels" not in info:
        info["labels"] = list(spec.labels)
    for key, default in (("label_values", None), ("inputs", {}), ("max_length", None)):
        info.setdefault(key, default)
    return info


# ---- calling -----------------------------------------------------------------------------
def call_style(module: nn.Module, kind: str | None) -> HeadCall:
    """Decide once, at build time, how the model will call ``module``."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return HeadCall("head", CONTRACT_KWARGS, kind) if isinstance(module, Head) else HeadCall("module", (), kind)
    spans = (SPANS_KWARG,) if SPANS_KWARG in params else ()
    if isinstance(module, Head):
        return HeadCall("head", CONTRACT_KWARGS + spans, kind)
    names = [n for n, p in params.items() if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if names and names[0] in SEED_FIRST_ARGS:
        return HeadCall("seed", ("labels",) if "labels" in params else (), kind)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return HeadCall("module", tuple(k for k in CONTRACT_KWARGS if takes_any or k in params) + spans, kind)


def call_head(
    module: nn.Module,
    how: HeadCall,
    encoder_outputs: Any,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor,
    pooler_output: torch.Tensor | None,
    labels: torch.Tensor | None,
    num_choices: int | None,
    choice_mask: torch.Tensor | None = None,
    spans: torch.Tensor | None = None,
) -> HeadOutput:
    """Run one head and normalise what it returns to a :class:`HeadOutput` (``choice_mask``: see the module docstring;
    ``spans``: given to heads whose forward takes it)."""
    if choice_mask is not None:
        out = call_head(module, how, encoder_outputs, hidden_states, attention_mask, pooler_output, None, num_choices)
        logits = mask_choices(out.logits, choice_mask, module)
        loss = classification_loss(logits, labels, training=module.training) if labels is not None else None
        return HeadOutput(logits=logits, loss=loss)
    given = {"pooler_output": pooler_output, "labels": labels, "num_choices": num_choices, SPANS_KWARG: spans}
    if how.style == "seed":
        result = module(encoder_outputs, **{k: given[k] for k in how.kwargs})
    else:
        result = module(hidden_states, attention_mask, **{k: given[k] for k in how.kwargs})
    if isinstance(result, HeadOutput):
        logits, loss = result.logits, result.loss
    elif isinstance(result, torch.Tensor):
        logits, loss = result, None
    elif isinstance(result, Mapping) or hasattr(result, "logits"):
        logits = result["logits"] if isinstance(result, Mapping) else result.logits
        loss = result.get("loss") if isinstance(result, Mapping) else getattr(result, "loss", None)
    else:
        raise ConfigError(f"head {type(module).__module__}.{type(module).__qualname__} returned a {type(result).__name__}; return a "
                          "HeadOutput, a mapping with 'logits', or a logits tensor")
    if loss is None and labels is not None:  # a head of any style that gives no loss: the kind's default (built-ins give theirs)
        loss = default_loss(how.kind, logits, labels, training=module.training)
    return HeadOutput(logits=logits, loss=loss)


#: Task kinds whose logits end in one score per label.
_PER_LABEL = ("text_classification", "pair_classification", "multi_label", "token_classification")


def head_name(info: Mapping[str, Any]) -> str:
    """How an error names a task's head: its registered id (``comp:attn``: the plugin first), else its class."""
    return repr(info.get("head_id") or info.get("head") or info.get("head_class") or "?")


def check_logits(task_id: str, info: Mapping[str, Any], logits: Any) -> None:
    """One score per label in the logits' last dimension (shape metadata only: no device sync). A head giving 4 scores
    for 2 labels trained, and scored wrong, without a word."""
    count = info.get("num_labels")
    if info.get("kind") in _PER_LABEL and count and isinstance(logits, torch.Tensor) and (logits.ndim == 0 or logits.shape[-1] != count):
        raise ConfigError(f"task {task_id!r}: head {head_name(info)} returned logits of shape {tuple(logits.shape)}, and the task has "
                          f"{count} labels: the last dimension must be {count}, one score per label")


def mask_choices(logits: torch.Tensor, choice_mask: torch.Tensor, module: nn.Module | None = None) -> torch.Tensor:
    """``logits`` ``(batch, choices)`` with the padded choices (``choice_mask`` false) at the dtype's lowest value."""
    if logits is None or logits.shape != choice_mask.shape:
        name = type(module).__name__ if module is not None else "the head"
        raise DataError(f"head {name} returned logits of shape {tuple(logits.shape) if logits is not None else None} for a "
                        f"multiple-choice batch of {tuple(choice_mask.shape)} (rows, choices); return one logit per choice")
    return logits.masked_fill(~choice_mask.to(device=logits.device, dtype=torch.bool), torch.finfo(logits.dtype).min)
