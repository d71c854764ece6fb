"""Checks of the ``encoder`` and ``compile`` config sections (:func:`mtcore.train.validate.plan_run` runs
them): the encoder path is a folder or a hub id, ``encoder.options`` are model options, the packed
attention kernel and the compile backend exist. Each failure is one :class:`~mtcore.errors.ConfigError`
naming the key."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, did_you_mean


def check_compile_backend(backend: str) -> None:
    import torch._dynamo

    names = torch._dynamo.list_backends(exclude_tags=())
    if backend not in names:
        raise ConfigError(f"config key 'compile.backend': {backend!r} is not a torch.compile backend{did_you_mean(backend, names, n=1)}; "
                          f"choose one of {', '.join(names)}")


#: MultitaskModel keyword arguments that the config sets from keys of its own.
_SET_ELSEWHERE = {"tokenizer": "the run (the encoder's own tokenizer)", "attn_implementation": "encoder.attn_implementation",
                  "gradient_checkpointing": "encoder.gradient_checkpointing", "freeze_encoder": "encoder.freeze_encoder",
                  "freeze_layers": "encoder.freeze_layers", "task_layers": "encoder.task_layers", "padding_free": "batching.padding_free",
                  "trust_remote_code": "encoder.trust_remote_code"}


def encoder_option_names() -> list[str]:
    """The keys ``encoder.options`` takes: MultitaskModel's keyword arguments the config does not set itself."""
    import inspect

    from mtcore.model.multitask_model import MultitaskModel

    parameters = inspect.signature(MultitaskModel.__init__).parameters.values()
    return [p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in _SET_ELSEWHERE]


def check_encoder_options(options: dict[str, Any], padding_free: bool = False) -> None:
    """Every ``encoder.options`` key is a model option (with did-you-mean); ``fp32_residual`` is a boolean;
    ``flash_attention`` names an implementation torch knows."""
    names = encoder_option_names()
    for key in options:
        if key in _SET_ELSEWHERE:
            where = _SET_ELSEWHERE[key]
            raise ConfigError(f"config key 'encoder.options.{key}' is set by {where}" if where.startswith("the ") else
                              f"config key 'encoder.options.{key}': set {where} instead")
        if key not in names:
            raise ConfigError(f"config key 'encoder.options.{key}' is not a model option{did_you_mean(str(key), names, n=1)}; "
                              f"the options are {', '.join(names)}")
    kwargs = options.get("encoder_kwargs")
    if isinstance(kwargs, dict) and kwargs.get("trust_remote_code"):  # a second switch, past encoder.trust_remote_code's checks
        raise ConfigError("config key 'encoder.options.encoder_kwargs.trust_remote_code': set encoder.trust_remote_code instead")
    if "fp32_residual" in options and not isinstance(options["fp32_residual"], bool):
        raise ConfigError(f"config key 'encoder.options.fp32_residual': expected true or false, got {options['fp32_residual']!r}")
    if options.get("lora") is not None and options.get("lora") is not False:  # {} is LoRA with the defaults
        import importlib.util

        from mtcore.model.lora import lora_settings

        lora_settings(options["lora"])
        if importlib.util.find_spec("peft") is None:
            raise ConfigError("config key 'encoder.options.lora' needs the peft package: pip install \"mtcore[lora]\"")
    if options.get("flash_attention") is not None:
        from mtcore.model.flash_impl import resolve

        resolve(options["flash_attention"], where="config key 'encoder.options.flash_attention'", padding_free=padding_free)


def check_packed_attention(config: Any) -> None:
    """``encoder.options.packed_attention``: a known kernel; ``flex`` only with padding-free batches and compile."""
    name = config.encoder.options.get("packed_attention")
    if name is None:  # the default, varlen: nothing to check (and no import of the kernels, ~2 s)
        return
    from mtcore.model.padding_free import ATTENTION_KERNELS as kernels

    if name not in kernels:
        raise ConfigError(f"config key 'encoder.options.packed_attention': unknown kernel {name!r}"
                          f"{did_you_mean(str(name), kernels, n=1)}; choose varlen or flex")
    if name == "flex" and not config.batching.padding_free:
        raise ConfigError("config key 'encoder.options.packed_attention': flex attends over padding-free batches; "
                          "set batching.padding_free: true or remove it")
    if name == "flex" and not config.compile.enabled:
        raise ConfigError("config key 'encoder.options.packed_attention': flex needs compile: true (run eagerly, "
                          "FlexAttention computes every score of the packed row); set compile: true or use varlen")


def check_packed_attention_device(config: Any, device: Any) -> None:
    """FlexAttention trains on CUDA only (torch has no CPU backward for it)."""
    if config.encoder.options.get("packed_attention") == "flex" and getattr(device, "type", str(device)) != "cuda":
        raise ConfigError(f"config key 'encoder.options.packed_attention': flex trains on a CUDA GPU only (this run is on "
                          f"{getattr(device, 'type', device)}: FlexAttention has no backward there); use varlen")


