"""Which head predicts a task, and the :class:`~mtcore.task.Task` that reads its inputs.

A saved model records every task it was trained on in its manifest (``mtcore.json``): labels,
stored label values, input fields, the string references of its preprocessing functions,
``max_length``. :func:`prediction_task` rebuilds that Task, so prediction needs no plugin for
tasks whose preprocessing is saved by name. A task the model has no head for may still be
predicted when its registered spec says which head serves it (``metadata.predict_with``:
LiDiRus is predicted with the TERRa head).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, MtError, UnknownNameError
from mtcore.task import Task, TaskKind


def registered_task(task_id: str) -> Task | None:
    """The task registered under ``task_id`` by an installed plugin, or ``None``."""
    from mtcore.plugins import load_registry

    try:
        return load_registry(warn=False).task(task_id)
    except MtError:
        return None


class PluginLeftOut(ConfigError):
    """A task of an installed plugin that ``MT_LOAD_PLUGINS`` leaves out: refused, never skipped (exit 2)."""


def left_out_error(task_id: str) -> PluginLeftOut | None:
    """The refusal of ``task_id`` when its plugin is installed but ``MT_LOAD_PLUGINS`` leaves it out, else None."""
    from mtcore.plugins import load_registry

    plugin = load_registry(warn=False).left_out(str(task_id))
    if plugin is None:
        return None
    return PluginLeftOut(f"task {task_id!r} is of plugin {plugin!r}, which is installed but MT_LOAD_PLUGINS leaves it out; "
                         "add it there, or unset MT_LOAD_PLUGINS")


def manifest_task(model: Any, head_id: str, without_unsaved: bool = False) -> Task:
    """The Task recorded in the model's manifest for head ``head_id`` (no data sources).

    Preprocessing given as Python callables could not be saved by name: the registered task of
    the same id provides them, or the error says to pass the Task itself; ``without_unsaved``
    (an export, which reads no rows) keeps only the steps saved by name instead.
    """
    from mtcore.model.manifest import task_from_info

    live = getattr(model, "task_objects", {}).get(head_id)
    if live is not None:  # the Task this head was built from, in this session: its preprocessing functions too
        return live
    info = model.tasks[head_id]
    if not info.get("kind"):  # a custom head module given without its Task: nothing says how to read and score rows
        raise ConfigError(f"task {head_id!r} has a custom head given without a Task, so its kind and inputs are unknown; "
                          "pass the Task itself: predict(model, task, inputs)")
    task = task_from_info(info)
    unsaved = info.get("preprocess_not_saved") or []
    if unsaved:
        registered = registered_task(head_id) if ":" in head_id else None  # the same task only, never a namesake
        if without_unsaved and (registered is None or registered.id != head_id):
            return task  # the steps saved by name only
        if registered is None or registered.id != head_id:
            raise ConfigError(
                f"task {head_id!r} was trained with preprocessing functions that cannot be saved by name ({', '.join(unsaved)}), "
                "so its rows cannot be built here; register the task (its id) in a plugin that has them, or score it from Python "
                "with the Task itself: predict(model, task, inputs) / evaluate_model"
            )
        task = task.replace(preprocess=registered.preprocess)
    return task


def check_compatible(task: Task, head_id: str, info: dict[str, Any]) -> None:
    """Refuse a Task whose kind or labels do not match the head that will predict it."""
    kind = info.get("kind")
    if kind and kind != task.kind.value:
        raise ConfigError(f"task {task.id!r} is {task.kind.value}, but the head {head_id!r} predicts {kind} tasks")
    saved = list(info.get("labels") or [])
    if task.kind not in (TaskKind.REGRESSION, TaskKind.MULTIPLE_CHOICE) and saved and list(task.labels) != saved:
        if head_id == task.id:  # its own head: the task changed since the model trained (a plugin upgraded, labels edited)
            raise ConfigError(f"task {task.id!r} has the labels {list(task.labels)} now, and its head was trained with {saved} (its "
                              "plugin or its labels changed since?), so the head's outputs would be read as other labels: the labels "
                              "must be the same, in the same order; use the plugin version and labels the model trained with")
        raise ConfigError(f"task {task.id!r} has labels {list(task.labels)}, but the head {head_id!r} was trained with {saved}; "
                          "the labels must be the same, in the same order")
    from mtcore.data.spans import span_misfit

    misfit = span_misfit(task, info.get("head_options"))
    if misfit is not None:
        raise ConfigError(f"the head {head_id!r} cannot score task {task.id!r}: {misfit}")


def prediction_task(model: Any, task: str | Task, head: str | None = None) -> tuple[str, Task]:
    """``(head id, Task)`` to predict ``task`` with ``model``.

    ``task`` is a head id (``rsg:terra``), an unambiguous bare name (``terra``), a registered task
    served by another head (``rsg:lidirus`` -> the ``rsg:terra`` head), or a Task object (its
    inputs and preprocessing are used; its labels must match the head's). ``head`` (a head id or
    bare name) predicts ``task`` with that head instead: zero-shot transfer to a task of the same
    kind and labels that the model has no head for.
    """
    if head is not None:
        return _with_head(model, task, head)
    if isinstance(task, Task):
        head_id = _head_for(model, task.id, task)
        check_compatible(task, head_id, model.tasks[head_id])
        return head_id, task
    try:
        head_id = model.resolve_task(str(task))
    except UnknownNameError:
        if _names_several_heads(model, str(task)):  # ambiguous here: never settled by what the registry happens to hold
            raise
        registered = registered_task(str(task))
        if registered is None:
            raise
        head_id = _head_for(model, registered.id, registered)
        check_compatible(registered, head_id, model.tasks[head_id])
        return head_id, registered
    return head_id, manifest_task(model, head_id)


def _names_several_heads(model: Any, name: str) -> bool:
    """``name`` is a bare name that more than one of ``model``'s heads end with (``terra``: ``rsg:terra``, ``user:terra``)."""
    return ":" not in name and sum(head_id.rpartition(":")[2] == name for head_id in model.tasks) > 1


