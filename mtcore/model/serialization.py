"""Saving and loading a :class:`~mtcore.model.multitask_model.MultitaskModel` directory.

Layout (see :mod:`mtcore.model.manifest`): ``encoder/`` in plain Hugging Face format (loadable
alone by ``AutoModel`` / ``AutoTokenizer``), one safetensors file of head weights per task under
``heads/``, and ``mtcore.json`` with the tasks and a sha256 of every file. No pickle anywhere.

Saving writes everything into a temporary sibling directory and moves it into place with
``os.replace``, so the target is never half-written; it reads the live model and changes
nothing in it. Loading checks every file against the manifest first and fails in one line
naming the file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import mtcore
from mtcore.errors import ConfigError, ModelFileError, UnknownNameError, UsageError
from mtcore.model import task_layers
from mtcore.model.encoder import describe_encoder
from mtcore.outputs import share_modes
from mtcore.model.heads.base import HeadSpec, resolved_options_of
from mtcore.model.task_layers import TASK_LAYERS_DIR
from mtcore.model.quiet_bars import transformers_bars_off
from mtcore.model.manifest import (
    ENCODER_DIR,
    FORMAT_VERSION,
    HEADS_DIR,
    MANIFEST_NAME,
    file_records,
    head_file_name,
    safe_relative,
    write_manifest,
)

if TYPE_CHECKING:
    from mtcore.model.multitask_model import MultitaskModel

HEAD_INFO_KEYS = ("head", "head_id", "head_options", "head_registered", "head_class", "head_file", "task_layers_file", "lora_file")


# ---- saving -------------------------------------------------------------------------------
def check_save_target(target: Path) -> None:
    """Refuse to replace a file, a non-empty directory that is not an mtcore model, or one holding other files."""
    if target.is_symlink() and not target.exists():
        raise ModelFileError(f"{target}: is a broken symbolic link; choose another directory")
    if not target.exists():
        return
    if not target.is_dir():
        raise ModelFileError(f"{target}: exists and is not a directory; choose another path to save the model")
    entries = sorted(p.name for p in target.iterdir())
    if entries and MANIFEST_NAME not in entries:
        raise ModelFileError(f"{target}: is not empty and holds no {MANIFEST_NAME}; refusing to overwrite it, save to a new or empty directory")
    foreign = [name for name in entries if name not in (MANIFEST_NAME, ENCODER_DIR, HEADS_DIR, TASK_LAYERS_DIR)]
    if foreign:
        raise ModelFileError(
            f"{target}: holds {foreign[0]!r}, which is not part of a saved model and would be lost; refusing to overwrite it, "
            "keep other files beside the model directory, not inside it"
        )


def head_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a head's state (copies, so shared tensors save fine)."""
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in module.state_dict().items()}


#: Tokenizer settings transformers reads back from a fast tokenizer's last call (its truncation state), not configuration.
CALL_STATE_KEYS = ("max_length", "stride", "truncation_strategy")


def portable_tokenizer(tokenizer: Any) -> Any:
    """A copy of ``tokenizer`` without the truncation / padding state its last call left behind.

    A fast tokenizer keeps the ``max_length`` of its last call (a task's, a probe's) in its Rust
    backend, which ``save_pretrained`` writes into ``tokenizer.json`` (and transformers then reads
    into ``tokenizer_config.json`` as ``max_length``): consumers of ``tokenizer.json`` alone (the
    ``tokenizers`` library, inference servers) would truncate every text to that length. Saved
    copies carry no such state; the live tokenizer is not changed.
    """
    import copy

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or (backend.truncation is None and backend.padding is None):
        return tokenizer
    clean = copy.deepcopy(tokenizer)
    if backend.truncation is not None:  # loading such a tokenizer.json copies its state into these keys
        for key in CALL_STATE_KEYS:
            clean.init_kwargs.pop(key, None)
    clean.backend_tokenizer.no_truncation()
    clean.backend_tokenizer.no_padding()
    return clean


