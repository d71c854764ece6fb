"""``evaluate_path``: score a run or a saved model on a split, with the engine's own evaluation.

The data of each task is loaded exactly as the training run loaded it (same source, folder,
``max_length``, padding) and scored by :func:`mtcore.train.evaluation.evaluate` — the function
the engine calls — with the run's evaluation batch size and precision, so a run directory's
final model scores the numbers its ``summary.json`` recorded. Metrics are keyed
``<task id>/<metric>``; the aggregate is the (weighted) mean of each task's main metric.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, did_you_mean
from mtcore.predict.locate import ModelLocation, load_model, locate, run_config
from mtcore.task import Task

DEFAULT_EVAL_BATCH_SIZE = 32
INPUT_FORMATS = ("jsonl", "csv", "tsv", "json", "parquet", "conll")


@dataclass
class TaskSetup:
    """One task to evaluate: its Task, the head that predicts it, and where its data is."""

    task: Task
    head: str
    source: str
    data_dir: str | None = None
    holdout: float | None = None  # the run's task entry's: validation carved from train the same way
    split: str | None = None  # an evaluate-only task entry's own split (mtcore.train.eval_tasks)
    scored_only: bool = False  # a task the run scored with another task's head, not trained
    files_dir: str | None = None  # a task defined in the run's config: the folder its files are in (what reports show)
    inline: bool = False  # a task defined in the run's config (no data_dir of its own): reports show files_dir


def _files_folder(files: Any) -> str | None:
    """The folder of an inline task's first file (its paths are absolute in a run's config.yaml); None when unknown."""
    first = files if isinstance(files, str) else next(iter(files.values()), None) if isinstance(files, dict) else (files or [None])[0]
    first = first[0] if isinstance(first, list) and first else first
    return str(Path(first).parent) if isinstance(first, str) and Path(first).is_absolute() else None


@dataclass
class EvaluationReport:
    """Metrics of every evaluated task on one split, and the aggregate score."""

    split: str
    metrics: dict[str, float]
    aggregate: float | None
    tasks: dict[str, dict[str, Any]]
    model_dir: str
    run_dir: str | None = None
    notes: list[str] = field(default_factory=list)
    input: str | None = None  # the labelled file scored instead of a split (--input)

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "aggregate": self.aggregate, "metrics": self.metrics, "tasks": self.tasks,
                "model_dir": self.model_dir, "run_dir": self.run_dir, "notes": self.notes, "input": self.input}


class SingleProcess:
    """The part of an ``accelerate.Accelerator`` that evaluation uses, for one process on one device."""

    process_index = 0
    num_processes = 1

    def __init__(self, device: Any, precision: str = "no") -> None:
        self.device = device
        self.precision = precision

    def autocast(self) -> Any:
        import torch

        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            return torch.autocast(device_type=self.device.type, dtype=dtype)
        return contextlib.nullcontext()


def _split_names(names: Sequence[str] | None) -> list[str] | None:
    if not names:
        return None
    out = [part.strip() for name in names for part in str(name).split(",") if part.strip()]
    return out or None


def task_setups(model: Any, location: ModelLocation, config: Any, names: Sequence[str] | None, *, source: str | None = None,
                data_dir: str | None = None, head: str | None = None, need_data: bool = True) -> list[TaskSetup]:
    """Which tasks to evaluate and where their data is (the run's config first, then the plugins);
    ``head``: every task is predicted with that head (see :func:`~mtcore.predict.tasks.prediction_task`)."""
    from mtcore.predict.tasks import check_compatible, files_by_name, none_readable, prediction_task, with_sources

    from mtcore.predict.locate import refuse_left_out, run_plan
    from mtcore.predict.tasks import PluginLeftOut

    refuse_left_out(config, _split_names(names))  # before run_plan's warning: one line, exit 2
    plan = run_plan(config)
    planned: list[Any] = plan.tasks if plan is not None else []
    evaluated: list[Any] = plan.evaluated if plan is not None else []  # scored with another task's head (evaluate_with)
    run_tasks = [p.id for p in planned if p.id in model.tasks] + [e.id for e in evaluated if e.head in model.tasks]
    wanted = _split_names(names) or (run_tasks if planned else list(model.tasks))
    setups: list[TaskSetup] = []
    unread: list[tuple[str, ConfigError]] = []  # tasks of the model whose data no installed plugin knows
    for name in wanted:
        matches = [p for p in [*planned, *evaluated] if name in (p.id, p.task.name)]
        if len(matches) == 1:
            p = matches[0]
            scored_only = p in evaluated
            head_id = model.resolve_task((p.head if scored_only else p.id) if head is None else head)
            check_compatible(p.task, head_id, model.tasks[head_id])  # its own head too: a plugin may have reordered its labels
            chosen = source or ("local" if data_dir is not None else p.source)  # --data-dir means your files
            folder = data_dir if data_dir is not None else (p.data_dir if chosen == p.source else None)
            inline = data_dir is None and p.entry.define is not None and p.entry.data_dir is None  # its data_dir: where it was started
            shown = _files_folder(p.entry.define.get("files")) if inline else None
            task = files_by_name(p.task) if data_dir is not None and p.entry.define is not None else p.task
            setups.append(TaskSetup(task, head_id, chosen, folder, p.entry.holdout, p.split if scored_only else None, scored_only,
                                    files_dir=shown, inline=inline))
            continue
        head_id, task = prediction_task(model, name, head)
        if need_data:  # --input brings the rows: the saved task alone reads them
            try:
                task = with_sources(task, task.id)
            except ConfigError as exc:
                if names or isinstance(exc, PluginLeftOut):  # a left-out plugin's task is refused, not skipped
                    raise
                unread.append((task.id, exc))  # every task of the model: score the others
                continue
        serving = next((p for p in planned if p.id == head_id), None)  # rsg:lidirus, predicted by the run's rsg:terra head
        served = serving is not None and (task.metadata or {}).get("predict_with") in (serving.id, serving.task.name)
        if source is None and data_dir is None and served and serving.source in task.sources:
            setups.append(TaskSetup(task, head_id, serving.source, serving.data_dir))  # the run's files, not the plugin's sample
            continue
        setups.append(TaskSetup(task, head_id, source or ("local" if data_dir else "sample"), data_dir))
    if unread and not setups:
        raise ConfigError(none_readable([task_id for task_id, _ in unread], in_run=location.run_dir is not None))
    for _, exc in unread:
        warnings.warn(f"{exc}; left out", UserWarning, stacklevel=2)
    ids = [s.task.id for s in setups]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise ConfigError(f"task {duplicate!r} is listed twice in --tasks")
    return setups


def scored_tasks(location: ModelLocation) -> dict[str, Any]:
    """The evaluate-only tasks of the run at ``location`` (``evaluate_with``; keyed by id and bare name), as the run
    planned them (:class:`~mtcore.train.eval_tasks.EvaluatedTask`: the task with the entry's settings, e.g. its
    ``max_length``, and ``head``, the trained task whose head scored it); empty for a model folder outside a run."""
    from mtcore.predict.locate import run_plan

    config = run_config(location)
    plan = run_plan(config) if config is not None and any(e.evaluate_with for e in config.tasks) else None
    return {name: e for e in (plan.evaluated if plan is not None else []) for name in (e.task.name, e.id)}


def scored_heads(location: ModelLocation) -> dict[str, str]:
    """:func:`scored_tasks`' heads: each evaluate-only task (id and bare name) and the trained task whose head scored it."""
    return {name: e.head for name, e in scored_tasks(location).items()}


def _scoring_file(setups: list[TaskSetup], path: Path, input_format: str, split: str, named: bool = False) -> TaskSetup:
    """The one task of ``setups`` reading ``path`` as its ``split`` (``mt evaluate --input``)."""
    import glob

    from mtcore.data.readers import format_of
    from mtcore.errors import DataError, UsageError
    from mtcore.predict.inputs import row_expand_of
    from mtcore.predict.inputs import reader_options_of
    from mtcore.task import Source
    from mtcore.yaml_tasks import GENERIC_LOCAL_LOADER

    if len(setups) != 1:
        names = ", ".join(s.task.id for s in setups)
        if named:  # --tasks named several
            raise UsageError(f"--input scores one task's file, and --tasks names {len(setups)} ({names}): name one")
        raise UsageError(f"--input scores one task's file, and this model has several ({names}): name it with --tasks")
    if not path.is_file():
        from mtcore.errors import did_you_mean_path

        raise DataError(f"--input {path}: no such file{did_you_mean_path(path, folders=False)}" if not path.exists() else
                        f"--input {path}: not a file")
    if input_format not in ("auto", *INPUT_FORMATS):
        from mtcore.errors import unknown

        raise unknown("input format", input_format, ["auto", *INPUT_FORMATS])
    fmt = format_of(path) if input_format == "auto" else input_format
    if fmt is None:
        raise UsageError(f"--input {path}: cannot tell its format from the name; pass --input-format jsonl, csv, tsv, json, parquet or conll")
    setup = setups[0]
    options: dict[str, Any] = {"format": fmt, "files": {split: glob.escape(path.name)}}  # that file: val[1].jsonl is no pattern
    options.update(reader_options_of(setup.task, fmt))  # read as the task's files of that format are (sep, header), as predict does
    if fmt == "conll":  # without the task's columns, words and tags into the task's fields
        from mtcore.data.conll import width

        if "columns" not in options:
            fields, count = setup.task.input_map, width(path, **options)
            options["columns"] = [fields.get("tokens", "tokens"), *[None] * (count - 2), fields.get("label", "label")][:max(count, 1)]
    if row_expand_of(setup.task) is not None:
        options["row_expand"] = row_expand_of(setup.task)
    task = setup.task.replace(sources={"local": Source("local", GENERIC_LOCAL_LOADER, options, f"--input {path}")})
    return dataclasses.replace(setup, task=task, source="local", data_dir=str(path.absolute().parent), holdout=None, split=None,
                               scored_only=False)


def evaluate_model(model: Any, data: Any, *, split: str = "validation", batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
                   weights: dict[str, float] | None = None, heads: dict[str, str] | None = None) -> dict[str, Any]:
    """Score an in-memory :class:`~mtcore.model.MultitaskModel` on ``split`` of ``data`` (``{task id: TaskData}``,
    :func:`~mtcore.data.load_task_data`) with the engine's evaluation, on the model's device: for your own loop.
    ``heads`` scores a task with another task's head (``{"nli:xnli-ru": "nli:nli"}``); ``weights`` weigh the aggregate.
    Returns ``{"metrics": {"<task>/<metric>": value}, "aggregate": mean of the main metrics (None when nothing scored)}``;
    the model is left in the mode it was in."""
    from mtcore.plugins import get_component
    from mtcore.predict.tasks import check_compatible, checked_heads, checked_weights
    from mtcore.train.eval_tasks import HeadAliases
    from mtcore.train.evaluation import evaluate
    from mtcore.train.metrics import aggregate

    if batch_size < 1:
        raise ConfigError(f"batch_size {batch_size} must be at least 1")
    if data and not any(split in task_data.splits for task_data in data.values()):  # a typo, not a task without that split
        loaded = sorted({name for task_data in data.values() for name in task_data.splits})
        raise ConfigError(f"no task has a loaded split {split!r}{did_you_mean(split, loaded, n=1)}; the loaded splits are: "
                          f"{', '.join(loaded) or 'none'}")
    tasks = {task_id: task_data.task for task_id, task_data in data.items()}
    aliased = checked_heads(model, tasks, heads) if heads else {}
    for task_id, task in tasks.items():  # a task scored by its own head: the labels it trained with, in their order
        if task_id not in aliased and task_id in model.tasks:
            check_compatible(task, task_id, model.tasks[task_id])
    scored = HeadAliases(model, aliased) if heads else model
    weights = checked_weights(weights, list(tasks)) if weights is not None else None
    metrics = evaluate(scored, data, tasks, SingleProcess(model.device), split=split, batch_size=batch_size,
                       metric_fn=lambda name: get_component("metric", name))
    score = aggregate(metrics, tasks.values(), weights)
    return {"metrics": metrics, "aggregate": None if score != score else score}


def _precision(requested: str | None, config: Any, device: Any) -> str:
    """Accelerate's precision name: the run's (as it trained) unless asked; fp32 for model directories.
    A run trained in fp16 is evaluated in fp32 where there is no GPU (fp16 needs one; scoring needs no
    grad scaler): only an explicit ``--precision fp16`` is refused there."""
    from mtcore.train.precision import resolve_precision

    asked = requested is not None
    if requested is None:
        requested = config.precision if config is not None else "fp32"
        if requested == "fp16" and device.type != "cuda":
            requested = "fp32"
    elif requested == "fp16" and device.type != "cuda":  # the option, not the config key the training check names
        from mtcore.errors import UsageError

        raise UsageError(f"--precision fp16 needs a CUDA GPU and the device is {device}; use fp32, bf16 or auto")
    try:
        return resolve_precision(requested, device.type == "cuda", device)
    except ConfigError as exc:  # bf16 on a GPU without it: the option's name, when it chose the precision
        if not asked:
            raise
        from mtcore.errors import UsageError

        raise UsageError(str(exc).replace("config key 'precision'", f"--precision {requested}")) from None


def evaluate_path(path: str | os.PathLike, *, tasks: Sequence[str] | None = None, split: str | None = None, source: str | None = None,
                  data_dir: str | os.PathLike | None = None, batch_size: int | None = None, device: Any = None,
                  precision: str | None = None, null_threshold: float | None = None, head: str | None = None,
                  input: str | os.PathLike | None = None, input_format: str = "auto", trust_remote_code: bool = False,
                  model: Any = None) -> EvaluationReport:
    """Evaluate the model at ``path`` (run or model directory) on ``split``; see the module docstring.

    ``split`` defaults to the split the run evaluated on (its ``evaluation.split``), else ``validation``.

    ``tasks`` picks tasks (ids or bare names; default: every task of the run / model);
    ``source`` and ``data_dir`` override where the data comes from (for a model directory the
    default is each task's shipped ``sample``, or ``local`` when ``data_dir`` is given; a task the run
    never trained, predicted by another task's head, reads that task's source and folder in the run).
    ``null_threshold`` replaces the saved one of extractive-QA tasks with ``no_answer``.
    ``head`` scores every task with that head (zero-shot transfer to a task of the same kind and labels).
    ``input`` scores one task on a labelled file of its raw fields instead (JSON Lines, CSV, TSV, JSON or
    Parquet, ``input_format`` or from the name; flattened by the task's ``row_expand`` as its files are).
    ``model``: score this in-memory model (of the same tasks) on what ``path``'s run scores (``mt average --greedy``).
    """
    from mtcore.data import load_task_data
    from mtcore.data.files import NoFileFound
    from mtcore.data.task_data import MissingSplit
    from mtcore.errors import DataError
    from mtcore.plugins import get_component
    from mtcore.predict.predictor import quiet_datasets
    from mtcore.train.evaluation import evaluate
    from mtcore.train.eval_tasks import HeadAliases, aggregate_weights, load_scored_split
    from mtcore.train.metrics import aggregate

    if input is not None and (source is not None or data_dir is not None or split is not None):
        from mtcore.errors import UsageError

        raise UsageError("--source, --data-dir and --split choose a split's data; with --input, the file is the data "
                         "(scored on its labelled rows)")
    location = locate(path)
    config = run_config(location)
    split_asked = split
    if split is None and input is not None:  # the user's file: scored on its labelled rows, as a split whose rows may lack one
        split = "test"
    elif split is None:
        split = config.evaluation.split if config is not None else "validation"
    model = load_model(location, device, trust_remote_code, check_labels=False) if model is None else model  # task_setups checks
    if model.tokenizer is None:
        from mtcore.errors import ModelFileError

        raise ModelFileError(f"{location.model_dir}: the model was saved without its tokenizer; save it again with tokenizer=...")
    folder = str(Path(data_dir).expanduser()) if data_dir is not None else None
    setups = task_setups(model, location, config, tasks, source=source, data_dir=folder, head=head, need_data=input is None)
    scored_file = str(Path(input).expanduser().absolute()) if input is not None else None
    input_hint = ""
    if input is not None:
        from mtcore.predict.inputs import own_loader_hint

        setups = [_scoring_file(setups, Path(input).expanduser(), input_format, split, named=bool(tasks))]
        input_hint = own_loader_hint(setups[0].task.replace(sources={}), split, input)  # the task's own sources (its plugin's)
    if null_threshold is not None:
        from mtcore.predict.tasks import with_null_threshold

        moved = with_null_threshold([s.task for s in setups], null_threshold)
        setups = [dataclasses.replace(s, task=task) for s, task in zip(setups, moved)]
    if batch_size is None:
        batch_size = (config.batching.eval_batch_size or 2 * config.batching.batch_size) if config is not None else DEFAULT_EVAL_BATCH_SIZE
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size} must be at least 1")
    pad = config.batching.pad_to_multiple_of if config is not None else None
    runner = SingleProcess(model.device, _precision(precision, config, model.device))
    data, by_id, splits = {}, {}, {}
    notes = []
    with quiet_datasets():
        for s in list(setups):
            options = {"source": s.source, "data_dir": s.data_dir, "max_length": s.task.max_length, "encoder_config": model.encoder.config,
                       "pad_to_multiple_of": pad, "holdout": s.holdout}
            try:
                if split_asked is None and (s.scored_only or s.task.evaluate_only):  # as the run scored it: its split, a diagnostic's test
                    splits[s.task.id], data[s.task.id] = load_scored_split(s.task, model.tokenizer, s.split, split, **options)
                else:
                    splits[s.task.id], data[s.task.id] = split, load_task_data(s.task, model.tokenizer, splits=(split,), **options)
            except (MissingSplit, NoFileFound) as exc:
                if tasks or input is not None:  # a task you named: its split must be there
                    raise
                notes.append(f"left out: {exc}")  # every task of the run: score those that have the split
                setups.remove(s)
                continue
            except DataError as exc:  # an official file given as --input: its plugin's loader reads it, not mtcore's
                if not input_hint or "no field" not in str(exc):
                    raise
                raise DataError(f"{str(exc).split('; map it in the task', 1)[0]}{input_hint}") from None  # its inputs are the plugin's
            by_id[s.task.id] = s.task
    if not setups:
        raise DataError(f"no task of {location.run_dir or location.model_dir} has a {split!r} split ({'; '.join(notes)})")
    heads = {s.task.id: s.head for s in setups if s.head != s.task.id}
    from mtcore.data.spans import check_read_counts

    for task_id, head_id in heads.items():  # --head: rows of as many spans as that head pools
        check_read_counts(task_id, data[task_id].splits[splits[task_id]], f"{splits[task_id]} split", f"the head of {head_id!r}",
                          model.tasks.get(head_id, {}).get("head_options"))
    scored = HeadAliases(model, heads) if heads else model
    metrics = evaluate(scored, data, by_id, runner, split=split, batch_size=batch_size,
                       metric_fn=lambda name: get_component("metric", name), splits=splits)
    weights = aggregate_weights(config.evaluation.weights, [s.task for s in setups if s.scored_only],
                                [s.task for s in setups if not s.scored_only]) if config is not None else None
    score = aggregate(metrics, by_id.values(), weights)
    from mtcore.plugins import lower_is_better

    per_task: dict[str, dict[str, Any]] = {}
    for s in setups:
        prefix = f"{s.task.id}/"
        values = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
        per_task[s.task.id] = {"main_metric": s.task.main, "metrics": values, "rows": data[s.task.id].num_examples(splits[s.task.id]),
                               "source": s.source if input is None else "--input", "data_dir": (s.files_dir if s.inline else s.data_dir) if input is None else scored_file,
                               "head": s.head, "split": splits[s.task.id], "lower_is_better": lower_is_better(s.task.main, s.task.metric_owner),
                               "weight": float((weights or {}).get(s.task.id, (weights or {}).get(s.task.name, 1.0)))}
        if not values and input is not None:  # the file given to score holds no label: a mistake, not a note
            from mtcore.errors import DataError

            raise DataError(f"{scored_file}: no row has a label for task {s.task.id!r} (field {s.task.input_map.get('label', 'label')!r}); "
                            "mt evaluate scores labelled rows: name the field with the task's inputs, or use mt predict for rows without labels")
        if not values:
            notes.append(f"task {s.task.id!r}: the {splits[s.task.id]} split has no labelled rows; nothing to score")
    return EvaluationReport(split=split, metrics=metrics, aggregate=None if score != score else score, tasks=per_task,
                            model_dir=str(location.model_dir), run_dir=str(location.run_dir) if location.run_dir else None, notes=notes,
                            input=scored_file)