def _with_head(model: Any, task: str | Task, head: str) -> tuple[str, Task]:
    """``task`` predicted with the head ``head`` (see :func:`prediction_task`)."""
    try:
        head_id = model.resolve_task(str(head))
    except UnknownNameError as exc:  # it is the head that is unknown, not a task
        raise UnknownNameError(str(exc).replace("unknown task", "unknown head", 1)) from None
    if isinstance(task, Task):
        spec = task
    else:
        spec = registered_task(str(task))
        if spec is None:
            try:
                spec = manifest_task(model, model.resolve_task(str(task)))
            except UnknownNameError:
                from mtcore.plugins import load_registry

                load_registry(warn=False).task(str(task))  # an unknown name: the registry's error, with did-you-mean
                raise
    check_compatible(spec, head_id, model.tasks[head_id])
    return head_id, spec


def _head_for(model: Any, name: str, task: Task) -> str:
    """The head of ``task``: its own, else the one its ``metadata.predict_with`` names."""
    try:
        return model.resolve_task(name)
    except UnknownNameError as exc:
        other = (task.metadata or {}).get("predict_with")
        if other:
            try:
                return model.resolve_task(str(other))
            except UnknownNameError:
                pass
        if other:
            raise UnknownNameError(f"{exc} (task {task.id!r} is predicted with {other!r}, which this model has no head for either)") from None
        heads = ", ".join(model.tasks) or "no task"  # a registered task: known, only not trained here
        raise UnknownNameError(f"this model has no head for task {task.id!r} (its heads: {heads}); to use one of "
                               f"the same kind and labels, add --head ID") from None


def with_sources(task: Task, task_id: str) -> Task:
    """``task`` with the data sources of the registered task ``task_id`` (for ``--split``)."""
    if task.sources:
        return task
    registered = registered_task(task_id)
    if registered is None and (left_out := left_out_error(task_id)) is not None:
        raise left_out
    if registered is None or not registered.sources:
        raise ConfigError(
            f"task {task_id!r} is not registered by an installed plugin, so its data cannot be found; "
            "install its plugin (or, for a run, register the task again), give the rows in a file with --input, or, given "
            "a model folder of a run whose config defines the task, the run directory (its config names the data)"
        )
    return task.replace(sources=registered.sources)


