"""LoRA on the shared encoder (with ``peft``): low-rank adapters train, the encoder's own weights stay frozen.

::

    encoder:
      path: xlm-roberta-large
      options: {lora: {r: 8, alpha: 16, dropout: 0.05}}   # target_modules: null = peft's choice for the architecture

Every task shares the adapters and trains its own head fully; with ``per_task: true`` every task (every
head) gets adapters of its own instead, switched in for its forward passes (the encoder's weights stay
shared and frozen: a task-specific encoder at r (d_in + d_out) parameters per adapted matrix). The weights in training checkpoints
keep the adapters apart, so ``--resume`` rebuilds them and continues exactly; a saved model
(``model/``, ``save_pretrained``) has them merged into the encoder's weights (``W + alpha/r · B A``),
so it is a plain encoder that ``mt predict``, ``mt evaluate``, ``mt export`` and ``AutoModel`` read
as any other, and that a later run can fine-tune fully or with new adapters. With ``per_task`` there is no
one merged encoder: ``encoder/`` keeps the frozen weights as loaded and each task's adapters go to
``lora/<head file name>.safetensors`` (loading rebuilds them, so it needs peft); ``mt export --task T``
merges T's adapters into a plain model. ``peft`` is an optional dependency: ``pip install "mtcore[lora]"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from mtcore.errors import ConfigError, did_you_mean

#: The keys of ``lora`` and what each is.
LORA_KEYS = {"r": "rank of the adapters (e.g. 8)", "alpha": "scale numerator: updates are scaled by alpha / r (default 2 r)",
             "dropout": "dropout on the adapters' input (default 0)",
             "target_modules": "names of the Linear modules to adapt (default: peft's for the architecture, query and value)",
             "per_task": "true: adapters of its own for every task (default false: one set all tasks share)"}
#: peft's and other tools' names for the same settings.
_ALIASES = {"rank": "r", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "targets": "target_modules",
            "target": "target_modules", "modules": "target_modules", "per_head": "per_task", "task_specific": "per_task"}
#: The adapter name inside peft's layers (shared adapters; ``per_task``: each task's id).
ADAPTER = "default"
#: The folder of a saved model that holds each task's adapters (``per_task``).
LORA_DIR = "lora"
_WHERE = "encoder.options.lora"


def lora_settings(value: Any) -> dict[str, Any] | None:
    """The checked settings of ``lora`` (None when it is ``None`` or ``false``: off; ``{}`` is on, with the
    defaults); each mistake is one ConfigError."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"config key '{_WHERE}': a mapping such as {{r: 8, alpha: 16}}, not {value!r}")
    for key in value:
        if key not in LORA_KEYS:
            hint = f" (did you mean {_ALIASES[key]!r}?)" if key in _ALIASES else did_you_mean(str(key), LORA_KEYS, n=1)
            raise ConfigError(f"config key '{_WHERE}.{key}' is not a LoRA setting{hint}; "
                              f"the settings are {', '.join(LORA_KEYS)}")
    r = value.get("r", 8)
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"config key '{_WHERE}.r': the adapters' rank, an integer >= 1 (e.g. 8), not {r!r}")
    alpha = value.get("alpha", 2 * r)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ConfigError(f"config key '{_WHERE}.alpha': a number > 0 (updates are scaled by alpha / r), not {alpha!r}")
    dropout = value.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"config key '{_WHERE}.dropout': a probability in [0, 1), not {dropout!r}")
    targets = value.get("target_modules")
    if targets is not None:
        targets = [targets] if isinstance(targets, str) else targets
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"config key '{_WHERE}.target_modules': a list of Linear module names such as [query, value], "
                              f"or null for peft's default; not {value.get('target_modules')!r}")
        targets = list(targets)
    per_task = value.get("per_task", False)
    if not isinstance(per_task, bool):
        raise ConfigError(f"config key '{_WHERE}.per_task': true (adapters of its own for every task) or false, not {per_task!r}")
    return {"r": r, "alpha": float(alpha), "dropout": float(dropout), "target_modules": targets,
            **({"per_task": True} if per_task else {})}