def _scratch_beside(target: Path) -> Path:
    """A new private folder beside ``target`` (its parents made): one line when a file is in the way or the
    folder cannot be written (no permission, a read-only or full disk)."""
    from mtcore.outputs import write_error

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        blocked = next((p for p in (target.parent, *target.parent.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise UsageError(f"cannot save the model to {target}: {blocked} is a file, not a folder; choose another path") from None
        raise write_error(target.parent, exc) from None


@transformers_bars_off()
def save_model(model: MultitaskModel, directory: str | os.PathLike, tokenizer: Any = None) -> Path:
    """Write ``model`` (and ``tokenizer``) to ``directory`` atomically; return the directory."""
    from safetensors.torch import save_file

    target = Path(directory).expanduser().absolute()
    check_save_target(target)
    if target.is_symlink():  # a link to a folder on another disk: the model goes there, and the link stays
        target = target.resolve()
        check_save_target(target)
    tmp = _scratch_beside(target)
    try:
        encoder_dir = tmp / ENCODER_DIR
        from mtcore.model.lora import ADAPTER, lora_layers, merged_state_dict, save_adapters

        per_task = bool((getattr(model, "lora", None) or {}).get("per_task"))  # each task's adapters apart, the weights as loaded
        merged = merged_state_dict(model.encoder, None if per_task else ADAPTER) if lora_layers(model.encoder) else None
        model.encoder.save_pretrained(encoder_dir, state_dict=merged)  # with task_layers: the templates, as loaded
        if tokenizer is not None:
            portable_tokenizer(tokenizer).save_pretrained(encoder_dir)
        (tmp / HEADS_DIR).mkdir()
        tasks: dict[str, dict[str, Any]] = {}
        taken: set[str] = set()
        own_layers = getattr(model, "task_layers", None)
        for task_id, head in model.heads.items():
            rel = head_file_name(task_id, taken)
            save_file(head_state(head), str(tmp / rel), metadata={"format": "pt", "task": task_id})
            tasks[task_id] = {**model.tasks[task_id], "head_file": rel}
            resolved = resolved_options_of(head)
            if resolved:  # what the head settled itself (the encoder's activation, ...): rebuilt so, whatever later defaults
                given = {k: v for k, v in (model.tasks[task_id].get("head_options") or {}).items() if v is not None or k not in resolved}
                tasks[task_id]["head_options"] = {**resolved, **given}
            if own_layers is not None:
                tasks[task_id]["task_layers_file"] = task_layers.save(own_layers, tmp, task_id, rel.rpartition("/")[2])
            if per_task:
                tasks[task_id]["lora_file"] = save_adapters(model.encoder, tmp, task_id, rel.rpartition("/")[2])
        manifest = {
            "mtcore_version": mtcore.__version__,
            "format_version": FORMAT_VERSION if own_layers is not None or per_task else 1,
            "encoder": {**describe_encoder(model.encoder, lora=getattr(model, "lora", None)),
                        **({"task_layers": task_layers.manifest_entry(own_layers)} if own_layers is not None else {})},
            "tokenizer": tokenizer is not None,
            "tasks": tasks,
            "files": file_records(tmp),
        }
        write_manifest(tmp, manifest)
        share_modes(tmp)  # mkdtemp and safetensors make private files
        _move_into_place(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from mtcore.outputs import write_error, write_failures

        if isinstance(exc, write_failures()):
            raise write_error(target, exc) from None
        raise
    return target


def _move_into_place(tmp: Path, target: Path) -> None:
    check_save_target(target)
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---- loading ------------------------------------------------------------------------------
def head_spec_from_info(task_id: str, info: Mapping[str, Any], hidden_size: int, custom_heads: Mapping[str, Any]) -> HeadSpec:
    """The head to rebuild for one manifest task entry.

    ``custom_heads[task_id]`` wins: a module instance is used as is, a class (or factory) is
    called as ``Class(hidden_size=..., num_labels=..., **saved options)``. Otherwise the
    registered head named in the manifest is built. Code named in the manifest is never
    imported unless it is a registered head.
    """
    options = dict(info.get("head_options") or {})
    num_labels = int(info.get("num_labels") or 0)
    task = {k: v for k, v in info.items() if k not in HEAD_INFO_KEYS}
    base = dict(num_labels=num_labels, kind=info.get("kind"), labels=tuple(info.get("labels") or ()), options=options, task=task)
    custom = custom_heads.get(task_id)
    if custom is not None:
        if isinstance(custom, nn.Module):
            module = custom
        elif callable(custom):
            try:
                module = custom(hidden_size=hidden_size, num_labels=num_labels, **options)
            except TypeError as exc:
                raise ConfigError(f"custom head for task {task_id!r} cannot be built as {getattr(custom, '__name__', custom)}(hidden_size=..., num_labels=..., **{options}): {exc}; pass an instance instead") from exc
        else:
            raise ConfigError(f"custom_heads[{task_id!r}] must be an nn.Module instance or class, got {type(custom).__name__}")
        return HeadSpec(name=info.get("head") or "", module=module, **base)
    if not info.get("head_registered"):
        raise ConfigError(
            f"task {task_id!r} was saved with the custom head {info.get('head_class', '?')}, which mtcore does not import from a "
            f"manifest; pass custom_heads={{{task_id!r}: HeadClass}} to from_pretrained"
        )
    head_name, head_id = info.get("head"), info.get("head_id")
    if not head_name and not head_id:
        raise ModelFileError(f"{MANIFEST_NAME}: task {task_id!r} names no head (damaged manifest)")
    from mtcore.plugins import load_registry

    registry = load_registry()
    for candidate in (head_name, head_id):
        if not candidate:
            continue
        try:
            component = registry.component("head", str(candidate))
        except UsageError:
            continue
        if not head_id or component.id == head_id:
            return HeadSpec(name=str(candidate), **base)
    plugin = registry.left_out(str(head_id or ""))
    if plugin is not None:
        raise UnknownNameError(f"task {task_id!r} needs head {head_id!r} of plugin {plugin!r}, which is installed but MT_LOAD_PLUGINS "
                               "leaves it out; add it there, or unset MT_LOAD_PLUGINS")
    raise UnknownNameError(
        f"task {task_id!r} needs head {head_id or head_name!r}, which is not registered; install the plugin that provides it "
        f"(from Python, custom_heads={{{task_id!r}: HeadClass}} in from_pretrained also works)"
    )


def load_head_weights(root: Path, task_id: str, info: Mapping[str, Any], head: nn.Module, what: str = "head") -> None:
    """Load ``heads/<task>.safetensors`` into ``head``, checking keys, shapes and the task it was saved for
    (``what``: how messages name the file's contents, e.g. ``task-specific layers``)."""
    from safetensors import SafetensorError, safe_open

    rel = info.get("head_file")
    if not rel:
        raise ModelFileError(f"{root / MANIFEST_NAME}: task {task_id!r} lists no head_file (damaged manifest)")
    path = root / safe_relative(root, str(rel))  # never outside the model folder, whatever the manifest says
    if not path.is_file():
        raise ModelFileError(f"{path}: missing (the {what} of task {task_id!r}); copy or save the model again")
    try:
        with safe_open(str(path), framework="pt") as handle:
            saved_for = (handle.metadata() or {}).get("task")
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc}); copy or save the model again") from None
    if saved_for is not None and saved_for != task_id:
        raise ModelFileError(f"{path}: holds the {what} of task {saved_for!r}, not {task_id!r}; the files were mixed up, save the model again")
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        which = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelFileError(f"{path}: does not match the {what} of task {task_id!r} ({type(head).__name__}): {which}; "
                             f"were the {'head options' if what == 'head' else 'encoder settings'} changed?")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ModelFileError(
                f"{path}: tensor {key!r} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)} for the {what} of task {task_id!r}"
            )
    head.load_state_dict(state, strict=True)


def load_tokenizer(encoder_dir: Path, trust_remote_code: bool = False) -> Any:
    """The tokenizer saved beside the encoder, or ``None`` when none was saved (its own code runs only when trusted)."""
    if not (encoder_dir / "tokenizer_config.json").is_file():
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(encoder_dir), trust_remote_code=bool(trust_remote_code))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{encoder_dir}: the tokenizer cannot be loaded: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc


#: Attention implementations a saved model is loaded with when it trained with them (on any machine); others (FlashAttention,
#: which needs its package and a GPU) load as SDPA, the same attention to float precision.
REPRODUCED_ATTENTION = ("eager", "sdpa")


def load_model(cls: type, directory: str | os.PathLike, *, custom_heads: Mapping[str, Any] | None = None, verify: bool = True,
               with_tokenizer: bool = True, **options: Any) -> Any:
    """:meth:`MultitaskModel.from_pretrained <mtcore.model.multitask_model.MultitaskModel.from_pretrained>` (``cls``: the class to build)."""
    import inspect

    from mtcore.errors import unknown
    from mtcore.model import encoder as enc
    from mtcore.model.manifest import read_manifest, verify_files

    accepted = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "encoder", "heads_by_task", "tokenizer")]
    for name in options:
        if name not in accepted:
            raise unknown("from_pretrained option", name, accepted)
    root = Path(directory).expanduser()
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    encoder_dir = root / ENCODER_DIR
    if not (encoder_dir / "config.json").is_file():
        raise ModelFileError(f"{encoder_dir / 'config.json'}: missing; the encoder was not saved completely")
    unknown_custom = sorted(set(custom_heads or {}) - set(manifest["tasks"]))
    if unknown_custom:
        raise unknown("task in custom_heads", unknown_custom[0], manifest["tasks"], hint="the saved model has tasks: " + ", ".join(manifest["tasks"]))
    tokenizer = load_tokenizer(encoder_dir, bool(options.get("trust_remote_code"))) if with_tokenizer else None
    extra = {k: options.pop(k) for k in ("dtype", "attn_implementation", "trust_remote_code", "encoder_kwargs") if k in options}
    trained = manifest["encoder"].get("attn_implementation")  # eager as it trained; kernels that need a GPU or a package: sdpa
    attention = extra.get("attn_implementation", trained if trained in REPRODUCED_ATTENTION else "sdpa")
    encoder = enc.load_encoder(encoder_dir, dtype=extra.get("dtype", manifest["encoder"].get("dtype")), attn_implementation=attention,
                               trust_remote_code=extra.get("trust_remote_code", False), from_pretrained_kwargs=extra.get("encoder_kwargs"),
                               strict=True)
    size = enc.hidden_size(encoder)
    saved_size = manifest["encoder"].get("hidden_size")
    if saved_size is not None and int(saved_size) != size:
        raise ModelFileError(f"{encoder_dir / 'config.json'}: hidden size {size} does not match {saved_size} recorded in mtcore.json")
    heads = {task_id: head_spec_from_info(task_id, info, size, custom_heads or {}) for task_id, info in manifest["tasks"].items()}
    options.setdefault("fp32_residual", bool(manifest["encoder"].get("fp32_residual", True)))  # as it trained
    saved_layers = manifest["encoder"].get("task_layers") or {}
    if "task_layers" in options and int(options["task_layers"] or 0) != int(saved_layers.get("count", 0)):
        raise ConfigError(f"task_layers={options['task_layers']!r}: the saved model has {int(saved_layers.get('count', 0))} task-specific "
                          "top layers, and loading keeps them; leave task_layers out")
    options["task_layers"] = int(saved_layers.get("count", 0))
    own_adapters = _saved_task_adapters(root, manifest, options)
    model = cls(encoder, heads, tokenizer=tokenizer, **options)
    for task_id, info in manifest["tasks"].items():
        load_head_weights(root, task_id, info, model.heads[task_id])
        if model.task_layers is not None:
            task_layers.load(model.task_layers, root, task_id, info.get("task_layers_file"))
        if own_adapters:
            from mtcore.model.lora import load_adapters

            load_adapters(model.encoder, root, task_id, info.get("lora_file"))
    model.eval()
    return model


def _saved_task_adapters(root: Path, manifest: Mapping[str, Any], options: dict[str, Any]) -> bool:
    """Whether the saved tasks have LoRA adapters of their own (``per_task``); then ``options["lora"]`` rebuilds them."""
    import importlib.util

    saved = manifest["encoder"].get("lora") or {}
    if not saved.get("per_task"):
        return False
    if options.get("lora") is not None:
        raise ConfigError("lora: the saved model's tasks have LoRA adapters of their own, and loading keeps them; leave lora out")
    if importlib.util.find_spec("peft") is None:
        raise ModelFileError(f"{root}: its tasks have LoRA adapters of their own (lora/), which need the peft package: "
                             'pip install "mtcore[lora]"')
    options["lora"] = {key: saved[key] for key in ("r", "alpha", "dropout", "target_modules", "per_task") if key in saved}
    return True
