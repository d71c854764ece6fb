"""``MultitaskModel``: one shared encoder, a small head per task.

::

    model = MultitaskModel("DeepPavlov/rubert-base-cased", {"rsg:danetqa": danetqa_task, "rsg:terra": terra_task})
    model.train()
    out = model("rsg:danetqa", input_ids=..., attention_mask=..., token_type_ids=..., labels=...)
    out.loss.backward()
    model.save_pretrained("out/model", tokenizer=tokenizer)
    model = MultitaskModel.from_pretrained("out/model")

The encoder is any architecture ``transformers.AutoModel`` loads; it exists once in memory and
once on disk whatever the number of tasks. Like Hugging Face models, a new or loaded
``MultitaskModel`` is in evaluation mode: call ``.train()`` before training.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from mtcore.errors import ConfigError, DataError, unknown
from mtcore.model import encoder as enc
from mtcore.model.heads.base import HeadSpec, resolved_options_of
from mtcore.model.heads.factory import HeadCall, as_spec, build_head, call_head, call_style, check_logits
from mtcore.model.param_groups import parameter_groups as _parameter_groups
from mtcore.model.lora import add_lora, add_task_adapters, lora_settings, task_adapters
from mtcore.model.task_layers import TaskLayers, check_count
from mtcore.task import Task


@dataclass
class MultitaskOutput(ModelOutput):
    """What :meth:`MultitaskModel.forward` returns: ``loss`` (when labels were given) and ``logits``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


HeadsArg = Mapping[str, "Task | HeadSpec | nn.Module"] | Sequence[Task]


