"""Starting a run from a model mtcore saved: ``encoder.path: runs/multi/model``.

The saved model's encoder and tokenizer (its ``encoder/`` folder) start the new run; with
``encoder.load_heads: true`` every task of the new run that the saved model has, with the same
kind, labels and head, also starts from its trained head (the T5 recipe: train on many tasks,
then fine-tune on one). Tasks it does not have, or has differently, get a new head and a note.
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


def encoder_folder(path: str) -> str:
    """Where the encoder and its tokenizer are: ``path/encoder`` for a saved mtcore model, else ``path``."""
    root = saved_model_dir(path)
    return str(root / "encoder") if root is not None else path


def check_load_heads(path: str | None) -> None:
    """``encoder.load_heads`` needs ``encoder.path`` to be a model mtcore saved."""
    if path is None or saved_model_dir(path) is None:
        raise ConfigError("config key 'encoder.load_heads' needs 'encoder.path' to be a model directory saved by mtcore "
                          "(e.g. runs/<run>/model, holding mtcore.json); remove it or change encoder.path")


def load_saved_heads(model: Any, path: str, tasks: dict[str, Any]) -> list[str]:
    """Copy the trained heads of the saved model at ``path`` into ``model``'s matching tasks; returns notes."""
    from mtcore.model.manifest import read_manifest
    from mtcore.model.serialization import load_head_weights

    root = Path(path).expanduser()
    saved = read_manifest(root)["tasks"]
    loaded, notes = [], []
    for task_id, task in tasks.items():
        info = saved.get(task_id)
        if info is None:
            notes.append(f"encoder.load_heads: {root} has no head for task {task_id!r}; it starts with a new one")
            continue
        differs = _differences(task, info)
        if differs:
            notes.append(f"encoder.load_heads: task {task_id!r} differs from the saved one ({'; '.join(differs)}); "
                         "it starts with a new head")
            continue
        try:
            load_head_weights(root, task_id, info, model.heads[task_id])
        except ModelFileError as exc:  # same settings as far as the manifest says, but the weights do not fit
            notes.append(f"encoder.load_heads: task {task_id!r}: the saved head does not fit ({exc}); it starts with a new head")
            continue
        loaded.append(task_id)
    if loaded:
        notes.append(f"encoder.load_heads: trained heads of {', '.join(loaded)} loaded from {root}")
    return notes


def _differences(task: Any, info: dict[str, Any]) -> list[str]:
    """What keeps the saved head of a task from starting the new one: ``"labels: [a, b] here, [b, a] saved"``.

    Heads are compared by registered id (``classification`` is ``mtcore:classification``) and
    options with the head class's defaults filled in (``pooling: cls`` given or not is the same).
    """
    import inspect

    from mtcore.model.manifest import jsonable
    from mtcore.plugins import load_registry

    def component(name: Any) -> Any:
        try:
            return load_registry(warn=False).component("head", str(name))
        except Exception:  # not registered (a custom module): compared by name
            return None

    mine, theirs = component(task.head_name), component(info.get("head"))
    defaults: dict[str, Any] = {}
    if mine is not None:
        try:
            parameters = inspect.signature(mine.load()).parameters.values()
            defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        except (TypeError, ValueError, ImportError):
            defaults = {}
    mine_options = {**jsonable(defaults), **jsonable(dict(task.head_options))}
    saved_options = {**jsonable(defaults), **(info.get("head_options") or {})}
    pairs = [("kind", task.kind.value, info.get("kind")), ("labels", list(task.labels), list(info.get("labels") or [])),
             ("head", mine.id if mine else task.head_name, info.get("head_id") or (theirs.id if theirs else info.get("head")))]
    pairs += [(f"head_options.{k}", mine_options.get(k), saved_options.get(k)) for k in sorted(set(mine_options) | set(saved_options))]
    return [f"{what}: {a!r} here, {b!r} saved" for what, a, b in pairs if a != b]