#: What a Hugging Face hub model id looks like: ``name`` or ``org/name``.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def check_encoder_path(path: str) -> None:
    """``encoder.path`` is an existing folder or looks like a hub id (else a one-line ConfigError). A run directory is
    refused naming its ``model/`` (or, before it has one, its latest checkpoint); a checkpoint must be a finished one
    inside its run directory, whose ``config.yaml`` says how to rebuild it."""
    from mtcore.train.checkpoint import Checkpoints

    local = Path(path).expanduser()
    if (local / "model" / "mtcore.json").is_file():
        raise ConfigError(f"config key 'encoder.path': {path!r} is a run directory; did you mean {str(Path(path) / 'model')!r} "
                          "(the model it saved)?")
    if (local / "config.yaml").is_file() and (local / "checkpoints").is_dir():
        latest = Checkpoints(local / "checkpoints").latest()
        start = f"start from its latest checkpoint ({str(latest)!r}), or " if latest is not None else ""
        raise ConfigError(f"config key 'encoder.path': {path!r} is a run directory without a model/ yet (preempted, stopped or still "
                          f"training); {start}finish it with mt train {local / 'config.yaml'} --output-dir {local} --resume")
    folder = local.absolute().parent
    if folder.name == "checkpoints" and (local / "model.safetensors").is_file():
        if not (local / "state.json").is_file():
            raise ConfigError(f"config key 'encoder.path': {path!r} is an unfinished checkpoint (no state.json: still being written, "
                              "or cut short); give a finished checkpoint of the same run")
        if not (folder.parent / "config.yaml").is_file():
            raise ConfigError(f"config key 'encoder.path': {path!r} is a checkpoint outside its run directory (no config.yaml "
                              "beside checkpoints/, which says how to rebuild it); give it inside its run (RUN/checkpoints/step-N)")
        return  # a training checkpoint: its encoder (and with load_heads its heads) start the run
    if folder.name == "checkpoints" and not local.exists() and folder.is_dir():
        latest = Checkpoints(folder).latest()
        kept = f"; the latest is {str(latest)!r}" if latest is not None else ""
        raise ConfigError(f"config key 'encoder.path': there is no checkpoint {path!r} (a run keeps only its last "
                          f"checkpoint.keep_last and the best){kept}; give one that exists, or the run's model/ once it has one")
    if local.is_dir():
        return
    if local.exists():
        raise ConfigError(f"config key 'encoder.path': {path!r} is a file; give the folder holding config.json and the weights, or a hub id")
    if path.startswith(("/", ".", "~")) or not HUB_ID.match(path):
        parent = next((p for p in local.absolute().parents if p.is_dir()), None)
        raise ConfigError(f"config key 'encoder.path': there is no folder {path!r} (nearest existing folder: {parent}), and it is not "
                          "a hub id like 'bert-base-cased' or 'org/name'; check the path")


def check_encoder_config(config: Any) -> None:
    """The ``encoder`` and ``compile`` sections of a whole config: the path, options, and what they may be combined with.
    (Per-task LoRA with gradient checkpointing is fine: the loop runs each task's backward pass right after its forward,
    so the recomputed forward has that task's adapters; the strategies that keep every task's graph to the end are
    refused with per-task LoRA anyway, in :func:`~mtcore.train.validate.plan_run`.)"""
    if config.encoder.tiny is not None and config.encoder.trust_remote_code:
        raise ConfigError("config key 'encoder.trust_remote_code' makes no sense with a tiny demo encoder; remove it")
    if config.encoder.path is not None:
        check_encoder_path(config.encoder.path)
    if config.encoder.load_heads:
        from mtcore.train.warm_start import check_load_heads

        check_load_heads(config.encoder.path)
    if config.encoder.path is not None:
        from mtcore.train.warm_start import check_saved_task_layers

        check_saved_task_layers(config.encoder.path, config.encoder.task_layers)
    if config.compile.enabled:
        check_compile_backend(config.compile.backend)
    check_encoder_options(config.encoder.options, config.batching.padding_free)
    if config.encoder.options.get("lora") not in (None, False) and (config.encoder.freeze_encoder or config.encoder.freeze_layers):
        raise ConfigError("config key 'encoder.options.lora' trains adapters on a frozen encoder: leave encoder.freeze_encoder "
                          "and encoder.freeze_layers out")
    if config.encoder.freeze_encoder_steps and config.encoder.freeze_encoder:
        raise ConfigError("config key 'encoder.freeze_encoder_steps': encoder.freeze_encoder already freezes the encoder for the "
                          "whole run; leave one of them out")
    if config.schedule.max_steps is not None:  # the run's steps, known without the data (a --grid checks every combination)
        from mtcore.train.steps import check_frozen_steps

        check_frozen_steps(config, config.schedule.max_steps)
    if config.encoder.options.get("lora") not in (None, False) and config.encoder.task_layers:
        raise ConfigError("config key 'encoder.task_layers': lora (shared or per task) and task layers do not go together; leave encoder.task_layers "
                          "or encoder.options.lora out")
    if config.encoder.options.get("fp32_residual") is False and config.precision == "fp32":
        warnings.warn("config key 'encoder.options.fp32_residual': false changes nothing with precision fp32 (it keeps "
                      "layer-norm outputs in the autocast dtype of bf16/fp16 training)", UserWarning, stacklevel=3)
    if config.encoder.options.get("flash_attention") is not None and config.precision == "fp32":
        warnings.warn("config key 'encoder.options.flash_attention' changes nothing with precision fp32 (FlashAttention "
                      "kernels run in bf16/fp16 only)", UserWarning, stacklevel=3)
    check_packed_attention(config)
