"""The teachers of knowledge distillation (config section ``distill``): which trained model teaches each task.

A teacher is what ``mt predict`` takes: a run folder, its ``model/`` or a finished checkpoint. ``distill.teachers``
names one per task; ``distill.teacher`` teaches every other task of the run that it has a head for. A teacher's task
must have the same kind and labels, in the same order: its outputs are compared with the student's class by class. A
``masked_lm`` task is never distilled (``distill.teacher`` leaves it to its own loss).

:func:`check_teachers` checks what the saved models' manifests tell, without loading any weights (``mt check``, every
``--grid`` combination); :func:`load_teachers` loads them for training (before any data is read) and checks what only a
loaded model tells: a checkpoint's heads, the tokenizer (a teacher reads the student's token ids, so its vocabulary must be
the same) and the positions its encoder has. Teachers are needed to train only: ``mt evaluate``, ``mt predict`` and
``mt export`` of the student never read them.
"""

from __future__ import annotations

import warnings
from typing import Any

from mtcore.errors import ConfigError, MtError


def assigned_teachers(distill: Any, task_ids: list[str], saved: dict[str, dict[str, Any] | None], scored: Any = ()) -> dict[str, str]:
    """Task id -> teacher path for every distilled task: ``distill.teachers`` (ids or bare names), then ``distill.teacher``
    for the tasks it has a head for (``saved``: each teacher's task infos, None while unknown: then it teaches every task).
    ``scored``: the run's evaluate-only tasks (``(id, the task whose head scores it)``), which have no loss to distil."""
    from mtcore.train.validate import match_task_values

    for name in distill.teachers:
        scoring = next((head for task, head in scored if name in (task, task.split(":", 1)[-1])), None)
        if scoring is not None:
            raise ConfigError(f"config key 'distill.teachers.{name}': {name!r} is scored with {scoring}'s head (evaluate_with), not "
                              f"trained, so it has no loss to distil; leave it out (a teacher of {scoring} teaches that head)")
    named = match_task_values(distill.teachers, task_ids, "distill.teachers", convert=str)
    general = distill.teacher
    if general is not None:
        has = saved.get(general)
        named.update({t: general for t in task_ids if t not in named and (has is None or t in has)})
        if has is not None and not any(path == general for path in named.values()):
            kept = [t for t in task_ids if t not in named]
            raise ConfigError(f"config key 'distill.teacher': {general} has heads for {', '.join(has) or 'no task'}, none of them "
                              f"a task of this run left to it ({', '.join(kept) or 'distill.teachers names every task'}); give "
                              "a teacher trained on them, or leave distill.teacher out")
    return named


def task_misfit(task: Any, info: dict[str, Any]) -> str | None:
    """Why a teacher's head (its manifest ``info``) cannot teach ``task``, or None."""
    kind = task.kind.value
    if info.get("kind") != kind:
        return f"it is {info.get('kind')} there, {kind} here"
    theirs, mine = list(info.get("labels") or []), list(task.labels)
    if theirs != mine:
        return f"its labels are {theirs} there, {mine} here (the same labels in the same order are needed)"
    from mtcore.data.spans import span_misfit

    return span_misfit(task, info.get("head_options"))


def _key(distill: Any, path: str) -> str:
    return "distill.teacher" if path == distill.teacher and path not in distill.teachers.values() else "distill.teachers"


def _location(distill: Any, path: str) -> Any:
    from mtcore.predict.locate import locate

    try:
        return locate(path)
    except MtError as exc:
        raise ConfigError(f"config key {_key(distill, path)!r}: {exc}") from None


def _saved_tasks(distill: Any, path: str) -> dict[str, dict[str, Any]] | None:
    """The task infos a teacher's manifest holds; None for a checkpoint (known once it is loaded)."""
    from mtcore.model.manifest import read_manifest

    location = _location(distill, path)
    if location.checkpoint:
        return _checkpoint_tasks(location)
    try:
        return dict(read_manifest(location.model_dir)["tasks"])
    except MtError as exc:
        raise ConfigError(f"config key {_key(distill, path)!r}: {exc}") from None


def teacher_infos(distill: Any, path: str) -> dict[str, dict[str, Any]]:
    """The task infos of a teacher (its manifest's, or a checkpoint's run config's; empty when unknown)."""
    return _saved_tasks(distill, path) or {}


def _checkpoint_tasks(location: Any) -> dict[str, dict[str, Any]] | None:
    """A checkpoint's tasks (kind, labels) as its run's config plans them; None when that cannot be planned here (a plugin
    not installed): the loaded checkpoint is checked when the run starts."""
    from mtcore.predict.locate import run_config

    try:
        from mtcore.train.validate import plan_run

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = plan_run(run_config(location))
    except MtError:
        return None
    return {p.id: {"kind": p.task.kind.value, "labels": list(p.task.labels), "head_options": dict(p.task.head_options)} for p in plan.tasks}


def _check_fits(distill: Any, assigned: dict[str, str], tasks: dict[str, Any], saved: dict[str, Any]) -> None:
    for task_id, path in assigned.items():
        infos = saved.get(path)
        if infos is None:
            continue
        info = infos.get(task_id)
        if info is None:
            raise ConfigError(f"config key 'distill.teachers': teacher {path} has no head for task {task_id!r} (it has "
                              f"{', '.join(infos) or 'none'}); give a teacher trained on it")
        misfit = task_misfit(tasks[task_id], info)
        if misfit is not None:
            raise ConfigError(f"config key {_key(distill, path)!r}: teacher {path} cannot teach task {task_id!r}: {misfit}; "
                              "give it a teacher trained on the same task (distill.teachers)")