def _linears(encoder: nn.Module) -> list[str]:
    return [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]


#: The usual names of attention's query and value projections (LoRA's usual targets), or of a fused one.
_QUERY_VALUE = (("query", "value"), ("q_lin", "v_lin"), ("q_proj", "v_proj"), ("q", "v"), ("Wqkv",), ("qkv",), ("query_key_value",),
                ("in_proj",))


def _attention_linears(names: list[str]) -> list[str]:
    """The query and value projections among a model's Linear module names (DistilBERT's ``q_lin, v_lin``, ModernBERT's
    fused ``Wqkv``), as the usual LoRA targets; else its first two names."""
    return next((list(pair) for pair in _QUERY_VALUE if all(name in names for name in pair)), names[:2])


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise ConfigError(f"config key '{_WHERE}' needs the peft package: pip install \"mtcore[lora]\"") from None
    return peft


def lora_targets(encoder: nn.Module, settings: Mapping[str, Any]) -> list[str]:
    """The Linear module names the adapters go on: ``target_modules``, or peft's default for the architecture;
    a name the encoder lacks is a one-line ConfigError (``mt check`` calls it on an encoder built on the meta device)."""
    _peft()
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults

    model_type = getattr(getattr(encoder, "config", None), "model_type", None)
    full = _linears(encoder)
    linears = sorted({name.rpartition(".")[2] for name in full})
    targets = settings.get("target_modules") or defaults.get(model_type)
    if not targets:
        raise ConfigError(f"config key '{_WHERE}.target_modules': peft has no default for a {model_type or type(encoder).__name__} "
                          f"encoder; name its Linear modules to adapt, e.g. [{', '.join(_attention_linears(linears))}] (it has: "
                          f"{', '.join(linears)})")
    for name in targets:
        if not any(f == name or f.endswith("." + name) for f in full):  # peft matches a name's last parts
            raise ConfigError(f"config key '{_WHERE}.target_modules': encoder {type(encoder).__name__} has no Linear module "
                              f"{name!r}{did_you_mean(name, linears, n=1)}; it has: {', '.join(linears)}")
    return list(targets)


def add_lora(encoder: nn.Module, settings: Mapping[str, Any], tasks: Iterator[str] | list[str] = ()) -> dict[str, Any]:
    """Put adapters into ``encoder`` in place (only they stay trainable: the encoder's own weights are frozen); returns
    the settings as applied. ``per_task``: a set for each of ``tasks`` (:func:`add_task_adapters` adds more)."""
    _peft()
    applied = {**settings, "target_modules": list(lora_targets(encoder, settings))}
    if applied.get("per_task"):
        for parameter in encoder.parameters():  # frozen even before the first task's adapters come
            parameter.requires_grad_(False)
    for name in (list(tasks) if applied.get("per_task") else [ADAPTER]):
        add_task_adapters(encoder, applied, name)
    return applied


