"""Starting a run from a model mtcore saved (``encoder.path: runs/multi/model``) or from a training checkpoint
(``encoder.path: runs/multi/checkpoints/step-000300``, also of a preempted run that has no ``model/``).

The saved model's encoder and tokenizer (its ``encoder/`` folder) start the new run (with task-specific top
layers, ``encoder.task_layers``, the run must have as many, and each task the saved model has starts from its own); with
``encoder.load_heads: true`` every task of the new run that the saved model has, with the same
kind, labels and head, also starts from its trained head (the T5 recipe: train on many tasks,
then fine-tune on one). Tasks it does not have, or has differently, get a new head and a note.

A checkpoint is rebuilt as ``mt evaluate`` rebuilds it (:func:`mtcore.predict.locate.load_model`: the
checkpoint's run config, its encoder source, the checkpoint's weights); the new run is built from that
same encoder source and tokenizer, then takes the checkpoint's encoder weights (LoRA adapters merged in)
and, with ``load_heads``, its matching heads. The checkpoint is read again by ``--resume`` of the new run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, ModelFileError


def saved_model_dir(path: str | Path) -> Path | None:
    """``path`` if it is a model directory saved by mtcore (``mtcore.json`` beside ``encoder/``)."""
    from mtcore.model.manifest import MANIFEST_NAME

    root = Path(path).expanduser()
    return root if (root / MANIFEST_NAME).is_file() and (root / "encoder").is_dir() else None


def training_checkpoint(path: str | Path) -> Path | None:
    """``path`` if it is a finished training checkpoint of a run (``RUN/checkpoints/step-N`` with ``state.json``)."""
    from mtcore.predict.locate import CHECKPOINT_DONE, CHECKPOINT_WEIGHTS

    root = Path(path).expanduser()
    done = (root / CHECKPOINT_WEIGHTS).is_file() and (root / CHECKPOINT_DONE).is_file()
    return root if done and root.absolute().parent.name == "checkpoints" else None


def encoder_folder(path: str) -> str:
    """Where the encoder and its tokenizer are: ``path/encoder`` for a saved mtcore model, the encoder its run was built
    from for a training checkpoint, else ``path``."""
    root = saved_model_dir(path)
    if root is not None:
        return str(root / "encoder")
    checkpoint = training_checkpoint(path)
    if checkpoint is not None:
        from mtcore.predict.locate import locate, run_config

        location = locate(checkpoint)
        return run_encoder_source(run_config(location), location.run_dir)
    return path


def run_encoder_source(config: Any, run_dir: Path) -> str:
    """The encoder (and tokenizer) folder or hub id the run in ``run_dir`` was built from: its ``encoder.path``
    (resolved as above) or the tiny demo encoder in the run directory (a ModelFileError when that is gone)."""
    if config.encoder.path is not None:
        return encoder_folder(config.encoder.path)
    source = run_dir / f"tiny-encoder-{config.encoder.tiny.arch}"
    if not (source / "config.json").is_file():
        raise ModelFileError(f"{source}: the run's demo encoder is missing; the checkpoint cannot be rebuilt without it")
    return str(source)


def check_load_heads(path: str | None) -> None:
    """``encoder.load_heads`` needs ``encoder.path`` to be a model mtcore saved or a training checkpoint."""
    if path is None or (saved_model_dir(path) is None and training_checkpoint(path) is None):
        raise ConfigError("config key 'encoder.load_heads' needs 'encoder.path' to be a model directory saved by mtcore "
                          "(e.g. runs/<run>/model, holding mtcore.json) or a checkpoint of a run (runs/<run>/checkpoints/step-N); "
                          "remove it or change encoder.path")


def warm_start(model: Any, config: Any, tasks: dict[str, Any]) -> list[str]:
    """Start ``model`` from what ``encoder.path`` holds beyond the encoder folder: a checkpoint's encoder weights (and
    heads), or with ``encoder.load_heads`` a saved model's heads; returns notes."""
    path = config.encoder.path
    if path is not None and training_checkpoint(path) is not None:
        return load_checkpoint_weights(model, str(path), tasks, load_heads=config.encoder.load_heads)
    root = saved_model_dir(path) if path is not None else None
    notes = load_saved_task_layers(model, root) + load_saved_adapters(model, root) if root is not None else []
    if config.encoder.load_heads:
        notes += load_saved_heads(model, str(path), tasks)
    return notes


