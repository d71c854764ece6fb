"""Turning per-token hidden states into one vector per sequence (for sequence-level heads)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError, unknown

#: Pooling choices a sequence-level head accepts in its ``pooling`` option (``spans``: see :func:`pool_spans`).
POOLINGS = ("cls", "mean", "max", "pooler", "spans")

#: Activation names the MLP head accepts (``"none"`` = identity).
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "none": nn.Identity,
}


def number_or_text(value: Any) -> Any:
    """A number written as text (YAML reads ``1e-5`` so) as the number; anything else as it is."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_pooling(pooling: str) -> str:
    """Validate a pooling name (one-line error with did-you-mean)."""
    if pooling not in POOLINGS:
        raise unknown("pooling", str(pooling), POOLINGS)
    return pooling


def check_probability(name: str, value: float) -> float:
    """Validate a dropout rate."""
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"head option {name}={value} must be in [0, 1)")
    return value


def check_class_weights(value: object, num_labels: int) -> torch.Tensor | None:
    """The ``class_weights`` head option as a tensor (None stays None): one finite weight >= 0 per class, not all 0.
    Given as ``{label: weight}`` in a config, the model hands it over as a list in the task's label order."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"head option class_weights must be a list of {num_labels} numbers or a mapping {{label: weight}}, got {value!r}")
    if len(value) != num_labels:
        raise ConfigError(f"head option class_weights has {len(value)} weights for {num_labels} classes; give one per class "
                          "(or a mapping {label: weight}: labels left out keep weight 1)")
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) for w in value):
        raise ConfigError(f"head option class_weights must hold numbers, got {list(value)!r}")
    floats = [float(w) for w in value]
    if not all(math.isfinite(w) and w >= 0 for w in floats) or not any(w > 0 for w in floats):
        raise ConfigError(f"head option class_weights must be finite numbers >= 0, not all 0, got {list(value)!r}")
    return torch.tensor(floats, dtype=torch.float32)


def activation(name: str) -> nn.Module:
    """An activation module by name."""
    if name not in ACTIVATIONS:
        raise unknown("activation", str(name), ACTIVATIONS)
    return ACTIVATIONS[name]()


def hidden_layers(hidden_size: int, num_layers: int, linear_hidden_size: int | None, activation_name: str,
                  dropout_between: float, size_in: int | None = None, layer_norm: bool = False, layer_norm_eps: float = 1e-5,
                  inner_bias: bool = True) -> tuple[nn.Sequential, int]:
    """The inner layers of an N-linear-layers head, ``[linear, activation, (layer norm,) dropout] x (num_layers - 1)``
    (empty for 1), and the width they end at (what the output layer takes). ``size_in``: the pooled width, when not
    ``hidden_size`` (span pooling); inner layers are ``linear_hidden_size`` or ``hidden_size`` wide. ``layer_norm``,
    ``inner_bias``: ModernBERT's classifier (dense without bias, GELU, a layer norm without bias)."""
    if isinstance(num_layers, bool) or int(num_layers) != num_layers or int(num_layers) < 1:
        raise ConfigError(f"head option num_layers={num_layers} must be an integer of at least 1")
    for name, value in (("layer_norm", layer_norm), ("inner_bias", inner_bias)):
        if not isinstance(value, bool):
            raise ConfigError(f"head option {name}={value!r} must be true or false")
    try:  # YAML reads 1e-6 (no dot) as text, as it does for every float option
        layer_norm_eps = float(layer_norm_eps) if not isinstance(layer_norm_eps, bool) else layer_norm_eps
    except (TypeError, ValueError):
        pass
    if isinstance(layer_norm_eps, bool) or not isinstance(layer_norm_eps, float) or not 0 < layer_norm_eps < 1:
        raise ConfigError(f"head option layer_norm_eps={layer_norm_eps!r} must be a small number > 0, e.g. 0.00001")
    if layer_norm_eps != 1e-5 and not layer_norm:
        raise ConfigError("head option layer_norm_eps is the epsilon of the layer norms layer_norm: true adds; add layer_norm: true, "
                          "or leave layer_norm_eps out")
    if int(num_layers) == 1 and (layer_norm or not inner_bias):
        raise ConfigError("head options layer_norm and inner_bias shape the inner layers, and num_layers 1 has none; "
                          "set num_layers: 2 (or leave them out)")
    width, size_in, layers = int(linear_hidden_size or hidden_size), size_in or hidden_size, []
    for _ in range(int(num_layers) - 1):
        layers += [nn.Linear(size_in, width, bias=inner_bias), activation(activation_name)]
        layers += [nn.LayerNorm(width, eps=float(layer_norm_eps), bias=inner_bias)] if layer_norm else []
        layers += [nn.Dropout(check_probability("dropout_between", dropout_between))]
        size_in = width
    return nn.Sequential(*layers), size_in