class MultitaskModel(nn.Module):
    """A shared encoder and one head per task.

    :param encoder: a hub id or local directory for ``AutoModel.from_pretrained`` (a saved
        mtcore model directory works too: its encoder is used), or a loaded encoder module.
    :param heads_by_task: task id -> a :class:`~mtcore.task.Task` (its default head), a
        :class:`~mtcore.model.heads.base.HeadSpec`, or a custom ``nn.Module``; a list of Tasks is
        keyed by their ids.
    :param tokenizer: kept as ``model.tokenizer`` and saved with the model.
    :param dtype: encoder (and heads) dtype: ``"float32"`` (default), ``"bfloat16"``,
        ``"float16"`` or ``"auto"`` (the checkpoint's own).
    :param attn_implementation: ``"sdpa"`` (default; eager for architectures without SDPA),
        ``"eager"``, ``"flash_attention_2"``, ...
    :param gradient_checkpointing: recompute activations in the backward pass to save memory.
    :param freeze_encoder: train the heads only.
    :param freeze_layers: freeze the embeddings and the first ``k`` transformer layers.
    :param padding_free: let training batches that carry ``token_index``/``cu_seqlens`` run the
        encoder on real tokens only (see :mod:`mtcore.model.padding_free`; checked on a probe).
    :param packed_attention: attention over padding-free batches: ``"varlen"`` (FlashAttention's
        variable-length kernel on CUDA) or ``"flex"`` (FlexAttention with a block-diagonal mask;
        for a compiled encoder: run eagerly it computes every score of the packed row).
    :param fp32_residual: under autocast (bf16/fp16 training), keep the encoder's layer-norm
        outputs, and so its residual stream, in float32 (PyTorch's autocast default). ``False``
        keeps them in the autocast dtype, with float32 statistics inside the norm
        (:mod:`mtcore.model.norms`): half the bytes in the element-wise kernels, Megatron-LM's
        default. No effect in fp32.
    :param flash_attention: replace torch's FlashAttention-2 kernels (padding-free ``varlen_attn``,
        SDPA's flash backend) with a registered implementation, ``"FA4"`` or ``"FA3"``, for the
        whole process (:mod:`mtcore.model.flash_impl`; needs attention dropout 0 and the kernels'
        package). ``None`` (default) keeps torch's own.
    :param task_layers: give every task its own copy of the encoder's last ``k`` transformer layers
        (:mod:`mtcore.model.task_layers`); the embeddings and the other layers stay shared.
    :param lora: train low-rank adapters on a frozen encoder instead of its weights, e.g. ``{"r": 8,
        "alpha": 16}`` (:mod:`mtcore.model.lora`; needs ``peft``); saving merges them into the weights;
        ``"per_task": True`` gives every task adapters of its own (saved apart, in ``lora/``).
    :param trust_remote_code: allow encoder code from the hub (off unless asked).
    :param encoder_kwargs: more keyword arguments for ``AutoModel.from_pretrained`` (``revision``,
        ``cache_dir``, ``local_files_only``, ...).
    """

    def __init__(
        self,
        encoder: str | os.PathLike | nn.Module,
        heads_by_task: HeadsArg,
        *,
        tokenizer: Any = None,
        dtype: str | torch.dtype | None = None,
        attn_implementation: str | None = "sdpa",
        gradient_checkpointing: bool = False,
        freeze_encoder: bool = False,
        freeze_layers: int = 0,
        padding_free: bool = False,
        packed_attention: str = "varlen",
        fp32_residual: bool = True,
        flash_attention: str | None = None,
        task_layers: int = 0,
        lora: Mapping[str, Any] | None = None,
        trust_remote_code: bool = False,
        encoder_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        #: what every head's initial weights derive from, with its task id (see :meth:`add_head`)
        self.head_seed_base: int = _rng_fingerprint()
        if isinstance(encoder, nn.Module):
            self.encoder = encoder
            if dtype is not None and dtype != "auto":
                self.encoder.to(enc.parse_dtype(dtype))
        elif isinstance(encoder, (str, os.PathLike)):
            self.encoder = enc.load_encoder(encoder, dtype=dtype, attn_implementation=attn_implementation,
                                            trust_remote_code=trust_remote_code, from_pretrained_kwargs=encoder_kwargs)
        else:
            raise ConfigError(f"encoder must be a hub id, a local directory or a loaded model, got {type(encoder).__name__}")
        self.hidden_size: int = enc.hidden_size(self.encoder)
        self.uses_token_type_ids: bool = enc.uses_token_type_ids(self.encoder)
        self.has_pooler: bool = enc.has_pooler(self.encoder)
        self._encoder_inputs = enc.encoder_inputs(self.encoder)
        self._position_offset: int | None = None
        self.packed_attention = enc.check_packed_attention(packed_attention)
        self.heads = nn.ModuleDict()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.task_objects: dict[str, Task] = {}  # the Tasks heads were built from (not saved: the manifest is)
        self._calls: dict[str, HeadCall] = {}
        self._aliases: dict[str, str] = {}
        self.tokenizer = tokenizer
        #: the task-specific top layers (:class:`~mtcore.model.task_layers.TaskLayers`); None when all are shared
        self.task_layers: TaskLayers | None = None
        self.encoder_without_grad = False  # True: the encoder runs without gradients (encoder.freeze_encoder_steps)
        for task_id, head in _heads_mapping(heads_by_task).items():
            self.add_head(task_id, head)
        if isinstance(encoder, (str, os.PathLike)):  # a masked_lm head starts from the checkpoint's own, when it has one
            from mtcore.model.pretrained_mlm import start_from_checkpoint

            start_from_checkpoint(self.heads, str(encoder), encoder_kwargs, getattr(self.encoder, "config", None))
        settings = lora_settings(lora)
        if settings and (freeze_encoder or freeze_layers):
            raise ConfigError("lora trains adapters on a frozen encoder: leave freeze_encoder and freeze_layers out")
        #: the LoRA settings as applied (None without adapters)
        self.lora: dict[str, Any] | None = add_lora(self.encoder, settings, list(self.heads)) if settings else None
        if freeze_encoder or freeze_layers:
            enc.freeze(self.encoder, whole=bool(freeze_encoder), first_layers=int(freeze_layers or 0))
        if gradient_checkpointing:
            enc.enable_gradient_checkpointing(self.encoder)
        if not isinstance(fp32_residual, bool):
            raise ConfigError(f"fp32_residual must be true or false, got {fp32_residual!r}")
        if not fp32_residual:
            from mtcore.model.norms import keep_norms_in_compute_dtype

            if not keep_norms_in_compute_dtype(self.encoder):
                raise ConfigError(f"fp32_residual: false changes nn.LayerNorm modules, and encoder {type(self.encoder).__name__} "
                                  "has none; leave fp32_residual out")
        self.flash_attention: str | None = None
        if flash_attention is not None:
            from mtcore.model.flash_impl import activate

            self.flash_attention = activate(flash_attention, self.encoder, padding_free=bool(padding_free))
        if padding_free:
            self.enable_padding_free()
        if check_count(task_layers):
            if self.lora:
                raise ConfigError("lora (shared or per task) and task_layers do not go together: leave task_layers out (or lora)")
            self.task_layers = TaskLayers(self.encoder, task_layers)  # copies of layers as set up above (frozen, patched)
            for task_id in self.heads:
                self.task_layers.add(task_id)
        self.eval()

    def enable_padding_free(self) -> None:
        """Accept padding-free batches (``token_index``, ``cu_seqlens``); ConfigError where the encoder cannot."""
        from mtcore.model import padding_free

        if self.flash_attention:
            from mtcore.model.flash_impl import check_padding_free

            check_padding_free(self.flash_attention)
        if self._position_offset is None:
            self._position_offset = padding_free.enable(self.encoder, uses_token_type_ids=self.uses_token_type_ids, pooler=self.has_pooler)

    @property
    def padding_free(self) -> bool:
        """True once :meth:`enable_padding_free` has succeeded."""
        return self._position_offset is not None

    # ---- heads ------------------------------------------------------------------------------
    def add_head(self, task_id: str, head: Task | HeadSpec | nn.Module) -> nn.Module:
        """Build and attach the head of one more task; returns the head module.

        A head's initial weights depend only on the task id and on the global torch random state
        when the model was built (:attr:`head_seed_base`; so ``torch.manual_seed(s)`` before building
        sets them), not on the other tasks or their order: each head is built on a forked CPU
        generator seeded from both, and the global random stream is left as it was.
        """
        if not isinstance(task_id, str) or not task_id or "." in task_id:
            raise ConfigError(f"task id {task_id!r} must be a non-empty string without '.' (it names a torch module)")
        if task_id in self.heads:
            raise ConfigError(f"task {task_id!r} already has a head in this model")
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(head_seed(self.head_seed_base, task_id))
            module, info = build_head(task_id, as_spec(task_id, head), self.hidden_size)
            if callable(getattr(module, "tie_to_encoder", None)):  # a masked_lm head decodes with the word embeddings
                module.tie_to_encoder(self.encoder)
            resolved_options_of(module)  # what the save will record: checked now, not after the training
        if getattr(module, "uses_pooler", False) and not self.has_pooler:
            encoder = type(self.encoder).__name__
            if getattr(getattr(module, "pooler", None), "pooling", None) == "pooler":  # mtcore's heads: their pooling option
                raise ConfigError(f"task {task_id!r}: head pooling 'pooler' needs an encoder with a pooler, and {encoder} has none; "
                                  "use pooling 'cls' or 'mean'")
            raise ConfigError(f"task {task_id!r}: head {info.get('head_id') or info.get('head_class')!r} reads the encoder's pooler "
                              f"(uses_pooler), and {encoder} has none; choose another head, or an encoder with a pooler (BERT's)")
        reference = next(self.encoder.parameters(), None)
        if reference is not None:
            module.to(device=reference.device, dtype=reference.dtype if reference.is_floating_point() else None)
        module.train(self.training)
        self.heads[task_id] = module
        if self.task_layers is not None:
            self.task_layers.add(task_id)
        if (getattr(self, "lora", None) or {}).get("per_task"):  # its own adapters (built with the model: below)
            add_task_adapters(self.encoder, self.lora, task_id)
        self.tasks[task_id] = info
        if isinstance(head, Task):
            self.task_objects[task_id] = head  # kept for prediction in this session (preprocessing functions included)
        self._calls[task_id] = call_style(module, info.get("kind"))
        self._aliases = _aliases(self.heads.keys())
        return module

    def resolve_task(self, task: str | Task) -> str:
        """The head key for ``task``: its id, an unambiguous bare name (``danetqa`` -> ``rsg:danetqa``) or a Task."""
        if isinstance(task, Task):
            task = task.id
        if task in self._calls:
            return task
        found = self._aliases.get(task)
        if found is None:
            raise unknown("task", str(task), list(self.heads.keys()), hint="this model has heads for: " + (", ".join(self.heads.keys()) or "no task"))
        return found

    # ---- forward ----------------------------------------------------------------------------
    def forward(
        self,
        task: str | Task,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        token_index: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        choice_mask: torch.Tensor | None = None,
        span_tokens: torch.Tensor | None = None,
        **encoder_inputs: Any,
    ) -> MultitaskOutput:
        """Encode the batch once and run the head of ``task``.

        Multiple-choice inputs of shape ``(batch, choices, length)`` are flattened for the
        encoder and scored back into logits of shape ``(batch, choices)``; ``choice_mask``
        ``(batch, choices)``, false at the stand-ins a collator padded rows with fewer choices with,
        sets those logits to the dtype's lowest value and leaves them out of the loss. ``token_type_ids``
        reach the encoder only when it uses segment embeddings. Extra keyword arguments go to
        the encoder when its forward accepts them. ``token_index`` and ``cu_seqlens`` (from a
        padding-free collator) make the encoder compute on real tokens only. ``span_tokens`` ``(batch, spans, 2)``
        (tasks that map ``spans``) reach heads that pool spans.
        """
        task_id = self.resolve_task(task)
        enc.check_inputs(task_id, input_ids, attention_mask, token_type_ids, labels, encoder_inputs)
        num_choices = None
        if input_ids is not None and input_ids.dim() == 3:
            num_choices = input_ids.shape[1]
            input_ids, attention_mask, token_type_ids = (None if t is None else t.reshape(-1, t.shape[-1]) for t in (input_ids, attention_mask, token_type_ids))
            encoder_inputs = {k: v.reshape(-1, v.shape[-1]) if isinstance(v, torch.Tensor) and v.dim() == 3 else v for k, v in encoder_inputs.items()}
        elif self.tasks[task_id].get("kind") == "multiple_choice":
            raise DataError(f"task {task_id!r} (multiple_choice) expects input_ids of shape (batch, choices, length), got {tuple(input_ids.shape) if input_ids is not None else None}")
        if choice_mask is not None and num_choices is None:
            raise DataError(f"task {task_id!r}: choice_mask belongs to multiple-choice batches (input_ids of shape (batch, choices, length)); leave it out")
        for name in encoder_inputs:
            if name not in self._encoder_inputs:
                raise DataError(f"batch key {name!r} is not an input of encoder {type(self.encoder).__name__}; leave it out of the model inputs")
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask, **encoder_inputs}
        if token_type_ids is not None and self.uses_token_type_ids:
            inputs["token_type_ids"] = token_type_ids
        frozen = torch.no_grad() if self.encoder_without_grad else contextlib.nullcontext()
        with frozen, task_adapters(self.encoder, self.lora, task_id) if self.task_layers is None else self.task_layers.active(task_id):
            if token_index is not None:
                if self._position_offset is None:
                    raise DataError("the batch is padding-free (it has token_index) but the model is not: call model.enable_padding_free() first")
                from mtcore.model.padding_free import encode_packed

                hidden_states, pooler_output = encode_packed(self.encoder, inputs, token_index, cu_seqlens, offset=self._position_offset,
                                                             pooler=self.has_pooler, attention=self.packed_attention)
                outputs = BaseModelOutputWithPooling(last_hidden_state=hidden_states, pooler_output=pooler_output)
            else:
                outputs = self.encoder(**inputs)
                hidden_states = outputs[0] if not hasattr(outputs, "last_hidden_state") else outputs.last_hidden_state
                pooler_output = outputs.get("pooler_output") if isinstance(outputs, Mapping) else None
        if attention_mask is None:
            attention_mask = torch.ones(hidden_states.shape[:2], dtype=torch.long, device=hidden_states.device)
        try:
            result = call_head(self.heads[task_id], self._calls[task_id], outputs, hidden_states, attention_mask,
                               pooler_output, labels, num_choices, choice_mask, span_tokens)
        except ConfigError as exc:  # what the head returned: named with its task and head
            raise ConfigError(f"task {task_id!r}: {exc}" if not str(exc).startswith("task ") else str(exc)) from None
        except IndexError as exc:  # cross-entropy on CPU: "Target 5 is out of bounds."
            if labels is None or "out of bounds" not in str(exc):
                raise
            raise DataError(f"task {task_id!r}: a label is out of range ({exc}); labels are class ids 0..{self.tasks[task_id].get('num_labels', '?')} "
                            "minus 1 (-100 or -1: no label)") from None
        check_logits(task_id, self.tasks[task_id], result.logits)
        return MultitaskOutput(loss=result.loss, logits=result.logits)

    # ---- optimisation -----------------------------------------------------------------------
    def parameter_groups(self, encoder_lr: float, head_lr: float | None = None, weight_decay: float = 0.0,
                         layer_decay: float | None = None, head_lrs: dict[str, float] | None = None) -> list[dict[str, Any]]:
        """Optimizer groups: encoder / heads, each with and without weight decay (biases, norms); with
        ``layer_decay`` one encoder group per depth, with ``head_lrs`` (task id -> lr) groups of those
        heads' own (:func:`mtcore.model.param_groups.parameter_groups`)."""
        return _parameter_groups(self, encoder_lr, head_lr, weight_decay, layer_decay, head_lrs)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- saving and loading -----------------------------------------------------------------
    def predict(self, task: str | Task, inputs: Any, **options: Any) -> Any:
        """Labels (in the dataset's stored form) and class probabilities for raw ``inputs``.

        ``inputs``: a list of dicts with the task's raw fields, one dict, a ``datasets.Dataset``
        or a file path. Options as in :func:`mtcore.predict.predictor.predict`.
        """
        from mtcore.predict.predictor import predict

        return predict(self, task, inputs, **options)

    def save_pretrained(self, save_directory: str | os.PathLike, tokenizer: Any = None) -> Path:
        """Save atomically: ``encoder/`` (HF format, with the tokenizer), ``heads/``, ``mtcore.json``.

        ``tokenizer`` defaults to ``model.tokenizer``. The live model is not changed. An earlier
        save in ``save_directory`` is replaced as a whole; a directory holding anything else is
        refused (keep other files beside the model directory). Returns the directory.
        """
        from mtcore.model.serialization import save_model

        return save_model(self, save_directory, tokenizer if tokenizer is not None else self.tokenizer)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        custom_heads: Mapping[str, Any] | None = None,
        verify: bool = True,
        load_tokenizer: bool = True,
        **options: Any,
    ) -> MultitaskModel:
        """Load a directory written by :meth:`save_pretrained`.

        Every file is checked against the manifest first (``verify=False`` skips the sha256
        pass). ``custom_heads`` maps task ids to head modules or classes for heads that are not
        registered by name. ``options`` are the constructor's encoder options (``dtype`` — by
        default the dtype the model was saved in —, ``attn_implementation``,
        ``gradient_checkpointing``, ``freeze_encoder``, ...).
        """
        from mtcore.model.serialization import load_model

        return load_model(cls, directory, custom_heads=custom_heads, verify=verify, with_tokenizer=load_tokenizer, **options)


