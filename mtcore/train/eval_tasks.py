"""Tasks a run scores but does not train, each predicted with the head of a task it trains.

A task entry with ``evaluate_with: <task of the run>`` — or a registered evaluate-only task (a
diagnostic set such as ``rsg:lidirus``) whose ``metadata.predict_with`` task the run trains — gets
no head, no batches, no loss and no optimizer group. At every evaluation its split is scored with
the serving task's head (zero-shot transfer: XNLI-ru with a head trained on your English NLI data;
the LiDiRus diagnostic with the TERRa head), and its metrics are logged, shown and written to
``summary.json`` like any task's. It counts in the aggregate score (which selects the best
checkpoint and stops early) only when ``evaluation.weights`` gives it a weight: by default 0.

Its split is the entry's ``split``, else ``evaluation.split``; a diagnostic set (registered
``evaluate_only``) that has no such split is scored on its ``test`` split, with a note.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtcore.errors import ConfigError, MtError
from mtcore.train.validate import PlannedTask

TRAINING_ONLY_KEYS = ("weight", "batch_size", "head", "head_options")


@dataclass
class EvaluatedTask(PlannedTask):
    """A task of the run that is scored, not trained: ``head`` is the id of the trained task whose head predicts it;
    ``split`` the split the entry asked for (None: ``evaluation.split``, see :func:`load_evaluated`)."""

    head: str = ""
    split: str | None = None


def is_evaluated_only(entry: Any, task: Any) -> bool:
    """Whether a task entry is scored without training: ``evaluate_with`` is set, or the task is a diagnostic set."""
    return entry.evaluate_with is not None or bool(task.evaluate_only)


def plan_evaluated(pending: list[tuple[int, PlannedTask]], trained: list[PlannedTask]) -> list[EvaluatedTask]:
    """Each evaluate-only entry (with its index in ``tasks``) bound to the trained task whose head predicts it;
    a one-line ConfigError for a head the run does not train, a kind or labels that differ, or a training-only key."""
    from mtcore.predict.tasks import check_compatible
    from mtcore.sampling.base import suggest_task

    ids = [p.id for p in trained]
    planned = []
    for i, p in pending:
        entry, task = p.entry, p.task
        wanted = entry.evaluate_with or (task.metadata or {}).get("predict_with")
        key = f"tasks.{i}.evaluate_with"
        if not wanted:
            raise ConfigError(f"config key 'tasks.{i}.id': task {task.id!r} is evaluate-only (a diagnostic set): it cannot be "
                              "trained; set evaluate_with to the task of this run whose head should score it, or leave it out")
        hits = [t for t in ids if t == wanted or t.split(":", 1)[-1] == wanted]
        if not ids:
            raise ConfigError(f"config key '{key}': this run trains no task, so no head can score {task.id!r} (it is only evaluated, "
                              "with the head of a trained task); add a task to train")
        if len(hits) != 1:
            problem = "is ambiguous among" if hits else "is not trained by this run; its tasks:"
            why = "" if entry.evaluate_with else f" (task {task.id!r} is scored with the head of {wanted!r}; add that task to tasks)"
            raise ConfigError(f"config key '{key}': {wanted!r} {problem} {', '.join(ids) or 'none'}{suggest_task(str(wanted), ids)}{why}")
        serving = next(t for t in trained if t.id == hits[0])
        for name in TRAINING_ONLY_KEYS:
            value = getattr(entry, name)
            if value is not None and not (name == "weight" and value == 1.0):
                fix = f"evaluation.weights.{task.id} counts it in the aggregate" if name == "weight" else f"the head of {serving.id!r} predicts it"
                raise ConfigError(f"config key 'tasks.{i}.{name}': task {task.id!r} is only evaluated (with the head of {serving.id!r}), "
                                  f"not trained; remove {name} ({fix})")
        try:
            check_compatible(task, serving.id, {"kind": serving.task.kind.value, "labels": list(serving.task.labels),
                                                "head_options": dict(serving.task.head_options)})
        except MtError as exc:
            raise ConfigError(f"config key '{key}': {exc}") from None
        planned.append(EvaluatedTask(entry, task, p.source, p.data_dir, head=serving.id, split=entry.split))
    return planned


def check_split_keys(entries: list[Any]) -> None:
    """``split`` belongs to evaluate-only entries: a trained task is scored on ``evaluation.split``."""
    for i, entry in entries:
        if entry.split is not None:
            raise ConfigError(f"config key 'tasks.{i}.split': task entries choose a split only when they are evaluated, not "
                              "trained (evaluate_with); a trained task is scored on evaluation.split")


def aggregate_weights(weights: Mapping[str, float], evaluated: list[Any], trained: list[Any] = ()) -> dict[str, float]:
    """``evaluation.weights`` with each evaluate-only task (of the Tasks ``evaluated``) not named there, by id or
    bare name, at weight 0; so is each auxiliary task (``masked_lm``) of the ``trained`` ones when another kind of task is
    scored (the model is chosen for the tasks it serves, not for its perplexity)."""
    auxiliary = [t for t in trained if is_auxiliary(t)]
    if all(is_auxiliary(t) for t in [*trained, *evaluated]):  # nothing but masked_lm tasks: they are what the run is for
        auxiliary = []
    out = {t.id: 0.0 for t in [*evaluated, *auxiliary] if t.id not in weights and t.name not in weights}
    out.update(weights)
    return out


def is_auxiliary(task: Any) -> bool:
    """Whether a Task trains the encoder for the other tasks' sake (``masked_lm``): it weighs 0 in the aggregate by default."""
    return str(getattr(task, "kind", "")) == "masked_lm"


