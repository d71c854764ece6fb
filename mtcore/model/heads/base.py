"""The head contract: what every task head receives and returns.

A head turns the shared encoder's output into one task's logits (and loss, when labels are
given). Heads are registered by name through the ``mt_register_heads`` hook and built as
``HeadClass(hidden_size=..., num_labels=..., **options)``; the options come from the task
(``Task.head_options``) or a :class:`HeadSpec`, and must be JSON values (they are written to the
model manifest and passed back on load).

Contract of :meth:`Head.forward`::

    head(hidden_states,            # (batch, length, hidden): the encoder's last hidden states
         attention_mask,           # (batch, length): 1 for real tokens, 0 for padding
         *,
         pooler_output=None,       # (batch, hidden) when the encoder has a pooler, else None
         labels=None,              # task labels (see below) or None
         num_choices=None)         # multiple choice: inputs were (batch, choices, length) and
                                   # arrive flattened to (batch * choices, length)
    -> HeadOutput(logits=..., loss=...)

Labels: class ids for classification (``-1`` or ``-100`` = no label), floats for regression
(``NaN`` = no label), multi-hot floats for multi-label (negative = no label), per-token ids with
``-100`` for token classification, the right choice's index for multiple choice (``-1`` = no
label). A multiple-choice batch whose rows have different numbers of choices also carries
``choice_mask``: the model then calls the head without labels, sets the padded choices' logits to
the dtype's lowest value and computes the cross-entropy itself (see
:mod:`mtcore.model.heads.factory`). Losses are means
over labelled items only and never synchronise with the device; in evaluation mode
(``model.eval()``) a batch with no label at all gives ``loss=None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers.utils import ModelOutput

if TYPE_CHECKING:
    from mtcore.task import Task


#: Head options of training only (the loss's weights, dropout): a head's tensors are the same whatever they are, so two heads
#: that differ only in them average (``mt average``) and a saved one starts a run (``encoder.load_heads``).
TRAINING_ONLY_OPTIONS = ("class_weights", "label_smoothing", "dropout", "dropout_in", "dropout_between")


@dataclass
class HeadOutput(ModelOutput):
    """What a head returns: ``logits`` and, when labels were given, ``loss``."""

    logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None


class Head(nn.Module):
    """Base class of task heads (subclass it in plugins and user code).

    Subclasses take ``hidden_size`` and ``num_labels`` plus their own keyword options, and
    implement :meth:`forward` as described in the module docstring.
    """

    #: Task kinds this head serves, for documentation (registration's ``kinds=`` is checked).
    kinds: tuple[str, ...] = ()

    def __init__(self, hidden_size: int, num_labels: int) -> None:
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.num_labels = int(num_labels)

    @property
    def uses_pooler(self) -> bool:
        """True when the head needs the encoder's ``pooler_output`` (checked when the model is built)."""
        return False

    def resolved_options(self) -> dict[str, Any]:
        """Options this head settled itself when it was built or tied to the encoder (JSON values): the model manifest
        records them beside the given ones, so a saved model is rebuilt as it trained whatever a later version would
        choose. None by default; a masked_lm head's activation and layer-norm epsilon (read from the encoder's config)."""
        return {}

    def forward(  # noqa: D102 - documented in the module docstring
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        pooler_output: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        num_choices: int | None = None,
    ) -> HeadOutput:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")


def resolved_options_of(head: Any) -> dict[str, Any]:
    """``head.resolved_options()`` checked (``{}`` for a head without it): option names and JSON values (numbers that
    are finite, text, true/false, null, lists and mappings of them), else one line naming the head's class: the manifest
    could not give them back."""
    from mtcore.errors import PluginError

    method = getattr(head, "resolved_options", None)
    value = method() if callable(method) else {}
    who = f"head {type(head).__module__}.{type(head).__qualname__}: resolved_options()"
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise PluginError(f"{who} returned {type(value).__name__} {str(value)[:40]!r}; it returns {{option name: JSON value}}")
    odd = next((key for key, option in value.items() if not _json_value(option)), None)
    if odd is not None:
        raise PluginError(f"{who} gave {odd}={value[odd]!r}, not a JSON value (a finite number, text, true/false, null, or a list "
                          "or mapping of them): return plain Python values (float(x), not a tensor or numpy scalar)")
    return dict(value)


def _json_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, (list, tuple)):
        return all(_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_value(item) for key, item in value.items())
    return False


@dataclass
class HeadSpec:
    """Which head to build for one task, when there is no :class:`~mtcore.task.Task` at hand.

    ``name`` is a registered head name (``"classification"``, ``"mlp"``, ``"plugin:head"``);
    ``kind`` is the task kind (decides the default loss for custom heads and the manifest entry);
    ``task`` is optional extra task info for the manifest (see :func:`mtcore.model.manifest.task_info`);
    ``module`` is a ready head module to use instead of building ``name`` (a custom head).
    """

    name: str
    num_labels: int
    kind: str | None = None
    labels: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    task: Mapping[str, Any] | None = None
    module: nn.Module | None = None

    @classmethod
    def from_task(cls, task: Task, *, name: str | None = None, options: Mapping[str, Any] | None = None) -> HeadSpec:
        """The task's default head, with the head name or some options overridden."""
        from mtcore.model.manifest import task_info

        merged = {**dict(task.head_options), **dict(options or {})}
        info = task_info(task)
        return cls(name=name or task.head_ref, num_labels=task.num_labels, kind=task.kind.value,
                   labels=tuple(task.labels), options=merged, task=info)
