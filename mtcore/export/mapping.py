"""Mapping one task head onto a plain ``transformers`` task model, checked numerically.

The mapping is generic, with no per-architecture weight table:

1. build ``AutoModelFor<Task>.from_config(encoder config + labels)``;
2. load the shared encoder's state dict into its base model (``base_model_prefix``);
3. list the linear layers (and layer norms) the plain model has *outside* its base model (its classifier: BERT's
   ``classifier``; RoBERTa's ``classifier.dense`` + ``classifier.out_proj``; DistilBERT's
   ``pre_classifier`` + ``classifier``; DeBERTa's ``pooler.dense`` + ``classifier``; ModernBERT's
   ``head.dense`` + ``head.norm`` + ``classifier``) and copy our head's layers onto them, in order, when their kinds,
   number and shapes agree;
4. run both models on a few tokenized probes and compare the logits (``tolerance`` 1e-5):
   equal structure is not equal computation (BERT's classifier reads the pooler; a head with
   ``pooling: cls`` does not), so only the numbers decide.

Whatever fails is explained in one line naming the head that *would* export.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mtcore.errors import MtError
from mtcore.task import TaskKind

#: The activation between the two classifier layers of architectures with a two-layer classifier.
TWO_LAYER_ACTIVATIONS = {"roberta": "tanh", "xlm-roberta": "tanh", "camembert": "tanh", "xlm-roberta-xl": "tanh",
                         "data2vec-text": "tanh", "distilbert": "relu", "electra": "gelu"}
PROBE_TEXTS = ("a short probe sentence.", "проверка экспорта: ещё одно, более длинное предложение для сравнения логитов")
PROBE_PAIRS = ("the second segment", "второй сегмент")
DEFAULT_TOLERANCE = 1e-5


class ExportError(MtError):
    """A head that has no plain-transformers equivalent (or an export that cannot be written)."""


@dataclass
class AutoTarget:
    """The ``transformers`` auto class and config settings for one task kind."""

    auto_class: str
    problem_type: str | None
    pipeline: str | None


def target_for(kind: TaskKind, task_id: str = "") -> AutoTarget:
    """Which plain task model a task of ``kind`` becomes (``task_id``: for messages)."""
    if kind is TaskKind.MASKED_LM:  # a fill-mask model (mtcore.export.masked_lm_head)
        return AutoTarget("AutoModelForMaskedLM", None, "fill-mask")
    if kind in (TaskKind.TEXT_CLASSIFICATION, TaskKind.PAIR_CLASSIFICATION):
        return AutoTarget("AutoModelForSequenceClassification", "single_label_classification", "text-classification")
    if kind is TaskKind.MULTI_LABEL:
        return AutoTarget("AutoModelForSequenceClassification", "multi_label_classification", "text-classification")
    if kind is TaskKind.REGRESSION:
        return AutoTarget("AutoModelForSequenceClassification", "regression", "text-classification")
    if kind is TaskKind.MULTIPLE_CHOICE:
        return AutoTarget("AutoModelForMultipleChoice", None, None)
    if kind is TaskKind.EXTRACTIVE_QA:
        return AutoTarget("AutoModelForQuestionAnswering", None, None)  # transformers 5 has no QA pipeline
    return AutoTarget("AutoModelForTokenClassification", None, "token-classification")


#: The layers a head's weights are copied between: linear layers and layer norms (ModernBERT's classifier has one).
COPIED = (nn.Linear, nn.LayerNorm)


def head_linears(head: nn.Module, task_id: str) -> list[nn.Module]:
    """Our head's linear layers and layer norms in order; a head with any other parameters has no plain equivalent."""
    layers = [m for m in head.modules() if isinstance(m, COPIED)]
    inside = {id(p) for layer in layers for p in layer.parameters()}
    others = [name for name, p in head.named_parameters() if id(p) not in inside]
    if others:
        raise ExportError(f"task {task_id!r}: its head {type(head).__name__} has parameters outside linear layers ({others[0]}), "
                          "which no plain transformers classifier holds; export the encoder alone with --encoder-only")
    return layers


