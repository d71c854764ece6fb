"""Masked-language-model head: BERT's prediction head, its decoder tied to the encoder's input embeddings.

A ``masked_lm`` task (an auxiliary task: the encoder keeps learning the language of the other tasks' texts) has rows whose
tokens were masked when the data were tokenized (:mod:`mtcore.data.masking`); its labels are the original ids at the masked
positions and ``-100`` elsewhere. The head decodes only the masked positions: with labels, ``logits`` are
``(masked tokens, vocabulary)`` in row-major order (the order of ``labels[labels >= 0]``), never the ``(batch, length,
vocabulary)`` scores of every token; without labels, every position's scores ``(batch, length, vocabulary)``.

The decoder's weight is the encoder's word-embedding matrix (:meth:`MaskedLMHead.tie_to_encoder`, called by
:class:`~mtcore.model.multitask_model.MultitaskModel` when it adds the head): it is trained with the encoder, saved once
(in ``encoder/``) and tied again on loading. The head's own parameters are the transform (linear, activation, layer norm)
and one output bias per vocabulary entry (the transform's biases and layer-norm epsilon as the encoder's own pre-training
head has them: none in ModernBERT's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtcore.errors import ConfigError, unknown
from mtcore.model.heads.base import Head, HeadOutput
from mtcore.model.heads.pooling import ACTIVATIONS, number_or_text

#: The ``__dict__`` key of the tied embedding module (kept out of the head's submodules, its state_dict and its parameters).
_TIED = "_tied_embeddings"


class MaskedLMHead(Head):
    """Hidden states -> linear -> activation -> layer norm -> the word embeddings' transpose (+ bias); cross-entropy at the
    masked positions.

    :param activation: the transform's activation: ``gelu``, ``relu``, ``tanh``, ``silu`` or ``leaky_relu`` (default: the one
        the encoder architecture's own pre-training head uses, from its config: BERT's and DeBERTa's ``hidden_act``,
        DistilBERT's ``activation``, ModernBERT's ``classifier_activation``, gelu for RoBERTa, XLM-R and ELECTRA).
    :param layer_norm_eps: the transform's layer-norm epsilon (default: the encoder's, ``layer_norm_eps`` or ``norm_eps`` of
        its config, else BERT's 1e-12).

    Added to a model built from a pre-training checkpoint that has its masked-LM head (BERT's ``cls.predictions``,
    RoBERTa's ``lm_head``, ...), the head starts from it (:mod:`mtcore.model.pretrained_mlm`; :attr:`pretrained` names it).
    """

    kinds = ("masked_lm",)

    def __init__(self, hidden_size: int, num_labels: int = 0, activation: str | None = None, layer_norm_eps: float | None = None) -> None:
        super().__init__(hidden_size, num_labels)
        own = [name for name in ACTIVATIONS if name != "none"]
        if activation is not None and (activation not in own and activation not in _transformers_activations()):
            raise unknown("activation", str(activation), [*own, *_transformers_activations()],
                          hint=f"choose one of {', '.join(own)} or a transformers activation (gelu_new, ...), or leave it out: "
                               "the encoder's own")
        layer_norm_eps = number_or_text(layer_norm_eps)
        if layer_norm_eps is not None and (isinstance(layer_norm_eps, bool) or not isinstance(layer_norm_eps, (int, float))
                                           or not 0 < layer_norm_eps < 1):
            raise ConfigError(f"layer_norm_eps must be a number between 0 and 1, got {layer_norm_eps!r}")
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.activation = ACTIVATIONS[activation]() if activation in ACTIVATIONS else _activation(activation or "gelu")
        self.activation_given = activation is not None
        #: the activation's name (the option, else the architecture's own once tied): what mt average compares
        self.activation_name: str = activation or "gelu"
        self.layer_norm = nn.LayerNorm(hidden_size, eps=float(layer_norm_eps or 1e-12))
        self.eps_given = layer_norm_eps is not None
        self.register_parameter("bias", None)  # one per vocabulary entry: made by tie_to_encoder
        #: the checkpoint's head this one started from (``"cls.predictions"``), None when it started random
        self.pretrained: str | None = None

    def tie_to_encoder(self, encoder: nn.Module) -> None:
        """Decode with ``encoder``'s input embeddings (its ``get_input_embeddings()``), and size the bias to them."""
        embeddings = encoder.get_input_embeddings() if hasattr(encoder, "get_input_embeddings") else None
        weight = getattr(embeddings, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
            raise ConfigError(f"a masked_lm head decodes with the encoder's word embeddings, and {type(encoder).__name__} has none; "
                              "use a BERT-like encoder")
        if weight.shape[1] != self.dense.out_features:  # embeddings narrower than the hidden states (ELECTRA's): project to them
            self.dense = nn.Linear(self.hidden_size, weight.shape[1])
            self.layer_norm = nn.LayerNorm(weight.shape[1], eps=self.layer_norm.eps)
        self.__dict__[_TIED] = embeddings
        config = getattr(encoder, "config", None)
        eps = getattr(config, "layer_norm_eps", None) or getattr(config, "norm_eps", None)
        if not self.eps_given and isinstance(eps, float) and 0 < eps < 1:
            self.layer_norm.eps = eps
        if not self.activation_given:
            self.activation_name = own_activation_name(config)
            self.activation = _activation(self.activation_name)
        for layer, switch in ((self.dense, "classifier_bias"), (self.layer_norm, "norm_bias")):  # ModernBERT's head has no biases
            if getattr(config, switch, True) is False:
                layer.register_parameter("bias", None)
        if self.bias is None or self.bias.numel() != weight.shape[0]:
            self.bias = nn.Parameter(torch.zeros(weight.shape[0], device=weight.device))
        self.num_labels = int(weight.shape[0])

    def resolved_options(self) -> dict[str, object]:
        """The activation and epsilon in use (the encoder's, unless given): saved models keep them."""
        return {"activation": self.activation_name, "layer_norm_eps": float(self.layer_norm.eps)}

    def load_pretrained(self, name: str, tensors: dict[str, torch.Tensor]) -> bool:
        """Start from a checkpoint's masked-LM head (``tensors`` keyed as this head's state dict; biases it lacks are zeros);
        False, and nothing changed, when their shapes are not this head's."""
        own = {"dense.weight": self.dense.weight, "dense.bias": self.dense.bias, "layer_norm.weight": self.layer_norm.weight,
               "layer_norm.bias": self.layer_norm.bias, "bias": self.bias}
        if any(own[key] is None or tuple(tensor.shape) != tuple(own[key].shape) for key, tensor in tensors.items()):
            return False
        with torch.no_grad():
            for key, target in own.items():
                if target is None:  # a bias this head (and so the checkpoint's) has none of
                    continue
                source = tensors.get(key)
                target.copy_(source.to(target.dtype)) if source is not None else target.zero_()
        self.pretrained = name
        return True

    @property
    def decoder_weight(self) -> torch.Tensor:
        embeddings = self.__dict__.get(_TIED)
        if embeddings is None:
            raise ConfigError("the masked_lm head is not tied to an encoder: add it to a MultitaskModel (or call tie_to_encoder)")
        return embeddings.weight

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, *, pooler_output: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, num_choices: int | None = None) -> HeadOutput:
        if labels is None:
            return HeadOutput(logits=self.decode(hidden_states))
        flat = labels.reshape(-1)
        where = (flat >= 0).nonzero().squeeze(1)  # the masked positions (one read of their count from the device)
        targets = flat.index_select(0, where).long()
        logits = self.decode(hidden_states.reshape(-1, hidden_states.shape[-1]).index_select(0, where))
        if targets.numel() == 0:  # no masked token in the batch (blank rows): a zero loss with a graph in training, none in
            # evaluation; its gradients are real zero tensors (a gradient combiner clips them in place)
            zero = (self.bias * 0).sum() + (hidden_states * 0).sum()
            return HeadOutput(logits=logits, loss=zero.float() if self.training else None)
        return HeadOutput(logits=logits, loss=F.cross_entropy(logits.float(), targets))

    def decode(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary of each hidden state (its last dimension)."""
        weight = self.decoder_weight
        transformed = self.layer_norm(self.activation(self.dense(hidden_states)))
        return F.linear(transformed.to(weight.dtype), weight, self.bias.to(weight.dtype))


#: Architectures whose masked-LM head calls gelu itself, whatever the config says.
GELU_HEADS = ("roberta", "xlm-roberta", "camembert", "electra", "mpnet", "data2vec-text", "roberta-prelayernorm", "xlm-roberta-xl",
              "longformer", "xmod", "esm", "ibert", "luke", "gte", "jina_embeddings_v3")


def own_activation_name(config: object) -> str:
    """The activation of the encoder architecture's own masked-LM head, read from its config (gelu when it names none)."""
    kind = getattr(config, "model_type", "")
    if kind in GELU_HEADS:
        return "gelu"
    name = getattr(config, {"distilbert": "activation", "modernbert": "classifier_activation"}.get(kind, "hidden_act"), "gelu")
    return name if isinstance(name, str) else "gelu"


def _transformers_activations() -> tuple[str, ...]:
    from transformers.activations import ACT2FN

    return tuple(ACT2FN)


def _activation(name: str) -> nn.Module:
    """transformers' ``ACT2FN[name]`` (what the architectures' heads use), or exact GELU for a name it lacks."""
    from transformers.activations import ACT2FN

    return ACT2FN[name] if name in ACT2FN else nn.GELU()
