"""A smoke training: a few steps on a task's sample, with a tiny offline encoder, through the real engine.

>>> result = smoke_train("toxic:toxic", encoder=tiny_encoder, output_dir=tmp_path, steps=3)
>>> result.steps, result.losses, result.metrics["toxic:toxic"]["accuracy"]

It builds the same config ``mt train`` reads (see :func:`smoke_config`) and runs it with
:class:`mtcore.train.trainer.Trainer` on the CPU in fp32, so a plugin's tests exercise the whole
path: registry, data loading and preprocessing, the task's head, metrics, the training loop,
evaluation and saving the model. It says nothing about quality: the encoder is random.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtcore.errors import UsageError
from mtcore.task import Task

TaskRef = str | Task | Mapping[str, Any]


@dataclass
class SmokeResult:
    """What a smoke training did: steps, the logged training losses, final metrics per task."""

    steps: int
    losses: list[float]
    metrics: dict[str, dict[str, float]]
    summary: dict[str, Any]
    output_dir: Path
    model_dir: Path
    losses_by_task: dict[str, list[float]] = field(default_factory=dict)


def _task_entry(task: TaskRef, source: str) -> dict[str, Any]:
    if isinstance(task, str):
        return {"id": task, "source": source}
    if isinstance(task, Task):
        if task.plugin and _registered(task):
            return {"id": task.id, "source": source}
        return {"define": _definition(task), "source": source}  # not registered (tasks_from_yaml, Task(...)), or changed
    if isinstance(task, Mapping):
        entry = {"define": dict(task)}
        if source != "sample":
            entry["source"] = source
        return entry
    raise UsageError(f"a smoke-training task is an id ('plugin:task'), a Task or a definition dict, not {type(task).__name__}")


def _registered(task: Task) -> bool:
    """Whether ``task`` is the registered task of its id, as it is (``task.replace(...)`` gives another)."""
    from mtcore.plugins import load_registry

    return load_registry(warn=False).tasks.get(task.id) == task


def _definition(task: Task) -> dict[str, Any]:
    """A Task as a config's inline definition (``define:``): its fields that differ from the defaults, with
    code named by ``"module:function"`` (a run saves its config as plain data)."""
    data: dict[str, Any] = {}
    for spec in dataclasses.fields(Task):
        value = getattr(task, spec.name)
        default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
        if spec.name != "plugin" and value != default:
            data[spec.name] = value
    data["kind"] = task.kind.value
    if task.plugin:
        data["plugin"] = task.plugin
    if task.preprocess:
        data["preprocess"] = [_named(task, step, "preprocessing step") for step in task.preprocess]
    if task.metadata:
        try:
            json.dumps(dict(task.metadata))
        except (TypeError, ValueError):
            data.pop("metadata")  # only shown by mt show-task: not needed to train
    data["sources"] = {
        name: dataclasses.replace(src, loader=_named(task, src.loader, f"source {name!r} loader"), options={
            key: _named(task, value, f"source {name!r} option {key}") if callable(value) else value for key, value in src.options.items()})
        for name, src in task.sources.items()}
    return data


def _named(task: Task, obj: Any, what: str) -> Any:
    """``obj`` as a ``"module:function"`` reference that resolves to it; a UsageError when it has none."""
    from mtcore.refs import describe, resolve

    if isinstance(obj, str):
        return obj
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(name, str) and "<" not in name:
        try:
            if resolve(f"{module}:{name}") is obj:
                return f"{module}:{name}"
        except Exception:  # not importable under that name
            pass
    raise UsageError(f"task {task.name!r} is not registered, and its {what} {describe(obj)} cannot be named as 'module:function' "
                     "(a lambda, an object or a function defined inside another): give it a module-level function, or register "
                     "the task and pass its id")


def smoke_config(
    tasks: TaskRef | Sequence[TaskRef],
    *,
    encoder: str | Path | None = None,
    steps: int = 3,
    batch_size: int = 4,
    source: str = "sample",
    evaluate: bool = True,
) -> dict[str, Any]:
    """The training config of a smoke run (a plain dict, as ``mt train`` would read from YAML).

    ``encoder`` is a local encoder directory; ``None`` lets the engine build a tiny BERT itself.
    """
    items: Iterable[TaskRef] = [tasks] if isinstance(tasks, (str, Task, Mapping)) else tasks
    encoder_section: dict[str, Any] = {"path": str(encoder)} if encoder is not None else {"tiny": "bert"}
    return {
        "seed": 0,
        "cpu": True,
        "precision": "fp32",
        "encoder": encoder_section,
        "tasks": [_task_entry(t, source) for t in items],
        "schedule": {"max_steps": int(steps), "warmup_steps": 0},
        "batching": {"batch_size": int(batch_size)},
        "evaluation": {"at_end": evaluate},
        "checkpoint": {"every": None, "keep_last": 1, "keep_best": False},
        "logging": {"every": 1, "progress": "none", "plot": False},
    }


def _train_losses(metrics_file: Path) -> tuple[list[float], dict[str, list[float]]]:
    losses: list[float] = []
    by_task: dict[str, list[float]] = {}
    if metrics_file.is_file():
        for line in metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "train" and "loss" in event:
                loss = float(event["loss"])
                losses.append(loss)
                by_task.setdefault(str(event.get("task")), []).append(loss)
    return losses, by_task


def smoke_train(
    tasks: TaskRef | Sequence[TaskRef],
    *,
    output_dir: str | Path,
    encoder: str | Path | None = None,
    steps: int = 3,
    batch_size: int = 4,
    source: str = "sample",
    evaluate: bool = True,
    overrides: Iterable[str] = (),
) -> SmokeResult:
    """Train ``tasks`` (ids, Tasks or inline definitions) for ``steps`` steps.

    A Task that is not registered as it is (from :func:`mtcore.yaml_tasks.tasks_from_yaml`, built with
    ``Task(...)`` or changed with ``replace``) is trained as an inline definition: its id is
    ``user:<name>`` (``<plugin>:<name>`` when it has a plugin), and its code (preprocessing steps,
    loaders) must be module-level functions.

    The run directory is ``output_dir``; ``overrides`` are ``key=value`` strings as for
    ``mt train``. Returns a :class:`SmokeResult`; raises what the engine raises (a task whose
    plugin failed to load is named with that failure).
    """
    from transformers.utils import logging as hf_logging

    from mtcore.testing.sample_check import quiet_datasets
    from mtcore.train.trainer import Trainer

    hf_logging.disable_progress_bar()
    config = smoke_config(tasks, encoder=encoder, steps=steps, batch_size=batch_size, source=source, evaluate=evaluate)
    trainer = Trainer(config, output_dir=Path(output_dir), overrides=list(overrides))
    with quiet_datasets():
        summary = trainer.train()
    run_dir = Path(summary.get("run_dir", output_dir))
    losses, by_task = _train_losses(run_dir / "metrics.jsonl")
    metrics = {task_id: dict(info.get("final") or {}) for task_id, info in (summary.get("tasks") or {}).items()}
    return SmokeResult(steps=int(summary["steps"]), losses=losses, metrics=metrics, summary=summary, output_dir=run_dir,
                       model_dir=Path(summary.get("model_dir", run_dir / "model")), losses_by_task=by_task)