def classifier_layers(plain: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[str]]:
    """The plain model's linear layers and layer norms outside its base model, and any other parameters there."""
    prefix = plain.base_model_prefix
    layers = [(name, m) for name, m in plain.named_modules()
              if isinstance(m, COPIED) and name != prefix and not name.startswith(prefix + ".")]
    inside = {id(p) for _, layer in layers for p in layer.parameters()}
    others = [name for name, p in plain.named_parameters()
              if not name.startswith(prefix + ".") and id(p) not in inside]
    return layers, others


def what_exports(plain: nn.Module, kind: TaskKind) -> str:
    """One clause: what ``plain``'s classifier computes, and the mtcore head that computes the same."""
    if kind is TaskKind.MASKED_LM:
        return (f"{type(plain).__name__}'s prediction head is the architecture's own (its activation and layer-norm epsilon from the "
                "encoder's config): train the masked_lm head without the activation and layer_norm_eps options, which then follow it")
    layers, others = classifier_layers(plain)
    linears = [layer for _, layer in layers if isinstance(layer, nn.Linear)]
    name = type(plain).__name__
    model_type = getattr(plain.config, "model_type", "")
    if others:
        return f"{name}'s classifier also has {others[0]}, which no mtcore head reproduces"
    if kind in (TaskKind.TOKEN_CLASSIFICATION, TaskKind.EXTRACTIVE_QA) and len(layers) > 1:  # ModernBERT's: dense, act, norm first
        return f"{name}'s classifier is {_count([layer for _, layer in layers])} over every token, which no mtcore head reproduces"
    if kind is TaskKind.TOKEN_CLASSIFICATION:
        return f"{name} is a linear layer over every token: use head 'token_classification'"
    if kind is TaskKind.EXTRACTIVE_QA:
        return f"{name} is a linear layer over every token giving start and end scores: use head 'extractive_qa'"
    if len(linears) == 1:
        base = getattr(plain, plain.base_model_prefix, None)
        if isinstance(getattr(base, "pooler", None), nn.Module):
            head = {TaskKind.MULTIPLE_CHOICE: "multiple_choice", TaskKind.REGRESSION: "regression", TaskKind.MULTI_LABEL: "multi_label"}.get(kind, "classification")
            return f"{name} is a linear layer over the encoder's pooler: train with head '{head}' and head_options {{pooling: pooler}}"
        return f"{name} is a single linear layer: train with a one-linear head"
    if len(linears) == 2 and len(layers) == 3 and kind not in (TaskKind.TOKEN_CLASSIFICATION, TaskKind.EXTRACTIVE_QA):
        act = getattr(plain.config, "classifier_activation", None) or "<the architecture's activation>"
        head = {TaskKind.MULTIPLE_CHOICE: "multiple_choice", TaskKind.REGRESSION: "regression", TaskKind.MULTI_LABEL: "multi_label"}.get(kind, "mlp")
        bias = bool(getattr(plain.config, "classifier_bias", True))
        pooling = getattr(plain.config, "classifier_pooling", "cls")
        what = f"{name} is a linear layer, {act} and a layer norm, then a linear layer, over the {'first token' if pooling == 'cls' else 'mean of the tokens'}"
        if bias != bool(getattr(plain.config, "norm_bias", bias)):
            return f"{what}, the first with a bias and the norm without one (or the other way round), which no mtcore head reproduces"
        eps = float(getattr(plain.config, "norm_eps", 1e-5))
        return (f"{what}: train with head '{head}' and head_options {{num_layers: 2, activation: {act}, layer_norm: true, "
                f"{'' if eps == 1e-5 else f'layer_norm_eps: {eps:g}, '}inner_bias: {str(bias).lower()}, pooling: {pooling}}}")
    if len(linears) == 2 and kind not in (TaskKind.TOKEN_CLASSIFICATION, TaskKind.EXTRACTIVE_QA):
        act = TWO_LAYER_ACTIVATIONS.get(model_type) or getattr(plain.config, "pooler_hidden_act", None) or "<the architecture's activation>"
        head = {TaskKind.MULTIPLE_CHOICE: "multiple_choice", TaskKind.REGRESSION: "regression", TaskKind.MULTI_LABEL: "multi_label"}.get(kind, "mlp")
        return (f"{name} is two linear layers with {act} between them over the first token: train with head '{head}' and "
                f"head_options {{num_layers: 2, activation: {act}, pooling: cls}}")
    return f"{name}'s classifier has {len(linears)} linear layers, which no mtcore head of this task's kind reproduces"


