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
from mtcore.model.encoder import describe_encoder
from mtcore.outputs import share_modes
from mtcore.model.heads.base import HeadSpec
from mtcore.model.manifest import (
    ENCODER_DIR,
    FORMAT_VERSION,
    HEADS_DIR,
    MANIFEST_NAME,
    file_records,
    head_file_name,
    write_manifest,
)

if TYPE_CHECKING:
    from mtcore.model.multitask_model import MultitaskModel

HEAD_INFO_KEYS = ("head", "head_id", "head_options", "head_registered", "head_class", "head_file")


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
    foreign = [name for name in entries if name not in (MANIFEST_NAME, ENCODER_DIR, HEADS_DIR)]
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


def save_model(model: MultitaskModel, directory: str | os.PathLike, tokenizer: Any = None) -> Path:
    """Write ``model`` (and ``tokenizer``) to ``directory`` atomically; return the directory."""
    import transformers
    from safetensors.torch import save_file

    transformers.utils.logging.disable_progress_bar()
    target = Path(directory).expanduser().absolute()
    check_save_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        encoder_dir = tmp / ENCODER_DIR
        from mtcore.model.lora import lora_layers, merged_state_dict

        merged = merged_state_dict(model.encoder) if lora_layers(model.encoder) else None  # a plain encoder on disk
        model.encoder.save_pretrained(encoder_dir, state_dict=merged)
        if tokenizer is not None:
            portable_tokenizer(tokenizer).save_pretrained(encoder_dir)
        (tmp / HEADS_DIR).mkdir()
        tasks: dict[str, dict[str, Any]] = {}
        taken: set[str] = set()
        for task_id, head in model.heads.items():
            rel = head_file_name(task_id, taken)
            save_file(head_state(head), str(tmp / rel), metadata={"format": "pt", "task": task_id})
            tasks[task_id] = {**model.tasks[task_id], "head_file": rel}
        manifest = {
            "mtcore_version": mtcore.__version__,
            "format_version": FORMAT_VERSION,
            "encoder": describe_encoder(model.encoder, lora=getattr(model, "lora", None)),
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


def load_head_weights(root: Path, task_id: str, info: Mapping[str, Any], head: nn.Module) -> None:
    """Load ``heads/<task>.safetensors`` into ``head``, checking keys, shapes and the task it was saved for."""
    from safetensors import SafetensorError, safe_open

    rel = info.get("head_file")
    if not rel:
        raise ModelFileError(f"{root / MANIFEST_NAME}: task {task_id!r} lists no head_file (damaged manifest)")
    path = root / str(rel)
    if not path.is_file():
        raise ModelFileError(f"{path}: missing (head weights of task {task_id!r}); copy or save the model again")
    try:
        with safe_open(str(path), framework="pt") as handle:
            saved_for = (handle.metadata() or {}).get("task")
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc}); copy or save the model again") from None
    if saved_for is not None and saved_for != task_id:
        raise ModelFileError(f"{path}: holds the head of task {saved_for!r}, not {task_id!r}; the files were mixed up, save the model again")
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelFileError(f"{path}: does not match the head of task {task_id!r} ({type(head).__name__}): {what}; were the head options changed?")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ModelFileError(
                f"{path}: tensor {key!r} has shape {tuple(state[key].shape)}, the head of task {task_id!r} expects {tuple(value.shape)}"
            )
    head.load_state_dict(state, strict=True)


def load_tokenizer(encoder_dir: Path) -> Any:
    """The tokenizer saved beside the encoder, or ``None`` when none was saved."""
    if not (encoder_dir / "tokenizer_config.json").is_file():
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(encoder_dir))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{encoder_dir}: the tokenizer cannot be loaded: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