def check_saved_task_layers(path: str | None, count: int) -> None:
    """Before anything is built (``mt check`` too): a saved model at ``path`` has as many task-specific top layers as the
    run's ``encoder.task_layers`` (see :func:`_check_task_layers`)."""
    root = saved_model_dir(path) if path is not None else None
    if root is None:
        return
    from mtcore.model.manifest import read_manifest

    try:
        saved = int((read_manifest(root)["encoder"].get("task_layers") or {}).get("count", 0))
    except (KeyError, TypeError, ValueError, AttributeError):  # an unreadable manifest is named when the model loads
        return
    _task_layers_differ(saved, count, root)


def _check_task_layers(model: Any, saved_count: int, path: Any) -> None:
    """A model whose last layers are task-specific starts only a run with as many (its encoder folder holds the
    pretrained top layers, not the trained ones)."""
    _task_layers_differ(saved_count, model.task_layers.count if getattr(model, "task_layers", None) is not None else 0, path)


def _task_layers_differ(saved_count: int, count: int, path: Any) -> None:
    if saved_count != count:
        raise ConfigError(f"config key 'encoder.task_layers': {path} has {saved_count} task-specific top layers and this run "
                          f"{count}; set encoder.task_layers: {saved_count}" + (
                              ", or start from one task's model (mt export MODEL DIR --task TASK, then "
                              "encoder.path: DIR)" if saved_count else ""))


def _start_task_layers(model: Any, saved_ids: Any, load: Any, path: Any) -> list[str]:
    """Each task of the run that the saved model has starts from its trained top layers (``load(task_id, copies)``)."""
    if getattr(model, "task_layers", None) is None:
        return []
    loaded = [task_id for task_id in model.task_layers.copies if task_id in saved_ids]
    for task_id in loaded:
        load(task_id, model.task_layers.copies[task_id])
    fresh = [task_id for task_id in model.task_layers.copies if task_id not in saved_ids]
    return ([f"encoder.task_layers: the trained top layers of {', '.join(loaded)} loaded from {path}"] if loaded else []) + (
        [f"encoder.task_layers: {path} has no top layers for {', '.join(fresh)}; they start from the encoder's"] if fresh else [])


def load_saved_task_layers(model: Any, root: Path) -> list[str]:
    """The task-specific top layers of the saved model at ``root`` into ``model``'s matching tasks; returns notes."""
    from mtcore.model import task_layers
    from mtcore.model.manifest import read_manifest

    manifest = read_manifest(root)
    _check_task_layers(model, int((manifest["encoder"].get("task_layers") or {}).get("count", 0)), root)
    saved = manifest["tasks"]
    return _start_task_layers(model, saved, lambda task_id, copies: task_layers.load(
        model.task_layers, root, task_id, saved[task_id].get("task_layers_file")), root)


def load_saved_adapters(model: Any, root: Path) -> list[str]:
    """The saved model's per-task LoRA adapters (``encoder.options.lora.per_task``) into ``model``'s matching tasks."""
    from mtcore.model.manifest import read_manifest

    manifest = read_manifest(root)
    settings = manifest["encoder"].get("lora") or {}
    if not settings.get("per_task"):
        return []

    def read(task_id: str) -> dict[str, Any]:
        from safetensors.torch import load_file

        return load_file(str(root / manifest["tasks"][task_id]["lora_file"]))
    return _start_adapters(model, settings, [t for t, info in manifest["tasks"].items() if info.get("lora_file")], read, root)