def refusal(task_id: str, head: str, plain: nn.Module, kind: TaskKind, detail: str = "") -> ExportError:
    """The one-line refusal: which head was trained, why it does not map, which head would."""
    return ExportError(f"task {task_id!r} cannot be exported as a plain {type(plain).__name__}: its head {head}{detail}; "
                       f"{what_exports(plain, kind)}; or export the encoder alone with --encoder-only")


def plain_config(encoder_config: Any, task: Any, num_labels: int, target: AutoTarget) -> Any:
    """A copy of the encoder's config with the task's labels (``id2label`` / ``label2id``)."""
    config = copy.deepcopy(encoder_config)
    if task.kind in (TaskKind.MULTIPLE_CHOICE, TaskKind.MASKED_LM):
        return config
    names = list(task.labels) if task.labels and len(task.labels) == num_labels else [f"LABEL_{i}" for i in range(num_labels)]
    if task.kind is TaskKind.REGRESSION and num_labels == 1:
        names = [task.name]
    config.num_labels = num_labels
    config.id2label = {i: str(name) for i, name in enumerate(names)}
    config.label2id = {str(name): i for i, name in enumerate(names)}
    if target.problem_type:
        config.problem_type = target.problem_type
    return config


def build_plain(config: Any, target: AutoTarget, task_id: str) -> nn.Module:
    """``AutoModelFor<Task>.from_config(config)`` or a one-line ExportError."""
    import transformers

    auto = getattr(transformers, target.auto_class)
    try:
        plain = auto.from_config(config, attn_implementation=getattr(config, "_attn_implementation", None) or "eager")
    except (ValueError, KeyError) as exc:
        raise ExportError(f"task {task_id!r}: transformers has no {target.auto_class.removeprefix('Auto')} class for model type "
                          f"{getattr(config, 'model_type', '?')!r} ({str(exc).splitlines()[0][:120]}); export the encoder alone with --encoder-only") from None
    return plain.float().eval()


def load_encoder_into(plain: nn.Module, encoder: nn.Module, task_id: str) -> None:
    """The shared encoder's weights into the plain model's base model (extra tensors such as an unused pooler are dropped)."""
    base = getattr(plain, plain.base_model_prefix)
    from mtcore.model.lora import adapters_of, plain_state_dict

    merged = plain_state_dict(encoder, adapters_of(encoder, task_id))  # LoRA: the task's adapters (its own, or the shared)
    state = {k: v.detach().float() if v.is_floating_point() else v for k, v in merged.items()}
    missing, _unexpected = base.load_state_dict(state, strict=False)
    if missing:
        raise ExportError(f"task {task_id!r}: the encoder's weights do not fill {type(plain).__name__}'s base model "
                          f"({len(missing)} missing, e.g. {missing[0]}); export the encoder alone with --encoder-only")


