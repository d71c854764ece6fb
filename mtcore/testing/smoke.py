"""A smoke training: a few steps on a task's sample, with a tiny offline encoder, through the real engine.

>>> result = smoke_train("toxic:example", encoder=tiny_encoder, output_dir=tmp_path, steps=3)
>>> result.steps, result.losses, result.metrics["toxic:example"]["accuracy"]

It builds the same config ``mt train`` reads (see :func:`smoke_config`) and runs it with
:class:`mtcore.train.trainer.Trainer` on the CPU in fp32, so a plugin's tests exercise the whole
path: registry, data loading and preprocessing, the task's head, metrics, the training loop,
evaluation and saving the model. It says nothing about quality: the encoder is random.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        if not task.plugin:
            raise TypeError(f"task {task.name!r} is not registered: pass its id ('plugin:{task.name}') or an inline definition (a dict)")
        return {"id": task.id, "source": source}
    if isinstance(task, Mapping):
        entry = {"define": dict(task)}
        if source != "sample":
            entry["source"] = source
        return entry
    raise TypeError(f"a smoke-training task is an id, a registered Task or a definition dict, not {type(task).__name__}")


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
    """Train ``tasks`` (ids, registered Tasks or inline definitions) for ``steps`` steps.

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
