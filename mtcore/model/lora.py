"""LoRA on the shared encoder (with ``peft``): low-rank adapters train, the encoder's own weights stay frozen.

::

    encoder:
      path: xlm-roberta-large
      options: {lora: {r: 8, alpha: 16, dropout: 0.05}}   # target_modules: null = peft's choice for the architecture

Every task shares the adapters and trains its own head fully. The weights in training checkpoints
keep the adapters apart, so ``--resume`` rebuilds them and continues exactly; a saved model
(``model/``, ``save_pretrained``) has them merged into the encoder's weights (``W + alpha/r · B A``),
so it is a plain encoder that ``mt predict``, ``mt evaluate``, ``mt export`` and ``AutoModel`` read
as any other, and that a later run can fine-tune fully or with new adapters. ``peft`` is an optional
dependency: ``pip install "mtcore[lora]"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from mtcore.errors import ConfigError, did_you_mean

#: The keys of ``lora`` and what each is.
LORA_KEYS = {"r": "rank of the adapters (e.g. 8)", "alpha": "scale numerator: updates are scaled by alpha / r (default 2 r)",
             "dropout": "dropout on the adapters' input (default 0)",
             "target_modules": "names of the Linear modules to adapt (default: peft's for the architecture, query and value)"}
#: peft's and other tools' names for the same settings.
_ALIASES = {"rank": "r", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "targets": "target_modules",
            "target": "target_modules", "modules": "target_modules"}
#: The adapter name inside peft's layers.
ADAPTER = "default"
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
    return {"r": r, "alpha": float(alpha), "dropout": float(dropout), "target_modules": targets}


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


def add_lora(encoder: nn.Module, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Put adapters into ``encoder`` in place (only they stay trainable); returns the settings as applied."""
    peft = _peft()
    targets = lora_targets(encoder, settings)
    config = peft.LoraConfig(r=int(settings["r"]), lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                             target_modules=list(targets), bias="none")
    peft.inject_adapter_in_model(config, encoder, adapter_name=ADAPTER)
    return {**settings, "target_modules": list(targets)}


def lora_layers(encoder: nn.Module) -> dict[str, nn.Module]:
    """Module name -> the adapted layers of ``encoder`` (none without LoRA)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    return {name: module for name, module in encoder.named_modules() if isinstance(module, LoraLayer)}


def plain_state_dict(encoder: nn.Module) -> dict[str, Any]:
    """``encoder``'s weights under a plain model's names: :func:`merged_state_dict` with LoRA, else its state dict."""
    return merged_state_dict(encoder) if lora_layers(encoder) else dict(encoder.state_dict())


def merged_state_dict(encoder: nn.Module) -> dict[str, Any]:
    """``encoder``'s weights as a plain model has them: each adapted layer's weight plus its adapters' update,
    under the layer's own names (no ``base_layer``, no ``lora_`` keys). The live encoder is not changed."""
    import torch

    layers = lora_layers(encoder)
    state = {}
    for key, value in encoder.state_dict().items():
        if ".lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value
    with torch.no_grad():
        for name, layer in layers.items():
            key = f"{name}.weight"
            state[key] = (state[key] + layer.get_delta_weight(ADAPTER).to(state[key].dtype)).contiguous()
    return state
