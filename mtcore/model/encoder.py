"""The shared encoder: loading any ``AutoModel`` encoder and the generic facts mtcore needs.

No per-architecture table: the hidden size comes from the config, the transformer blocks are
found as the largest ``nn.ModuleList`` of same-class modules, the embeddings as the parent module
of ``get_input_embeddings()``, the pooler as an attribute named ``pooler``.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError, DataError, ModelFileError, did_you_mean, unknown
from mtcore.model.quiet_bars import transformers_bars_off

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "fp32": torch.float32,
          "fp16": torch.float16, "bf16": torch.bfloat16}
ATTENTION_FALLBACK = "eager"


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | str:
    """``"bfloat16"`` / ``"bf16"`` / ``torch.bfloat16`` -> ``torch.bfloat16``; ``"auto"`` stays; ``None`` is float32."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise unknown("dtype", str(dtype), [*DTYPES, "auto"])
    return DTYPES[name]


@transformers_bars_off()
def strict_config_errors() -> tuple[type[BaseException], ...]:
    """huggingface_hub's errors for a typed config field given a value of another type (none in older versions)."""
    try:
        from huggingface_hub.errors import StrictDataclassError
    except ImportError:
        return ()
    return (StrictDataclassError,)


def typed_field_error(exc: BaseException) -> str:
    """``field 'hidden_dropout_prob' with value '0.1' doesn't match any type in (float, int)`` from huggingface_hub's text."""
    text = " ".join(str(exc).split())
    text = text.split("TypeError: ", 1)[-1].split(". Errors:", 1)[0]
    return text.replace("<class '", "").replace("'>", "")[:300]