def add_task_adapters(encoder: nn.Module, settings: Mapping[str, Any], name: str) -> None:
    """One more set of adapters, ``name`` (a task id with ``per_task``), initialised as peft does (B = 0: no change yet)."""
    import warnings

    peft = _peft()
    config = peft.LoraConfig(r=int(settings["r"]), lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                             target_modules=list(settings["target_modules"]), bias="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Already found a peft_config attribute ... multiple adapters": as meant
        peft.inject_adapter_in_model(config, encoder, adapter_name=name)
    for key, parameter in encoder.named_parameters():  # every set trains (peft leaves only the newest trainable)
        if ".lora_" in key:
            parameter.requires_grad_(True)


def activate(encoder: nn.Module, name: str) -> None:
    """Make adapters ``name`` the ones the adapted layers apply (``per_task``: before a task's forward pass)."""
    for layer in lora_layers(encoder).values():
        if layer.active_adapters != [name]:
            # peft's set_adapter would also freeze every other set; only which set runs changes here
            layer._active_adapter = [name]


@contextlib.contextmanager
def task_adapters(encoder: nn.Module, settings: Mapping[str, Any] | None, task_id: str) -> Iterator[None]:
    """With per-task adapters, ``task_id``'s are the active ones inside the block; otherwise nothing changes."""
    if settings and settings.get("per_task"):
        activate(encoder, task_id)
    yield


def adapters_of(encoder: nn.Module, task_id: str) -> str:
    """The adapters that serve ``task_id``: its own (``per_task``), else the shared ones."""
    return task_id if any(task_id in layer.lora_A for layer in lora_layers(encoder).values()) else ADAPTER


def adapter_state(encoder: nn.Module, name: str) -> dict[str, Any]:
    """The tensors of adapters ``name``, keyed without the adapter name (``...query.lora_A.weight``)."""
    marker = f".{name}."
    return {key.replace(marker, "."): value.detach().contiguous() for key, value in encoder.state_dict().items()
            if ".lora_" in key and marker in key}


def save_adapters(encoder: nn.Module, folder: Path, name: str, file_name: str) -> str:
    """Write adapters ``name`` to ``folder/lora/<file_name>``; returns the path relative to ``folder``."""
    from safetensors.torch import save_file

    relative = f"{LORA_DIR}/{file_name}"
    (folder / LORA_DIR).mkdir(exist_ok=True)
    save_file(adapter_state(encoder, name), str(folder / relative), metadata={"format": "pt", "task": name})
    return relative


def load_adapters(encoder: nn.Module, folder: Path, name: str, relative: str | None) -> None:
    """Read adapters ``name`` back (a ModelFileError names a missing or mismatched file)."""
    from safetensors.torch import load_file

    from mtcore.errors import ModelFileError

    path = folder / (relative or "")
    if not relative or not path.is_file():
        raise ModelFileError(f"task {name!r}: its LoRA adapters file {path if relative else '(none recorded)'} is missing; "
                             "the model was not saved completely (save it again)")
    saved, mine = load_file(str(path)), adapter_state(encoder, name)
    if set(saved) != set(mine) or any(tuple(saved[k].shape) != tuple(mine[k].shape) for k in mine):
        raise ModelFileError(f"{path}: the adapters do not fit the encoder's (settings in mtcore.json changed?); save the model again")
    marker = f".{name}."
    named = {key: key.replace(marker, ".") for key in encoder.state_dict() if ".lora_" in key and marker in key}
    encoder.load_state_dict({key: saved[short] for key, short in named.items()}, strict=False)


def lora_layers(encoder: nn.Module) -> dict[str, nn.Module]:
    """Module name -> the adapted layers of ``encoder`` (none without LoRA)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    return {name: module for name, module in encoder.named_modules() if isinstance(module, LoraLayer)}


def plain_state_dict(encoder: nn.Module, adapters: str | None = ADAPTER) -> dict[str, Any]:
    """``encoder``'s weights under a plain model's names: :func:`merged_state_dict` with LoRA, else its state dict."""
    return merged_state_dict(encoder, adapters) if lora_layers(encoder) else dict(encoder.state_dict())


def merged_state_dict(encoder: nn.Module, adapters: str | None = ADAPTER) -> dict[str, Any]:
    """``encoder``'s weights as a plain model has them: each adapted layer's weight plus the update of its adapters
    ``adapters`` (None: none, the frozen weights), under the layer's own names (no ``base_layer``, no ``lora_`` keys).
    The live encoder is not changed."""
    import torch

    layers = lora_layers(encoder)
    state = {}
    for key, value in encoder.state_dict().items():
        if ".lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value
    with torch.no_grad():
        for name, layer in layers.items():
            if adapters is None or adapters not in layer.lora_A:
                continue
            key = f"{name}.weight"
            state[key] = (state[key] + layer.get_delta_weight(adapters).to(state[key].dtype)).contiguous()
    return state