def check_teachers(plan: Any) -> dict[str, str]:
    """Check ``plan``'s ``distill`` section against the teachers' manifests; returns task id -> teacher path."""
    distill = plan.config.distill
    if distill is None:
        return {}
    tasks = _distillable(plan)
    if not tasks:
        raise ConfigError("config key 'distill': every task this run trains is a masked_lm one, which learns its own masked tokens, "
                          "not a teacher's answers; leave distill out")
    for name in distill.teachers:
        auxiliary = next((p.id for p in plan.tasks if name in (p.id, p.task.name) and p.id not in tasks), None)
        if auxiliary is not None:
            raise ConfigError(f"config key 'distill.teachers.{name}': task {auxiliary!r} is a masked_lm task, which learns its own "
                              "masked tokens, not a teacher's answers; leave it out")
    paths = {*distill.teachers.values(), *([distill.teacher] if distill.teacher else [])}
    saved = {path: _saved_tasks(distill, path) for path in sorted(paths)}
    assigned = assigned_teachers(distill, list(tasks), saved, [(e.id, e.head) for e in plan.evaluated])
    _check_fits(distill, assigned, tasks, saved)
    return assigned


def _distillable(plan: Any) -> dict[str, Any]:
    """The run's trained tasks a teacher may teach: all but masked_lm ones (their targets are their own tokens)."""
    return {p.id: p.task for p in plan.tasks if p.task.kind.value != "masked_lm"}


def load_teachers(plan: Any, tokenizer: Any, student: Any, device: Any) -> tuple[dict[str, Any], list[str]]:
    """Task id -> its teacher (a MultitaskModel in evaluation mode, no gradients, on ``device``), and the notes to print.
    One model per teacher path, however many tasks it teaches; ``student``: the model being trained."""
    from mtcore.predict.locate import load_model

    distill = plan.config.distill
    if distill is None:
        return {}, []
    check_teachers(plan)
    models: dict[str, Any] = {}
    for path in sorted({*distill.teachers.values(), *([distill.teacher] if distill.teacher else [])}):
        model = load_model(_location(distill, path), device=device)
        model.eval().requires_grad_(False)
        _check_vocabulary(distill, path, model, tokenizer)
        if plan.config.batching.padding_free:
            model.enable_padding_free()
        models[path] = model
    tasks = _distillable(plan)
    assigned = assigned_teachers(distill, list(tasks), {path: model.tasks for path, model in models.items()})
    _check_fits(distill, assigned, tasks, {path: model.tasks for path, model in models.items()})
    for task_id, path in assigned.items():
        _check_positions(distill, path, tasks[task_id], tokenizer, student.encoder.config, models[path].encoder.config)
        _check_segments(distill, path, tasks[task_id], student, models[path])
    share = f"teacher_weight {distill.teacher_weight:g}" + (", annealed to 0" if distill.anneal else "")
    notes = [f"distill: {', '.join(t for t in assigned if assigned[t] == path)} taught by {path} ({share}, temperature "
             f"{distill.temperature:g})" for path in models if path in assigned.values()]
    return {task_id: models[path] for task_id, path in assigned.items()}, notes + untaught(plan, assigned)


def untaught(plan: Any, assigned: dict[str, str]) -> list[str]:
    """The note naming the tasks a distilled run trains without a teacher (none without them)."""
    left = [t for t in _distillable(plan) if t not in assigned]
    return [f"distill: {', '.join(left)} {'has' if len(left) == 1 else 'have'} no teacher (trained on the labels alone)"] if left else []


def _check_vocabulary(distill: Any, path: str, model: Any, tokenizer: Any) -> None:
    theirs = getattr(model, "tokenizer", None)
    if theirs is None:
        return
    mine, saved = tokenizer.get_vocab(), theirs.get_vocab()
    if mine != saved:
        other = sum(1 for token, i in saved.items() if mine.get(token) != i)
        raise ConfigError(f"config key {_key(distill, path)!r}: teacher {path} has another tokenizer than the encoder being trained "
                          f"({len(saved)} tokens, {other} of them with another id or not in the student's {len(mine)}); a teacher "
                          "reads the student's token ids, so it must share its vocabulary (a model of the same family)")


def _check_segments(distill: Any, path: str, task: Any, student: Any, teacher: Any) -> None:
    """A teacher that reads segment ids (BERT) cannot teach a task of two texts to a student without them (DistilBERT,
    of the same vocabulary): the student's batches have none, and the teacher would read both texts as the first."""
    from mtcore.task import TaskKind

    two_texts = task.is_pair or task.kind in (TaskKind.MULTIPLE_CHOICE, TaskKind.EXTRACTIVE_QA)
    if two_texts and teacher.uses_token_type_ids and not student.uses_token_type_ids:
        raise ConfigError(f"config key {_key(distill, path)!r}: teacher {path} ({type(teacher.encoder).__name__}) reads segment ids, "
                          f"which the encoder being trained ({type(student.encoder).__name__}) does not make, so on task {task.id!r} "
                          "(two texts) it would not compute what it learnt; give a teacher without segment ids, or a student with them")


def _check_positions(distill: Any, path: str, task: Any, tokenizer: Any, mine: Any, theirs: Any) -> None:
    from mtcore.data.tokenize import position_limit, resolve_max_length

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run warns about its own lengths when it reads the data
        length = resolve_max_length(task, tokenizer, None, mine)
    limit = position_limit(theirs)
    if limit is not None and length > limit:
        raise ConfigError(f"config key {_key(distill, path)!r}: teacher {path} encodes at most {limit} tokens, and task "
                          f"{task.id!r} trains on up to {length}; set its max_length to {limit} or less")