def copy_head(plain: nn.Module, head: nn.Module, task_id: str, kind: TaskKind, described: str) -> list[str]:
    """Copy our head's linear layers onto the plain classifier's; returns the names filled.

    ``described`` names our head in messages (``'classification' with options {...}``).
    """
    if kind is TaskKind.MASKED_LM:
        from mtcore.export.masked_lm_head import copy_mlm_head

        return copy_mlm_head(plain, head, task_id)
    ours = head_linears(head, task_id)
    theirs, others = classifier_layers(plain)
    if others:
        raise refusal(task_id, described, plain, kind, " has no counterpart there")
    if len(ours) != len(theirs):
        raise refusal(task_id, described, plain, kind, f" has {_count(ours)}, the plain classifier {_count([m for _, m in theirs])}")
    for (name, target), source in zip(theirs, ours):
        if type(target) is not type(source):
            raise refusal(task_id, described, plain, kind, f" has a {type(source).__name__} where {name} is a {type(target).__name__}")
        if tuple(target.weight.shape) != tuple(source.weight.shape) or (target.bias is None) != (source.bias is None):
            bias = "" if (target.bias is None) == (source.bias is None) else f" {'with' if source.bias is not None else 'without'} a bias"
            raise refusal(task_id, described, plain, kind, f" has a layer of shape {tuple(source.weight.shape)}{bias} where {name} is "
                          f"{tuple(target.weight.shape)}{'' if not bias else ' ' + ('with' if target.bias is not None else 'without') + ' one'}")
        if isinstance(target, nn.LayerNorm) and target.eps != source.eps:
            raise refusal(task_id, described, plain, kind, f" has a layer norm of eps {source.eps:g} where {name}'s is {target.eps:g} "
                          f"(head option layer_norm_eps)")
    with torch.no_grad():
        for (_, target), source in zip(theirs, ours):
            target.weight.copy_(source.weight.float())
            if target.bias is not None:
                target.bias.copy_(source.bias.float())
    return [name for name, _ in theirs]


def _count(layers: list[nn.Module]) -> str:
    norms = sum(isinstance(m, nn.LayerNorm) for m in layers)
    return f"{len(layers) - norms} linear layer(s)" + (f" and {norms} layer norm(s)" if norms else "")


def probe_inputs(tokenizer: Any, kind: TaskKind, pair: bool) -> dict[str, torch.Tensor]:
    """A padded batch of probe texts (pairs for pair tasks; two choices each for multiple choice)."""
    texts = list(PROBE_TEXTS)
    if kind is TaskKind.MULTIPLE_CHOICE:
        first = [t for t in texts for _ in PROBE_PAIRS]
        second = [p for _ in texts for p in PROBE_PAIRS]
        encoded = tokenizer(first, second, padding=True, truncation=True, max_length=64, return_tensors="pt")
        return {k: v.view(len(texts), len(PROBE_PAIRS), -1) for k, v in encoded.items()}
    second = list(PROBE_PAIRS) if pair else None
    return dict(tokenizer(texts, second, padding=True, truncation=True, max_length=64, return_tensors="pt"))


def max_difference(ours: torch.Tensor, theirs: torch.Tensor, mask: torch.Tensor | None, kind: TaskKind) -> float:
    """Largest absolute logit difference (real tokens only for token classification and extractive QA)."""
    if ours.shape != theirs.shape:
        return float("inf")
    diff = (ours.float() - theirs.float()).abs()
    if kind in (TaskKind.TOKEN_CLASSIFICATION, TaskKind.EXTRACTIVE_QA, TaskKind.MASKED_LM) and mask is not None:
        diff = diff[mask.bool()]
    return float(diff.max()) if diff.numel() else 0.0


def verify(model: Any, head_id: str, plain: nn.Module, inputs: dict[str, torch.Tensor], kind: TaskKind) -> float:
    """Run both models on ``inputs`` (CPU, float32, eval mode) and return the largest logit difference."""
    with torch.inference_mode():
        ours = model(head_id, **inputs).logits
        out = plain(**inputs)
        theirs = torch.stack([out.start_logits, out.end_logits], -1) if kind is TaskKind.EXTRACTIVE_QA else out.logits
    return max_difference(ours, theirs, inputs.get("attention_mask"), kind)


def no_shared_encoder(model: Any) -> str | None:
    """Why ``model`` has no one encoder every task shares (None: it has)."""
    own_layers = getattr(model, "task_layers", None)
    if own_layers is not None:
        return (f"the encoder's last {own_layers.count} layers are task-specific (encoder.task_layers), so there is no one shared "
                "encoder to export; export a task instead (its model holds the task's own top layers)")
    if (getattr(model, "lora", None) or {}).get("per_task"):
        return ("every task has LoRA adapters of its own (encoder.options.lora.per_task), so there is no one shared encoder to "
                "export; export a task instead (its model has the task's adapters merged in)")
    return None