def _heads_mapping(heads_by_task: HeadsArg) -> dict[str, Any]:
    if isinstance(heads_by_task, Mapping):
        return dict(heads_by_task)
    if isinstance(heads_by_task, Sequence) and not isinstance(heads_by_task, str) and all(isinstance(t, Task) for t in heads_by_task):
        return {task.id: task for task in heads_by_task}
    raise ConfigError("heads_by_task must map task ids to Tasks, HeadSpecs or nn.Modules (or be a list of Tasks)")


def _aliases(task_ids: Any) -> dict[str, str]:
    """Bare task names that point to exactly one head."""
    by_bare: dict[str, list[str]] = {}
    for task_id in task_ids:
        by_bare.setdefault(task_id.rpartition(":")[2], []).append(task_id)
    return {bare: ids[0] for bare, ids in by_bare.items() if len(ids) == 1}


def _rng_fingerprint() -> int:  # a number naming the global CPU generator's state, read without drawing from it
    return int.from_bytes(hashlib.sha256(torch.random.get_rng_state().numpy().tobytes()).digest()[:8], "little")


def head_seed(base: int, task_id: str) -> int:
    """The seed a task's head is built under: a stable hash of ``(base, task_id)`` (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(f"{base}\0{task_id}".encode()).digest()[:8], "little") >> 1