def load_encoder(
    source: str | os.PathLike,
    *,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = "sdpa",
    trust_remote_code: bool = False,
    from_pretrained_kwargs: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> nn.Module:
    """``AutoModel.from_pretrained(source)`` with mtcore's defaults and one-line errors.

    ``attn_implementation="sdpa"`` (the default) falls back to eager attention, quietly, for
    architectures without SDPA support (DeBERTa-v2). Another explicit choice that the
    architecture or the installation cannot honour is an error. A saved mtcore model directory
    is accepted too: its ``encoder/`` is loaded. ``strict=True`` (used for mtcore's own saved
    encoders) refuses weights files with missing or mis-shaped tensors instead of initialising
    them randomly.
    """
    from safetensors import SafetensorError
    from transformers import AutoModel

    source = str(source)
    if (Path(source) / "mtcore.json").is_file() and (Path(source) / "encoder").is_dir():
        source = str(Path(source) / "encoder")
    kwargs = dict(from_pretrained_kwargs or {})
    if kwargs.get("trust_remote_code") and not trust_remote_code:
        raise ConfigError("encoder_kwargs trust_remote_code=True: a second switch for custom code; set trust_remote_code=True "
                          "(the config's encoder.trust_remote_code) instead")
    kwargs["dtype"] = parse_dtype(dtype)
    kwargs["output_loading_info"] = True
    kwargs["trust_remote_code"] = bool(trust_remote_code)  # False said, not left to transformers (it would ask on stdin)
    if strict:  # mtcore's own saved encoder: safetensors only (it never writes a pickle, and none is read)
        kwargs["use_safetensors"] = True
    report = LoadReport()
    try:
        try:
            with report:
                model, loading_info = AutoModel.from_pretrained(source, attn_implementation=attn_implementation, **kwargs)
        except (ValueError, ImportError) as exc:
            if attn_implementation != "sdpa" or "sdpa" not in str(exc).lower() and "scaled_dot_product" not in str(exc):
                raise
            logger.info("encoder %s does not support SDPA attention; using %s attention", source, ATTENTION_FALLBACK)
            with report:
                model, loading_info = AutoModel.from_pretrained(source, attn_implementation=ATTENTION_FALLBACK, **kwargs)
    except RuntimeError:  # tensors of another shape than config.json says, or a failed conversion: after the report
        problem = report.problem()
        if problem is None:
            raise
        raise ModelFileError(f"encoder {source!r} cannot be loaded: {problem}; its config.json and weights do not belong together "
                             "(copy or save the model again)") from None
    except SafetensorError as exc:
        raise ModelFileError(f"{source}: a weights file is not a readable safetensors file ({exc}); copy or save the model again") from None
    except strict_config_errors() as exc:  # a config value of the wrong type ("0.1" for a dropout), checked by transformers
        raise ConfigError(f"encoder {source!r}: a setting for its config (encoder.options.encoder_kwargs, from_pretrained's "
                          f"encoder_kwargs) has the wrong type: {typed_field_error(exc)}") from None
    except (ValueError, ImportError) as exc:
        if "trust_remote_code" in str(exc) and not trust_remote_code:
            raise ModelFileError(f"encoder {source!r} needs code of its own (its config names custom model code), which mtcore runs "
                                 "only when asked: encoder.trust_remote_code: true in a config, --trust-remote-code for mt evaluate, predict and "
                                 "export, MultitaskModel.from_pretrained(dir, trust_remote_code=True) in Python; if you trust its source") from None
        if attn_implementation and (attn_implementation in str(exc) or "attention" in str(exc).lower()):
            raise ConfigError(f"encoder {source!r} cannot use attn_implementation={attn_implementation!r}"
                              f"{attention_hint(attn_implementation)}: {_first_line(exc)}") from exc
        raise ModelFileError(f"encoder {source!r} cannot be loaded: {_first_line(exc)}") from exc
    except OSError as exc:
        raise ModelFileError(f"encoder {source!r} cannot be loaded (not a local model directory, or not reachable on the hub): {_first_line(exc)}") from exc
    if strict:
        for key in ("missing_keys", "mismatched_keys"):
            problems = sorted(str(k) for k in loading_info.get(key) or ())
            if problems:
                what = key.replace("_keys", "")
                raise ModelFileError(f"{source}: the encoder weights file has {len(problems)} {what} tensors (e.g. {problems[0]}); copy or save the model again")
    warn_random_weights(source, sorted(str(k) for k in loading_info.get("missing_keys") or ()))
    return model


def warn_random_weights(source: str, missing: list[str]) -> None:
    """One ``warning:`` line for encoder weights its files lack (transformers initialises them at random). Weights the
    files have beyond the encoder (a pre-training or task head: ``cls.*``, ``classifier.*``) are expected: no word."""
    if not missing:
        return
    import warnings

    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    if all(key.startswith("pooler.") for key in missing):  # roberta-base and others: a checkpoint without the pooler
        why = "harmless unless a head reads the pooler (head_options pooling: pooler)"
    else:
        why = "they are trained from scratch: check that the files are this architecture's"
    warnings.warn(f"encoder {source!r}: {len(missing)} weights are not in its files and start random ({shown}); {why}", stacklevel=3)


class LoadReport(logging.Filter):
    """Keeps transformers' multi-line ``LOAD REPORT`` table (logged on every load whose keys differ: a ``BertModel``
    from ``bert-base-cased``'s pre-training checkpoint lists its unused ``cls.*`` weights) off the terminal, and
    keeps its text: :meth:`problem` names a tensor whose shape differs when the load fails on it. Used as a context
    manager around ``from_pretrained``."""

    LOGGER = "transformers.modeling_utils"

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        self.text = re.sub(r"\x1b\[[0-9;]*m", "", message)
        return False

    def __enter__(self) -> LoadReport:
        logging.getLogger(self.LOGGER).addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(self.LOGGER).removeFilter(self)

    def problem(self) -> str | None:
        """``3 tensors have another shape than config.json says (e.g. encoder.layer.0...: file [64, 32], config [48, 32])``,
        a tensor that failed to convert, or None when the report names neither."""
        rows = [[cell.strip() for cell in line.split("|")] for line in self.text.splitlines() if line.count("|") >= 2]
        mismatched = sorted(row for row in rows if len(row) > 2 and row[1] == "MISMATCH")  # the table's order varies
        if mismatched:
            shapes = re.search(r"ckpt: torch\.Size\((\[[^\]]*\])\) vs model: ?torch\.Size\((\[[^\]]*\])\)", " ".join(mismatched[0]))
            detail = f": file {shapes.group(1)}, config {shapes.group(2)}" if shapes else ""
            return (f"{len(mismatched)} tensors have another shape than its config.json says (e.g. {mismatched[0][0]}{detail})")
        converted = sorted(row for row in rows if len(row) > 1 and row[1] == "CONVERSION")
        return f"{len(converted)} tensors failed to convert (e.g. {converted[0][0]})" if converted else None


def attention_hint(name: str) -> str:
    """``" (did you mean 'sdpa'?)"`` for a misspelt attention implementation, or ``""`` (also for a known one that this
    architecture does not support: its name is right)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    known = ["eager", *ALL_ATTENTION_FUNCTIONS.valid_keys()]
    return "" if name in known or "|" in name or "/" in name else did_you_mean(name, known)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---- facts --------------------------------------------------------------------------------
def hidden_size(encoder: nn.Module) -> int:
    """The width of the encoder's last hidden states."""
    config = getattr(encoder, "config", None)
    for attr in ("hidden_size", "dim", "d_model"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ConfigError(f"cannot tell the hidden size of encoder {type(encoder).__name__}: its config has no hidden_size")


def uses_token_type_ids(encoder: nn.Module) -> bool:
    """True when the encoder has segment embeddings: ``type_vocab_size > 1`` and its forward takes them."""
    config = getattr(encoder, "config", None)
    if int(getattr(config, "type_vocab_size", 0) or 0) <= 1:
        return False
    try:
        return "token_type_ids" in inspect.signature(encoder.forward).parameters
    except (TypeError, ValueError):
        return False


def has_pooler(encoder: nn.Module) -> bool:
    """True when the encoder returns a ``pooler_output`` (it has a ``pooler`` module)."""
    return isinstance(getattr(encoder, "pooler", None), nn.Module)


def encoder_inputs(encoder: nn.Module) -> set[str]:
    """The keyword arguments the encoder's forward accepts."""
    try:
        return set(inspect.signature(encoder.forward).parameters)
    except (TypeError, ValueError):
        return {"input_ids", "attention_mask"}


def find_layers(encoder: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer blocks: the largest ``nn.ModuleList`` whose items share one class."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in encoder.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        if best is None or len(module) > len(best[1]):
            best = (name, module)
    if best is None:
        raise ConfigError(f"cannot find the layer list of encoder {type(encoder).__name__}; freeze the whole encoder instead")
    return best


def find_embeddings(encoder: nn.Module) -> nn.Module | None:
    """The embeddings block: the parent of ``get_input_embeddings()`` (or that module itself)."""
    getter = getattr(encoder, "get_input_embeddings", None)
    try:
        word_embeddings = getter() if callable(getter) else None
    except (NotImplementedError, AttributeError):
        word_embeddings = None
    if word_embeddings is None:
        return None
    names = {id(m): n for n, m in encoder.named_modules()}
    path = names.get(id(word_embeddings))
    if not path or "." not in path:
        return word_embeddings
    return encoder.get_submodule(path.rsplit(".", 1)[0])


def check_freeze_layers(encoder: nn.Module, first_layers: int) -> nn.ModuleList:
    """The encoder's blocks, when it has at least ``first_layers`` of them to freeze (a ConfigError naming the key else)."""
    name, layers = find_layers(encoder)
    if int(first_layers) > len(layers):
        raise ConfigError(f"config key 'encoder.freeze_layers': {first_layers}, but encoder {type(encoder).__name__} has "
                          f"{len(layers)} layers ({name}); give at most {len(layers)} (or encoder.freeze_encoder: true for all)")
    return layers


def freeze(encoder: nn.Module, *, whole: bool = False, first_layers: int = 0) -> None:
    """Stop gradients to the whole encoder, or to what feeds its first ``first_layers`` blocks and those blocks: the
    embeddings and every parameter before the block list (ELECTRA's ``embeddings_project``), and the tables the blocks
    share inside the module that holds them (DeBERTa's ``encoder.rel_embeddings`` and its norm)."""
    if whole:
        encoder.requires_grad_(False)
        return
    first_layers = int(first_layers)
    if first_layers < 0:
        raise ConfigError(f"freeze_layers must be a number of layers >= 0, got {first_layers}")
    if first_layers == 0:
        return
    layers = check_freeze_layers(encoder, first_layers)
    embeddings = find_embeddings(encoder)
    if embeddings is not None:
        embeddings.requires_grad_(False)
    for layer in list(layers)[:first_layers]:
        layer.requires_grad_(False)
    for param in feeding_parameters(encoder, layers):
        param.requires_grad_(False)


def feeding_parameters(encoder: nn.Module, layers: nn.ModuleList) -> list[nn.Parameter]:
    """The parameters that feed the first block: those registered before the block list, and the block list's siblings
    inside a module of its own (BERT's ``encoder`` has none; DeBERTa's holds relative-position tables every block
    reads). Siblings in the model itself (ModernBERT's ``final_norm``) come after the blocks, and are not among them."""
    from mtcore.model.param_groups import shared_tables

    inside = {id(p) for p in layers.parameters()}
    before = []
    for param in encoder.parameters():
        if id(param) in inside:
            break
        before.append(param)
    return before + shared_tables(encoder, layers)


def enable_gradient_checkpointing(encoder: nn.Module) -> None:
    """Recompute activations in the backward pass (non-reentrant, so frozen layers work)."""
    if not getattr(encoder, "supports_gradient_checkpointing", False):
        raise ConfigError(f"encoder {type(encoder).__name__} does not support gradient checkpointing; turn it off")
    enable = getattr(encoder, "activation_checkpointing_enable", None)
    if callable(enable):
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def describe_encoder(encoder: nn.Module, lora: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-ready facts about the encoder for the manifest (``lora``: the adapters merged into its saved weights)."""
    config = getattr(encoder, "config", None)
    dtype = next((p.dtype for p in encoder.parameters()), torch.float32)
    return {
        "dir": "encoder",
        "model_type": getattr(config, "model_type", None),
        "class": type(encoder).__name__,
        "hidden_size": hidden_size(encoder),
        "dtype": str(dtype).removeprefix("torch."),
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "uses_token_type_ids": uses_token_type_ids(encoder),
        "has_pooler": has_pooler(encoder),
        "fp32_residual": not any(type(m).__name__ == "ComputeDtypeLayerNorm" for m in encoder.modules()),
        "num_parameters": sum(p.numel() for name, p in encoder.named_parameters() if ".lora_" not in name),
        **({"lora": {**lora, "merged": not lora.get("per_task")}} if lora else {}),
    }


def check_inputs(task_id: str, input_ids: Any, attention_mask: Any, token_type_ids: Any, labels: Any, others: Mapping[str, Any]) -> None:
    """One-line DataErrors for inputs that are not tensors, or no token ids at all."""
    for name, value in (("input_ids", input_ids), ("attention_mask", attention_mask), ("token_type_ids", token_type_ids), ("labels", labels)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise DataError(f"task {task_id!r}: {name} must be a torch.Tensor, got {type(value).__name__}; "
                            "tokenize with return_tensors='pt' (or torch.tensor(...) it)")
    if input_ids is None and others.get("inputs_embeds") is None:
        raise DataError(f"task {task_id!r}: no input_ids; pass the tokenizer's output, e.g. model(task, **tokenizer(texts, return_tensors='pt'))")


def check_packed_attention(name: Any) -> str:
    """``name`` if it is one of padding-free attention's kernels, else one line with "did you mean"."""
    from mtcore.model.padding_free import ATTENTION_KERNELS

    if name not in ATTENTION_KERNELS:
        raise unknown("packed attention", str(name), ATTENTION_KERNELS)
    return str(name)