def check_some_weight(weights: Mapping[str, float], tasks: list[Any], evaluated: list[Any] = ()) -> None:
    """A ConfigError when ``evaluation.weights`` leave every scored task at weight 0: there would be no aggregate, so no
    best checkpoint and no early stopping. Trained ``tasks`` count 1 unless weighed, ``evaluated`` (evaluate-only) ones
    0 unless weighed: ``{xnli-ru: 1, nli: 0}`` chooses by the zero-shot task alone."""
    counted = [weights.get(t.id, weights.get(t.name, 1.0)) for t in tasks] + [weights.get(t.id, weights.get(t.name, 0.0)) for t in evaluated]
    if tasks and not any(w > 0 for w in counted):
        raise ConfigError("config key 'evaluation.weights' gives every task weight 0, so there is no aggregate to choose the best "
                          "checkpoint or stop early by; give at least one task a weight > 0")


def load_evaluated(plan: Any, tokenizer: Any, options: dict[str, Any], notes: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The data of every evaluate-only task of ``plan`` and the split each is scored on (see the module docstring)."""
    data, splits = {}, {}
    default = plan.config.evaluation.split
    for e in plan.evaluated:
        split, task_data = load_scored_split(e.task, tokenizer, e.split, default, **{**options, "holdout": e.entry.holdout},
                                             source=e.source, data_dir=e.data_dir, max_length=e.task.max_length)
        if split != default and e.split is None:
            notes.append(f"task {e.id!r} (a diagnostic set) has no {default!r} split: scored on its {split!r} split")
        data[e.id], splits[e.id] = task_data, split
        weight = plan.eval_weights.get(e.id, plan.eval_weights.get(e.task.name, 0.0))
        if split == "test" and weight and plan.config.evaluation.every is not None:
            warnings.warn(f"task {e.id!r} counts in the aggregate (evaluation.weights) and is scored on its test split, so choosing "
                          "the best checkpoint or stopping early selects on test; give it weight 0 to only report it",
                          UserWarning, stacklevel=2)
    return data, splits


def load_scored_split(task: Any, tokenizer: Any, split: str | None, default: str, **options: Any) -> tuple[str, Any]:
    """``(split, TaskData)`` of the split an evaluate-only task is scored on: ``split``, else ``default``, else (a
    diagnostic set without ``default``) ``test``."""
    from mtcore.data import load_task_data
    from mtcore.data.files import NoFileFound
    from mtcore.data.task_data import MissingSplit

    chosen = split or default
    try:
        return chosen, load_task_data(task, tokenizer, splits=(chosen,), **options)
    except (MissingSplit, NoFileFound):
        if split is not None or not task.evaluate_only or chosen == "test":
            raise
    return "test", load_task_data(task, tokenizer, splits=("test",), **options)


class HeadAliases:
    """Calls ``model(task, ...)`` with the head that serves ``task`` (LiDiRus -> the TERRa head); the rest of the
    model's interface that evaluation uses (``training``, ``eval``, ``train``) is the model's."""

    def __init__(self, model: Any, heads: Mapping[str, str]) -> None:
        self.model = model
        self.heads = dict(heads)

    @property
    def training(self) -> bool:
        return bool(self.model.training)

    def eval(self) -> HeadAliases:
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> HeadAliases:
        self.model.train(mode)
        return self

    def __call__(self, task: str, **batch: Any) -> Any:
        return self.model(self.heads.get(task, task), **batch)


def check_span_readers(plan: Any, data: Mapping[str, Any]) -> None:
    """A spans head reading another task's rows (the head that scores an evaluate-only task, a distill teacher) finds as
    many spans in every row as it pools: checked when the data is loaded, before training (a DataError naming both)."""
    from mtcore.data.spans import check_read_counts, pools_spans

    readers = [(e.id, f"the head of {e.head!r}, which scores them,", serving.task.head_options)
               for e in plan.evaluated for serving in plan.tasks if serving.id == e.head and pools_spans(serving.task)]
    if plan.config.distill is not None:
        from mtcore.train.teachers import check_teachers, teacher_infos

        for task_id, path in check_teachers(plan).items():
            options = (teacher_infos(plan.config.distill, path).get(task_id) or {}).get("head_options") or {}
            if options.get("pooling") == "spans":
                readers.append((task_id, f"teacher {path}, which teaches them,", options))
    for task_id, who, options in readers:
        for split, rows in (data[task_id].splits.items() if task_id in data else ()):
            check_read_counts(task_id, rows, f"{split} split", who, options)