def _start_adapters(model: Any, saved: dict[str, Any], saved_ids: list[str], read: Any, path: Any) -> list[str]:
    """Each task of ``model`` with adapters of its own that ``path`` has too starts from those (``read(task_id)``: their
    tensors, keyed without the task id); notes say which, and that a run without per-task adapters leaves them."""
    mine, keys = getattr(model, "lora", None) or {}, ("r", "alpha", "target_modules")
    if not mine.get("per_task"):
        return [f"encoder.path: {path} has LoRA adapters for each task, which this run (without encoder.options.lora.per_task) "
                "leaves out: it starts from the encoder's frozen weights"]
    if any(mine.get(key) != saved.get(key) for key in keys):
        return [f"encoder.options.lora: the task adapters of {path} have {', '.join(f'{key}={saved.get(key)!r}' for key in keys)}, "
                "other settings than this run's: every task's adapters start new (give those settings to start from them)"]
    from mtcore.model.lora import adapter_state

    loaded = [task_id for task_id in model.heads if task_id in saved_ids]
    for task_id in loaded:
        state, marker = read(task_id), f".{task_id}."
        named = {key: key.replace(marker, ".") for key in model.encoder.state_dict() if ".lora_" in key and marker in key}
        if set(named.values()) != set(state) or set(adapter_state(model.encoder, task_id)) != set(state):
            raise ConfigError(f"config key 'encoder.options.lora': the task adapters of {path} do not fit this run's encoder")
        model.encoder.load_state_dict({key: state[short] for key, short in named.items()}, strict=False)
    fresh = [task_id for task_id in model.heads if task_id not in saved_ids]
    return ([f"encoder.options.lora: the trained adapters of {', '.join(loaded)} loaded from {path}"] if loaded else []) + (
        [f"encoder.options.lora: {path} has no adapters for {', '.join(fresh)}; theirs start new"] if fresh else [])


def load_checkpoint_weights(model: Any, path: str, tasks: dict[str, Any], load_heads: bool) -> list[str]:
    """Copy the encoder of the training checkpoint at ``path`` into ``model`` (built from the checkpoint's encoder
    source) and, with ``load_heads``, its matching trained heads. The checkpoint's model is rebuilt as ``mt evaluate``
    rebuilds it, without touching the random state (the new run's seed decides everything else)."""
    import warnings

    import torch

    from mtcore.model.lora import lora_layers, merged_state_dict
    from mtcore.predict.locate import load_model, locate

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the other run's config was checked when it ran
        saved = load_model(locate(path), "cpu", check_labels=False)  # a task whose labels changed since: a new head, noted
    plain = merged_state_dict(saved.encoder) if lora_layers(saved.encoder) else saved.encoder.state_dict()
    names = {key: key.replace(".base_layer.", ".") for key in model.encoder.state_dict() if ".lora_" not in key}
    mine = model.encoder.state_dict()
    unfit = sorted(set(names.values()) ^ set(plain)) or [n for k, n in names.items() if tuple(plain[n].shape) != tuple(mine[k].shape)]
    if unfit:
        raise ConfigError(f"config key 'encoder.path': the encoder of checkpoint {path} does not fit this run's encoder (e.g. "
                          f"{unfit[0]!r}: check encoder.options); give the options that run used, see its config.yaml")
    model.encoder.load_state_dict({key: plain[name] for key, name in names.items()}, strict=False)
    notes = [f"encoder.path: the encoder weights of checkpoint {path} (step {int(Path(path).name.split('-')[1])})"]
    _check_task_layers(model, saved.task_layers.count if saved.task_layers is not None else 0, path)
    if saved.task_layers is not None:
        notes += _start_task_layers(model, saved.task_layers.copies, lambda task_id, copies: copies.load_state_dict(
            saved.task_layers.copies[task_id].state_dict()), path)
    if (saved.lora or {}).get("per_task"):
        from mtcore.model.lora import adapter_state

        notes += _start_adapters(model, saved.lora, list(saved.heads), lambda task_id: adapter_state(saved.encoder, task_id), path)
    if load_heads:
        infos = {task_id: _with_resolved(info, saved.heads[task_id]) for task_id, info in saved.tasks.items()}
        notes += _start_heads(model, tasks, infos, lambda task_id, info, head: _copy_head(saved, task_id, head), path)
    return notes


def _with_resolved(info: dict[str, Any], head: Any) -> dict[str, Any]:
    """A rebuilt checkpoint's task info with the options its head settled itself, as a saved model's manifest records them."""
    from mtcore.model.heads.base import resolved_options_of

    resolved = resolved_options_of(head)
    given = {k: v for k, v in (info.get("head_options") or {}).items() if v is not None or k not in resolved}
    return {**info, "head_options": {**resolved, **given}} if resolved else info


def _copy_head(saved: Any, task_id: str, head: Any) -> None:
    """The head of ``task_id`` in the rebuilt checkpoint model ``saved`` into ``head`` (a ModelFileError when it does not fit)."""
    state, expected = saved.heads[task_id].state_dict(), head.state_dict()
    if state.keys() != expected.keys() or any(tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()):
        raise ModelFileError(f"its tensors do not match the head of task {task_id!r} ({type(head).__name__})")
    head.load_state_dict(state, strict=True)