def pool(
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    pooling: str,
    pooler_output: torch.Tensor | None = None,
) -> torch.Tensor:
    """One vector per sequence: the first ([CLS]) token, the masked mean or max, or the pooler's output.

    No host synchronisation: masks are applied arithmetically.
    """
    if pooling == "cls":
        return hidden_states[:, 0]
    if pooling == "pooler":
        if pooler_output is None:
            raise ConfigError("head pooling 'pooler' needs an encoder with a pooler; use pooling 'cls' or 'mean'")
        return pooler_output
    if attention_mask is None:
        attention_mask = torch.ones(hidden_states.shape[:2], device=hidden_states.device, dtype=torch.long)
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    if pooling == "mean":  # summed in fp32: bf16 counts and sums of hundreds of tokens round
        summed = (hidden_states.float() * mask.float()).sum(dim=1)
        count = mask.float().sum(dim=1).clamp(min=1.0)
        return (summed / count).to(hidden_states.dtype)
    if pooling == "max":
        lowest = torch.finfo(hidden_states.dtype).min
        return hidden_states.masked_fill(mask == 0, lowest).max(dim=1).values
    raise unknown("pooling", str(pooling), POOLINGS)


#: How ``pooling: spans`` reads one span (head option ``span_pooling``): jiant's span extractors.
SPAN_POOLINGS = ("mean", "max", "endpoints")


def pool_spans(hidden_states: torch.Tensor, spans: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """``(batch, spans * hidden)``: each span's tokens pooled, concatenated in the rows' span order (jiant's span
    classification): ``how`` ``"mean"`` or ``"max"`` over the span's tokens, or ``"endpoints"``, its first and last
    token's states side by side (jiant's EndpointSpanExtractor; ``(batch, spans * 2 * hidden)``). ``spans``
    ``(batch, spans, 2)`` holds each span's first and last token; a negative one (no span, or none of its tokens left:
    :mod:`mtcore.data.spans`) pools as zeros. In fp32, no host sync."""
    spans = spans.to(hidden_states.device)
    present = spans[..., :1] >= 0  # (batch, spans, 1)
    if how == "endpoints":
        batch, count, width = spans.shape[0], spans.shape[1], hidden_states.shape[-1]
        index = spans.clamp(min=0).reshape(batch, count * 2, 1).expand(-1, -1, width)
        ends = hidden_states.float().gather(1, index).reshape(batch, count, 2 * width) * present
        return ends.reshape(batch, -1).to(hidden_states.dtype)
    positions = torch.arange(hidden_states.shape[1], device=hidden_states.device)
    inside = (positions >= spans[..., :1]) & (positions <= spans[..., 1:]) & present  # (batch, spans, length)
    if how == "max":
        values = hidden_states.float()[:, None].masked_fill(~inside[..., None], float("-inf")).amax(dim=2)
        pooled = torch.where(inside.any(-1, keepdim=True), values, torch.zeros_like(values))
    else:
        pooled = torch.bmm(inside.float(), hidden_states.float()) / inside.float().sum(dim=-1, keepdim=True).clamp(min=1.0)
    return pooled.reshape(pooled.shape[0], -1).to(hidden_states.dtype)


class SequencePooler(nn.Module):
    """Pooling followed by input dropout: the common front of every sequence-level head. ``num_spans``: how many
    spans each row has, for ``pooling: spans`` (the pooled vector is that many times the hidden size)."""

    def __init__(self, pooling: str = "cls", dropout: float = 0.1, num_spans: int | None = None, span_pooling: str | None = None) -> None:
        super().__init__()
        self.pooling = check_pooling(pooling)
        self.dropout = nn.Dropout(check_probability("dropout", dropout))
        for option, value in (("num_spans", num_spans), ("span_pooling", span_pooling)):
            if value is not None and pooling != "spans":
                raise ConfigError(f"head option {option} is for pooling 'spans', and this head pools {pooling!r}; remove {option}")
        if num_spans is not None and (isinstance(num_spans, bool) or not isinstance(num_spans, int) or num_spans < 1):
            raise ConfigError(f"head option num_spans={num_spans!r} must be a whole number of at least 1 (the spans each row has)")
        if span_pooling is not None and span_pooling not in SPAN_POOLINGS:
            raise unknown("span_pooling", str(span_pooling), SPAN_POOLINGS)
        self.num_spans = (num_spans or 2) if pooling == "spans" else None
        self.span_pooling = (span_pooling or "mean") if pooling == "spans" else None

    def width(self, hidden_size: int) -> int:
        """The pooled vector's width."""
        return hidden_size * (self.num_spans or 1) * (2 if self.span_pooling == "endpoints" else 1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, pooler_output: torch.Tensor | None,
                spans: torch.Tensor | None = None) -> torch.Tensor:
        if self.pooling != "spans":
            return self.dropout(pool(hidden_states, attention_mask, self.pooling, pooler_output))
        if spans is None:
            raise ConfigError("its head pools spans of each row, and the batch has none (a task whose rows map no spans: inputs: "
                              "{spans: <field>})")
        if spans.dim() != 3 or spans.shape[1] != self.num_spans:
            raise ConfigError(f"its head pools {self.num_spans} spans of each row (head option num_spans), and the batch's rows have "
                              f"{spans.shape[1] if spans.dim() == 3 else '?'}")
        return self.dropout(pool_spans(hidden_states, spans, self.span_pooling or "mean"))

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}" + (f", num_spans={self.num_spans}, span_pooling={self.span_pooling!r}" if self.num_spans else "")
