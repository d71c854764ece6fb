"""Checks of a config against the installed plugins, before anything heavy starts.

:func:`plan_run` resolves every task id (with its per-task overrides), head, metric, sampler and
loss strategy through the registry, picks the sampler mode the loss strategy needs, and refuses
combinations that cannot work, each with a one-line :class:`~mtcore.errors.ConfigError` naming
the key. Nothing here loads a model or data.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, MtError, PluginError, did_you_mean
from mtcore.registry import Registry
from mtcore.task import Task, merge_sources
from mtcore.train.config import TaskEntry, TrainConfig
from mtcore.train.encoder_checks import check_encoder_config


@dataclass
class PlannedTask:
    """A task of the run: its config entry, the Task with overrides applied, where its data is."""

    entry: TaskEntry
    task: Task
    source: str
    data_dir: str | None

    @property
    def id(self) -> str:
        return self.task.id


@dataclass
class RunPlan:
    """Everything resolved from the config and the registry."""

    config: TrainConfig
    tasks: list[PlannedTask]
    mode: str
    sampler_cls: Any
    sampler_options: dict[str, Any]
    strategy_cls: Any
    strategy_weights: dict[str, float]
    evaluated: list[Any] = field(default_factory=list)  # scored, not trained (:mod:`mtcore.train.eval_tasks`)
    eval_weights: dict[str, float] = field(default_factory=dict)  # the aggregate's: evaluation.weights, evaluated-only at 0

    @property
    def task_ids(self) -> list[str]:
        return [t.id for t in self.tasks]


#: The sampler a config names when it names none: mtcore's, whatever a plugin or user code registers by that name.
DEFAULT_SAMPLER = "proportional"


def _key_error(key: str, exc: Exception) -> ConfigError:
    return ConfigError(f"config key {key!r}: {exc}")


def _choice_error(key: str, value: str, kind: str, registry: Registry) -> ConfigError:
    names = registry.names(kind)
    return ConfigError(f"config key {key!r}: {value!r} is not one of {', '.join(names)}{did_you_mean(value, names)}")


def _component(registry: Registry, kind: str, name: str, key: str, task: Task | None = None, owner: str | None = None) -> Any:
    """Look up a component; ``task`` given: the name came from that task's definition, not the config; ``owner``: the
    plugin of the task that names it (its own namesake, else mtcore's, wins over another plugin's)."""
    try:
        return registry.component(kind, name, owner)
    except MtError as exc:
        if task is not None:
            names = registry.names(kind)
            if ":" not in name and name in names:  # registered, but by more than one plugin: the ambiguity is the news
                raise ConfigError(f"task {task.id!r} (from plugin {task.plugin!r}) names {kind} {name!r}: "
                                  f"{' '.join(str(exc).split())}; fix the task's definition, or set config key {key!r}") from None
            raise ConfigError(f"task {task.id!r} (from plugin {task.plugin!r}) names {kind} {name!r}, which is not registered"
                              f"{did_you_mean(name, names)}: fix the task's definition, or set config key {key!r}") from None
        if ":" not in name and name not in registry.names(kind):
            raise _choice_error(key, name, kind, registry) from None
        raise _key_error(key, exc) from None


def _metric_misfit(component: Any, task: Task) -> str | None:
    """Why a metric cannot score ``task`` (None: it can): one registered with ``kinds=`` serves those task kinds;
    ``f1_binary`` needs two classes."""
    kinds = component.extra.get("kinds") or []
    if kinds and task.kind.value not in kinds:
        return (f"metric {component.name!r} scores {', '.join(kinds)} tasks, not {task.kind.value} (task {task.id!r}); choose another "
                "metric (mt components metric lists them)")
    if component.id == "mtcore:f1_binary" and len(task.labels) != 2:
        return f"metric 'f1_binary' scores two-class tasks, and task {task.id!r} has {len(task.labels)} classes; use f1_macro or f1_micro"
    return None


def _loadable(component: Any, task: Task) -> None:
    """Import the code a registered head or metric points at now, not when the model is built or
    the first evaluation runs; a broken reference is one line naming the component, task and plugin."""
    try:
        component.load()
    except PluginError as exc:
        raise PluginError(f"{component.kind} {component.id!r} (used by task {task.id!r}) cannot be loaded: {exc}; "
                          f"fix the reference that plugin {component.plugin!r} registers") from None


def _check_preprocess(entry: TaskEntry, task: Task, index: int) -> None:
    """Import the task's ``preprocess`` functions now (the user's or plugin's module), not when the data is
    read: a broken reference is one line naming the config key, or the task and its plugin."""
    from mtcore.refs import describe, reference_problem

    key = f"tasks.{index}.preprocess"
    for ref in task.preprocess:
        problem = reference_problem(ref)
        if problem is None:
            continue
        what = f"preprocess reference {describe(ref)!r} does not resolve: {problem}"
        fix = "write 'package.module:function' naming a function of an importable module"
        if entry.preprocess is not None or entry.define is not None:
            key = key if entry.preprocess is not None else f"tasks.{index}.define.preprocess"
            raise ConfigError(f"config key {key!r}: task {task.id!r}: {what}; {fix}")
        raise ConfigError(f"task {task.id!r} (from plugin {task.plugin!r}): {what}; fix the task's definition in plugin "
                          f"{task.plugin!r}, or set config key {key!r}")


def _check_class(component: Any, loaded: Any, key: str) -> None:
    """A registered sampler or loss strategy must subclass mtcore's base class (a plain class fails
    later with a misleading message: ``rejects its options (Weird() takes no arguments)``)."""
    problem = component.type_problem(loaded, f" (config key {key!r})")
    if problem:
        raise PluginError(problem)


def _resolve_task(entry: TaskEntry, index: int, registry: Registry, base_dir: str | Path | None) -> Task:
    key = f"tasks.{index}"
    if entry.define is not None:
        from mtcore.yaml_tasks import task_from_definition

        try:
            task = task_from_definition(entry.define, base_dir=base_dir, plugin="user")
        except MtError as exc:
            raise _key_error(f"{key}.define", exc) from None
        if entry.id is not None and entry.id not in (task.id, task.name):
            raise ConfigError(f"config key {key!r}: id {entry.id!r} does not match the defined task name {task.name!r}")
    else:
        try:
            task = registry.task(str(entry.id))
        except MtError as exc:
            raise _key_error(f"{key}.id", exc) from None
    try:
        changes = entry.overrides()
        if changes.get("metrics") and "main_metric" not in changes and task.main_metric not in changes["metrics"]:
            changes["main_metric"] = None  # the task's main metric is not among the chosen ones: the first of them is
        if entry.sources:
            changes["sources"] = merge_sources(task.sources, entry.sources, task_name=task.id)
        return task.replace(**changes)
    except MtError as exc:
        raise _key_error(f"{key}.{exc.field}" if getattr(exc, "field", None) else key, exc) from None


def _source(entry: TaskEntry, task: Task, index: int) -> str:
    source = entry.source
    if source is None:
        if (entry.data_dir or entry.define is not None) and "local" in task.sources:
            source = "local"
        else:
            source = next((s for s in ("hub", "sample", "local") if s in task.sources), "sample")
    if source not in task.sources:
        have = ", ".join(task.sources) or "none"
        raise ConfigError(f"config key 'tasks.{index}.source': task {task.id!r} has no {source!r} source (it has: {have})")
    if source == "local" and not entry.data_dir and entry.define is None:
        raise ConfigError(f"config key 'tasks.{index}.data_dir' is required with source 'local' (the folder holding {task.id!r}'s files)")
    return source


def match_task_values(weights: dict[str, Any], ids: list[str], key: str, where: str | None = None, convert: Any = float
                      ) -> dict[str, Any]:
    """``weights`` (keyed by task ids or unambiguous bare names) keyed by the task ids of ``ids``, each value ``convert``-ed;
    an unknown or ambiguous name is a ConfigError naming ``key`` (``loss.weights``), or ``where`` (a Python argument), with
    "did you mean"."""
    from mtcore.sampling.base import suggest_task

    matched: dict[str, Any] = {}
    for name, value in weights.items():
        place = where or f"config key '{key}.{name}'"
        hits = [t for t in ids if t == name or t.split(":", 1)[-1] == name]
        if len(hits) != 1:
            problem = "is ambiguous" if hits else ("is not a task of this run" if where is None else "is not a task of data")
            raise ConfigError(f"{place}: {name!r} {problem}{suggest_task(name, ids)}; tasks: {', '.join(ids)}")
        if hits[0] in matched:
            raise ConfigError(f"{place}: task {hits[0]!r} is named twice in {key} (by its id and by its name?); keep one")
        matched[hits[0]] = convert(value)
    return matched


def plan_run(config: TrainConfig, registry: Registry | None = None, world_size: int | None = None,
             base_dir: str | Path | None = None) -> RunPlan:
    """Resolve and check everything named in ``config``; raise one-line ConfigErrors.

    ``base_dir`` is where relative file paths of inline task definitions (``define:``) start
    (the config file's folder).
    """
    if registry is None:
        from mtcore.plugins import load_registry

        registry = load_registry()
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    from mtcore.train.eval_tasks import check_split_keys, is_evaluated_only, plan_evaluated

    planned: list[PlannedTask] = []
    only_scored: list[tuple[int, PlannedTask]] = []  # evaluate_with, diagnostic sets: bound to a trained head below
    for i, entry in enumerate(config.tasks):
        task = _resolve_task(entry, i, registry, base_dir)
        if any(p.id == task.id for p in [*planned, *(p for _, p in only_scored)]):
            raise ConfigError(f"config key 'tasks.{i}.id': task {task.id!r} is listed twice")
        defined = f"tasks.{i}.define" if entry.define is not None else None  # names written in the config itself
        blame = None if defined else task
        if is_evaluated_only(entry, task):
            _check_metrics(registry, entry, task, defined, blame, i)
            _check_preprocess(entry, task, i)
            source = _source(entry, task, i)
            only_scored.append((i, PlannedTask(entry, task, source, _data_dir(entry, source, base_dir))))
            continue
        head = _component(registry, "head", task.head_ref, f"{defined}.head" if defined and not entry.head else f"tasks.{i}.head",
                          None if entry.head else blame, owner=task.plugin)
        kinds = head.extra.get("kinds") or []
        if kinds and task.kind.value not in kinds:
            serves = f"serves {', '.join(kinds)}, not {task.kind.value}"
            if blame is not None and not entry.head:  # the plugin's definition chose it, not the config
                raise ConfigError(f"task {task.id!r} (from plugin {task.plugin!r}) names head {task.head_name!r}, which {serves}: fix "
                                  f"the task's definition, or set config key 'tasks.{i}.head' to a head for {task.kind.value} "
                                  "(mt components head lists them)")
            key = f"{defined}.head" if defined and not entry.head else f"tasks.{i}.head"
            raise ConfigError(f"config key {key!r}: head {task.head_name!r} {serves} (task {task.id!r})")
        _loadable(head, task)
        _check_metrics(registry, entry, task, defined, blame, i)
        _check_preprocess(entry, task, i)
        source = _source(entry, task, i)
        planned.append(PlannedTask(entry, task, source, _data_dir(entry, source, base_dir)))
    check_split_keys([(i, entry) for i, entry in enumerate(config.tasks) if not any(i == j for j, _ in only_scored)])
    evaluated = plan_evaluated(only_scored, planned)
    ids = [p.id for p in planned]
    if config.batching.max_tokens is not None:
        ignored = [p.id for p in planned if p.entry.batch_size]
        if ignored:
            warnings.warn(f"batching.max_tokens is set, so the batch_size of {', '.join(ignored)} is not used "
                          "(batches are filled up to the token budget; batching.max_rows caps their rows)", UserWarning, stacklevel=2)
    elif config.batching.max_rows is not None:
        raise ConfigError("config key 'batching.max_rows' caps the rows of token-budget batches: set batching.max_tokens too, "
                          "or remove it and use batching.batch_size")

    strategy = _component(registry, "loss", config.loss.strategy, "loss.strategy")
    strategy_cls = strategy.load()
    _check_class(strategy, strategy_cls, "loss.strategy")
    batches = getattr(strategy_cls, "batches", "single")
    mode = config.sampler.mode
    if mode == "auto":
        mode = batches
    elif mode != batches:
        need = "one batch of every task per step (sampler.mode 'all')" if batches == "all" else "one task per step (sampler.mode 'single')"
        raise ConfigError(f"config key 'sampler.mode': loss strategy {config.loss.strategy!r} needs {need}, but sampler.mode is {mode!r}; set it to 'auto'")
    gas = config.optimizer.gradient_accumulation_steps
    if gas > 1 and not getattr(strategy_cls, "supports_accumulation", True):
        raise ConfigError(f"config key 'optimizer.gradient_accumulation_steps': loss strategy {config.loss.strategy!r} cannot accumulate "
                          f"gradients over {gas} micro-steps (its supports_accumulation is false); set it to 1 or use a larger batch")
    if world_size > 1 and not getattr(strategy_cls, "supports_distributed", True):
        from mtcore.train.losses import distributed_alternatives

        raise ConfigError(f"config key 'loss.strategy': {config.loss.strategy!r} does "
                          f"not run under DDP ({world_size} processes); use {distributed_alternatives(registry, strategy_cls)}, or train on one process")
    default_weights = {p.id: p.entry.weight for p in planned}
    strategy_weights = {**default_weights, **match_task_values(config.loss.weights, ids, "loss.weights")}
    if config.loss.weights and getattr(strategy_cls, "uses_weights", None) is False:
        raise ConfigError(f"config key 'loss.weights': loss strategy {config.loss.strategy!r} does not weight the task losses, so "
                          "these weights would be ignored; set loss.strategy: weighted, or remove loss.weights")
    try:
        strategy_cls(ids, weights=strategy_weights, **config.loss.options)
    except TypeError as exc:
        raise ConfigError(f"config key 'loss.options': loss strategy {config.loss.strategy!r} rejects its options ({exc})") from None
    except ConfigError as exc:  # a strategy's own check of an option's value: name the config key it came from
        if str(exc).startswith(("config key", "loss.weights")):
            raise
        raise ConfigError(f"config key 'loss.options': {exc}") from None

    default = config.sampler.name == DEFAULT_SAMPLER  # mtcore's default, by its qualified id: a namesake changes nothing
    sampler = _component(registry, "sampler", f"mtcore:{DEFAULT_SAMPLER}" if default else config.sampler.name, "sampler.name")
    sampler_cls = sampler.load()
    _check_class(sampler, sampler_cls, "sampler.name")
    sampler_options = dict(config.sampler.options)
    defaults = getattr(sampler_cls, "defaults", {})
    if "weights" in defaults and "weights" not in sampler_options:
        sampler_options["weights"] = default_weights
    weighted = [p.id for p in planned if p.entry.weight != 1.0]
    if mode == "all" and (config.sampler.name != "proportional" or config.sampler.options):
        warnings.warn(f"sampler {config.sampler.name!r} is not used: loss strategy {config.loss.strategy!r} trains on a batch of every "
                      "task at each step (sampler mode 'all'), so no task is drawn; remove the sampler settings, or use "
                      "loss.strategy: single", UserWarning, stacklevel=2)
    if weighted and getattr(strategy_cls, "uses_weights", None) is False and ("weights" not in defaults or mode == "all"):
        warnings.warn(f"the weight of {', '.join(weighted)} is used by neither loss strategy {config.loss.strategy!r} nor sampler "
                      f"{config.sampler.name!r}; use loss.strategy: weighted or sampler.name: fixed, or remove it", UserWarning, stacklevel=2)
    try:
        probe = sampler_cls({t: 1 for t in ids}, seed=config.seed, **{k: v for k, v in sampler_options.items() if k != "num_epochs"})
    except MtError as exc:
        unknown_option = "unknown option" in str(exc) and "did you mean" not in str(exc)
        hint = "; options of another sampler? sampler.options={} clears them" if unknown_option else ""
        raise ConfigError(f"config key 'sampler.options': {exc}{hint}") from None
    if mode == "single":
        probe.draws(0, 1)  # a plugin sampler's probabilities() that return no weights: one line naming it, before any data is read

    match_task_values(config.evaluation.weights, [*ids, *(e.id for e in evaluated)], "evaluation.weights")
    match_task_values(config.optimizer.head_lrs, ids, "optimizer.head_lrs")
    if config.evaluation.early_stopping_patience is not None and config.evaluation.every is None:
        raise ConfigError("config key 'evaluation.early_stopping_patience' needs 'evaluation.every' (evaluate every N steps)")
    _warn_if_selecting_on_test(config)
    from mtcore.train.checkpoint import check_best_to_model
    from mtcore.train.eval_tasks import aggregate_weights, check_some_weight

    check_best_to_model(config)
    for i, tracker in enumerate(config.logging.trackers):
        module = {"tensorboard": "tensorboard", "wandb": "wandb"}[tracker]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"config key 'logging.trackers.{i}': {tracker!r} is not installed (pip install \"mtcore[{tracker}]\"); remove it or install it")
    check_encoder_config(config)
    lora = config.encoder.options.get("lora")
    unshared = "encoder.freeze_encoder: true" if config.encoder.freeze_encoder else \
        "per-task LoRA adapters (encoder.options.lora.per_task)" if isinstance(lora, dict) and lora.get("per_task") is True else None
    if unshared and getattr(strategy_cls, "owns_backward", False):
        raise ConfigError(f"config key 'loss.strategy': {config.loss.strategy!r} combines the tasks' gradients on the shared encoder, "
                          f"and {unshared} leave nothing shared to combine (it would train as 'sum' does); use loss.strategy: sum "
                          "(or weighted, uncertainty), or share the encoder")
    scored = [e.task for e in evaluated]
    trained = [p.task for p in planned]
    check_some_weight(weights := aggregate_weights(config.evaluation.weights, scored, trained), trained, scored)
    return RunPlan(config, planned, mode, sampler_cls, sampler_options, strategy_cls, strategy_weights, evaluated, weights)


def _check_metrics(registry: Registry, entry: TaskEntry, task: Task, defined: str | None, blame: Task | None, i: int) -> None:
    for metric in task.all_metrics:
        key = f"{defined}.metrics" if defined and entry.metrics is None else f"tasks.{i}.metrics"
        from_plugin = blame if entry.metrics is None else None  # the plugin's definition chose it, not the config
        component = _component(registry, "metric", metric, key, from_plugin, owner=task.metric_owner)
        misfit = _metric_misfit(component, task)
        if misfit is not None and from_plugin is not None:
            raise ConfigError(f"{misfit}: it comes from plugin {task.plugin!r}'s definition of the task; fix that, or set config "
                              f"key {key!r}")
        if misfit is not None:
            raise ConfigError(f"config key {key!r}: {misfit}")
        _loadable(component, task)


def _data_dir(entry: TaskEntry, source: str, base_dir: str | Path | None) -> str | None:
    if entry.data_dir is None and source == "local" and entry.define is not None:
        return str(Path(base_dir) if base_dir is not None else Path.cwd())  # inline files resolve from the config's folder
    return entry.data_dir


def _warn_if_selecting_on_test(config: TrainConfig) -> None:
    """Evaluating on the test split while training is fine; choosing the model by it is not (its scores stop being held out)."""
    evaluation, checkpoint = config.evaluation, config.checkpoint
    if evaluation.split != "test" or evaluation.every is None:
        return
    chosen = [what for what, on in (("early stopping (evaluation.early_stopping_patience)", evaluation.early_stopping_patience is not None),
                                    ("the best checkpoint (checkpoint.keep_best)", checkpoint.keep_best),
                                    ("model/ (checkpoint.best_to_model)", checkpoint.best_to_model)) if on]
    if chosen:
        warnings.warn(f"evaluation.split is 'test', so {' and '.join(chosen)} {'select' if len(chosen) > 1 else 'selects'} on the test split, whose scores are then no "
                      "longer held out; evaluate on validation (evaluation.split=validation) and score test afterwards with "
                      "mt evaluate RUN --split test", UserWarning, stacklevel=2)