def with_null_threshold(tasks: list[Task], value: float | None) -> list[Task]:
    """``tasks`` with ``null_threshold`` set to ``value`` (``--null-threshold``) where they have ``no_answer``
    (SQuAD 2.0's unanswerable questions); a UsageError when none has, or the value is not finite."""
    if value is None:
        return tasks
    import math

    from mtcore.errors import UsageError

    if not math.isfinite(value):
        raise UsageError(f"--null-threshold must be a finite number, got {value!r}")
    if not any(task.no_answer for task in tasks):
        names = ", ".join(task.id for task in tasks)
        raise UsageError(f"--null-threshold moves the \"no answer\" decision of extractive-QA tasks with no_answer (SQuAD 2.0); "
                         f"{names} {'has' if len(tasks) == 1 else 'have'} no unanswerable questions")
    return [task.replace(null_threshold=float(value)) if task.no_answer else task for task in tasks]


def checked_heads(model: Any, tasks: dict[str, Any], heads: dict[str, str]) -> dict[str, str]:
    """``evaluate_model``'s ``heads`` keyed by task ids of ``data`` with the model's head ids, each head's kind and
    labels the task's (as ``predict(head=...)`` and ``mt evaluate --head`` check)."""
    from mtcore.sampling.base import suggest_task

    checked = {}
    for name, head in heads.items():
        hits = [t for t in tasks if t == name or t.split(":", 1)[-1] == name]  # a task id or an unambiguous bare name
        if len(hits) != 1:
            problem = "is ambiguous" if hits else "is not a task of data"
            raise ConfigError(f"evaluate_model heads: {name!r} {problem}{suggest_task(str(name), list(tasks))}; "
                              f"its tasks: {', '.join(tasks)}")
        task_id, head_id = hits[0], model.resolve_task(str(head))
        check_compatible(tasks[task_id], head_id, model.tasks[head_id])
        checked[task_id] = head_id
    return checked


def checked_weights(weights: dict[str, Any], ids: list[str]) -> dict[str, float]:
    """``evaluate_model``'s ``weights`` keyed by task ids of ``data`` (ids or unambiguous bare names), numbers >= 0, not all 0."""
    from mtcore.train.validate import match_task_values

    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"evaluate_model weights: the weight of {name!r} must be a number >= 0, got {value!r}")
    matched = match_task_values(weights, ids, "weights", where="evaluate_model weights")
    if matched and not any(matched.values()) and len(matched) == len(ids):
        raise ConfigError("evaluate_model weights: every task has weight 0, so there is no aggregate; give one a weight > 0")
    return matched


def none_readable(ids: list[str], in_run: bool = False) -> str:
    """Why no task of a model can be scored: their plugins are not installed, or (``user:``) they were defined in a run's
    config or registered from Python (``in_run``: a run directory was given, whose config does not define them)."""
    plugins = sorted({i.split(":", 1)[0] for i in ids if ":" in i} - {"user"})
    fixes = [f"install {'their plugins' if len(plugins) != 1 else 'its plugin'} ({', '.join(plugins)})"] if plugins else []
    if any(i.startswith("user:") for i in ids) and in_run:
        fixes.append("register its user: tasks from Python again, as the run did when it trained, and score it there "
                     "(mtcore.predict.evaluate_model)")
    elif any(i.startswith("user:") for i in ids):
        fixes.append("evaluate the run directory, whose config defines its user: tasks (or register them from Python)")
    fixes.append("give the rows of one task in a file with --tasks ID --input FILE")
    return f"no task of the model can be scored here: nothing installed reads the data of {', '.join(ids)}; {', or '.join(fixes)}"


def files_by_name(task: Any) -> Any:
    """A task defined in the run's config, read from ``--data-dir``: its files by their names there (the run's
    config.yaml holds them as absolute paths, which a folder given would not change, or relative to the entry's own
    data_dir)."""
    local = task.sources.get("local")
    files = local.options.get("files") if local is not None else None
    if not isinstance(files, Mapping):
        return task

    def name(path: Any) -> Any:
        return Path(path).name if isinstance(path, str) else path

    named = {split: [name(p) for p in spec] if isinstance(spec, list) else name(spec) for split, spec in files.items()}
    return task.replace(sources={**task.sources, "local": dataclasses.replace(local, options={**local.options, "files": named})})