def load_saved_heads(model: Any, path: str, tasks: dict[str, Any]) -> list[str]:
    """Copy the trained heads of the saved model at ``path`` into ``model``'s matching tasks; returns notes."""
    from mtcore.model.manifest import read_manifest
    from mtcore.model.serialization import load_head_weights

    root = Path(path).expanduser()
    saved = read_manifest(root)["tasks"]
    return _start_heads(model, tasks, saved, lambda task_id, info, head: load_head_weights(root, task_id, info, head), root)


def _start_heads(model: Any, tasks: dict[str, Any], saved: dict[str, Any], load: Any, root: Any) -> list[str]:
    """Load the saved head of every task of ``tasks`` that ``saved`` (task id -> manifest info) has with the same kind,
    labels and head (``load(task_id, info, head)``); notes name the others."""
    loaded, notes = [], []
    for task_id, task in tasks.items():
        info = saved.get(task_id)
        if info is None:
            notes.append(f"encoder.load_heads: {root} has no head for task {task_id!r}; it starts with a new one")
            continue
        differs = _differences(task, info, model.heads[task_id])
        if differs:
            notes.append(f"encoder.load_heads: task {task_id!r} differs from the saved one ({'; '.join(differs)}); "
                         "it starts with a new head")
            continue
        try:
            load(task_id, info, model.heads[task_id])
        except ModelFileError as exc:  # same settings as far as the manifest says, but the weights do not fit
            notes.append(f"encoder.load_heads: task {task_id!r}: the saved head does not fit ({exc}); it starts with a new head")
            continue
        loaded.append(task_id)
        if getattr(model.heads[task_id], "pretrained", None):  # a masked_lm head: the saved one, not the checkpoint's
            model.heads[task_id].pretrained = None
    if loaded:
        notes.append(f"encoder.load_heads: trained heads of {', '.join(loaded)} loaded from {root}")
    return notes


def _differences(task: Any, info: dict[str, Any], head: Any = None) -> list[str]:
    """What keeps the saved head of a task from starting the new one: ``"labels: [a, b] here, [b, a] saved"``.

    Heads are compared by registered id (``classification`` is ``mtcore:classification``) and
    options with the head class's defaults filled in (``pooling: cls`` given or not is the same).
    """
    import inspect

    from mtcore.model.heads.base import TRAINING_ONLY_OPTIONS  # they never keep a saved head from starting the run
    from mtcore.model.manifest import jsonable
    from mtcore.plugins import load_registry

    def component(name: Any) -> Any:
        try:
            return load_registry(warn=False).component("head", str(name))
        except Exception:  # not registered (a custom module): compared by name
            return None

    mine, theirs = component(task.head_ref), component(info.get("head"))
    defaults: dict[str, Any] = {}
    if mine is not None:
        try:
            parameters = inspect.signature(mine.load()).parameters.values()
            defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        except (TypeError, ValueError, ImportError):
            defaults = {}
    from mtcore.model.heads.pooling import number_or_text

    # options the new head settled itself, compared where the saved model recorded them (a model saved before they were
    # recorded, with the resolution of its day: its weights decide)
    from mtcore.model.heads.base import resolved_options_of

    settled = resolved_options_of(head) if head is not None else {}
    # null, given or saved (as models saved before null was left out record it), is the head's own
    saved_given = {k: v for k, v in (info.get("head_options") or {}).items() if v is not None or k not in settled}
    resolved = {k: v for k, v in settled.items() if k in saved_given}
    given = {k: v for k, v in jsonable(dict(task.head_options)).items() if v is not None or k not in settled}
    mine_options = {k: number_or_text(v) for k, v in {**jsonable(defaults), **jsonable(dict(resolved)), **given}.items()}
    saved_options = {k: number_or_text(v) for k, v in {**jsonable(defaults), **saved_given}.items()}
    pairs = [("kind", task.kind.value, info.get("kind")), ("labels", list(task.labels), list(info.get("labels") or [])),
             ("head", mine.id if mine else task.head_name, info.get("head_id") or (theirs.id if theirs else info.get("head")))]
    pairs += [(f"head_options.{k}", mine_options.get(k), saved_options.get(k)) for k in sorted(set(mine_options) | set(saved_options))
              if k not in TRAINING_ONLY_OPTIONS]
    return [f"{what}: {a!r} here, {b!r} saved" for what, a, b in pairs if a != b]
