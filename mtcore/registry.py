"""What the plugins registered: tasks and named components (heads, samplers, losses, ...).

Names resolve the same way for every kind of thing: the qualified ``plugin:name`` always works;
a bare ``name`` works when exactly one plugin provides it, otherwise the error lists every
provider. Unknown names get "did you mean". Nothing is ever silently overridden.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mtcore.errors import ConfigError, UnknownNameError, UsageError, did_you_mean
from mtcore.refs import BadReference, describe, near_attribute, resolve
from mtcore.task import Task

#: Component kinds and the hook that registers each.
COMPONENT_KINDS = {
    "head": "mt_register_heads",
    "sampler": "mt_register_samplers",
    "loss": "mt_register_loss_strategies",
    "metric": "mt_register_metrics",
    "writer": "mt_register_writers",
}


#: What each kind of class-valued component must subclass (``"module:Class"``, imported only to check).
BASE_CLASSES = {
    "head": "mtcore.model.heads.base:Head",
    "sampler": "mtcore.sampling.base:Sampler",
    "loss": "mtcore.train.losses:LossStrategy",
}
KIND_WORDS = {"head": "head", "sampler": "sampler", "loss": "loss strategy", "metric": "metric", "writer": "writer"}


@dataclass
class Component:
    """A registered head, sampler, loss strategy, metric or writer (loaded on demand)."""

    kind: str
    name: str
    ref: Any
    plugin: str
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.plugin}:{self.name}"

    def load(self) -> Any:
        """The object the reference names; a sampler class is given its registered name (``Sampler.name``,
        used in its error messages), so a plugin author need not repeat it in the class."""
        try:
            obj = resolve(self.ref)
        except BadReference as exc:
            hint = near_attribute(self.ref)
            if not hint:
                raise
            raise BadReference(f"{exc.reason}{hint} (from reference {self.ref!r})", f"{exc.reason}{hint}") from None
        if self.kind == "sampler" and isinstance(obj, type):
            obj = _named_class(obj, self.name)
        return obj

    def type_problem(self, loaded: Any, where: str = "") -> str | None:
        """Why ``loaded`` (what :meth:`load` returned) cannot serve as this head, sampler or loss
        strategy: it is not a subclass of the kind's base class (:data:`BASE_CLASSES`); ``None`` if
        it is. ``where`` (``" (config key 'loss.strategy')"``) follows the component's id."""
        base_ref = BASE_CLASSES.get(self.kind)
        if base_ref is None:
            return None
        base = resolve(base_ref)
        if isinstance(loaded, type) and issubclass(loaded, base):
            return None
        what = "a class that is not" if isinstance(loaded, type) else f"a {type(loaded).__name__}, not"
        dotted = base_ref.replace(":", ".")
        return (f"{KIND_WORDS[self.kind]} {self.id!r}{where} is registered by plugin {self.plugin!r} as {describe(self.ref)!r}, "
                f"{what} a {dotted} subclass; the plugin must register a subclass of {base.__name__} (or a 'module:Class' naming one)")

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "plugin": self.plugin, "ref": describe(self.ref), "description": self.description, **self.extra}


@dataclass
class PluginInfo:
    """One entry point in the ``mtcore`` group and how loading it went."""

    name: str
    distribution: str
    version: str
    builtin: bool = False
    status: str = "ok"
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    tasks: int = 0
    components: int = 0
    traceback: str = ""  # of a failure (shown by the CLI with MT_DEBUG=1)
    heavy: list[str] = field(default_factory=list)  # heavy libraries importing it pulled in (torch, ...)

    def heavy_line(self) -> str:
        return (f"plugin {self.name!r} ({self.distribution}) imports {', '.join(self.heavy)} when it is loaded, which slows every "
                "mt command (mt list-tasks too); import it inside the functions that use it, or name classes as 'module:Class'")

    def failure_line(self) -> str:
        return f"plugin {self.name!r} ({self.distribution} {self.version}) failed to load: {self.error}"

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
            "tasks": self.tasks,
            "components": self.components,
            "heavy_imports": self.heavy,
        }


def _resolve_name(what: str, name: str, items: dict[str, Any]) -> Any:
    """Find ``name`` (qualified or bare) among ``items`` keyed by qualified id."""
    if name in items:
        return items[name]
    if ":" not in name:
        matches = [key for key in items if key.split(":", 1)[1] == name]
        if len(matches) == 1:
            return items[matches[0]]
        if len(matches) > 1:
            raise UsageError(f"{what} name {name!r} is ambiguous: provided by {', '.join(sorted(matches))}; use the qualified id")
    bare = sorted({key.split(":", 1)[1] for key in items})
    hint = did_you_mean(name, sorted(items) if ":" in name else bare)
    listing = "run 'mt list-tasks' to see them" if what == "task" else "available: " + ", ".join(bare)
    raise UnknownNameError(f"unknown {what} {name!r}{hint}; {listing}")


class Registry:
    """All registered tasks and components, plus the status of every plugin."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in COMPONENT_KINDS}
        self.plugins: list[PluginInfo] = []
        self.warnings: list[str] = []  # about loading as a whole (MT_LOAD_PLUGINS naming no plugin)
        self.excluded: list[str] = []  # installed plugins MT_LOAD_PLUGINS leaves out
        self.excluded_distributions: dict[str, str] = {}  # their distribution names -> plugin names

    # ---- adding ---------------------------------------------------------------------------
    def add_task(self, task: Task, plugin: str) -> Task:
        """Register ``task`` under ``plugin`` (its id becomes ``plugin:name``); duplicates raise."""
        if not isinstance(task, Task):
            raise TypeError(f"register() expects a mtcore.task.Task, got {type(task).__name__}; build it with "
                            "Task(name=..., kind=..., ...) from mtcore.task")
        task = task.replace(plugin=plugin) if task.plugin != plugin else task
        if task.id in self.tasks:
            raise ConfigError(f"task {task.id!r} is registered twice; register each task once, or give the other one another name")
        self.tasks[task.id] = task
        return task

    def add_component(self, kind: str, /, name: str, ref: Any, plugin: str, description: str = "", **extra: Any) -> Component:
        """Register a named component of ``kind`` (head, sampler, loss, metric, writer)."""
        if kind not in COMPONENT_KINDS:
            raise UnknownNameError(f"unknown component kind {kind!r}{did_you_mean(str(kind), list(COMPONENT_KINDS))}; "
                                   f"the kinds are: {', '.join(COMPONENT_KINDS)}")
        if not isinstance(name, str) or not name or ":" in name:
            raise UsageError(f"{kind} name {name!r} must be a non-empty string without ':' (a plugin's components get the id "
                             "plugin:name by themselves)")
        check_component_fields(kind, name, description, extra)
        if kind in ("head", "metric") and "kinds" in extra:
            _check_kinds(kind, name, extra["kinds"])
        component = Component(kind, name, ref, plugin, description, {k: list(v) if isinstance(v, tuple) else v for k, v in extra.items()})
        table = self.components[kind]
        if component.id in table:
            raise ConfigError(f"{kind} {component.id!r} is registered twice; register each {kind} once, or give the other one another name")
        table[component.id] = component
        return component

    # ---- finding --------------------------------------------------------------------------
    def task(self, name: str) -> Task:
        """The task with qualified id or unambiguous bare name ``name``."""
        try:
            return _resolve_name("task", name, self.tasks)
        except UnknownNameError as exc:
            raise self._excluded_hint("task", name, exc) from None

    def component(self, kind: str, name: str, owner: str | None = None) -> Component:
        """The component of qualified id or bare ``name``; ``owner``: the plugin of the task that names it (:meth:`ref`)."""
        try:
            return _resolve_name(kind, self.ref(kind, name, owner), self.components[kind])
        except UnknownNameError as exc:
            raise self._excluded_hint(kind, name, exc) from None

    def ref(self, kind: str, name: str, owner: str | None = None) -> str:
        """What ``name`` stands for when a task of plugin ``owner`` names it: ``name`` itself, or, where several plugins
        register that bare name, the qualified id of ``owner``'s own, else mtcore's (so a namesake registered elsewhere
        does not make a task's ``accuracy`` ambiguous); without either, ``name`` (ambiguous, said so)."""
        table = self.components[kind]
        if owner is None or ":" in name or sum(key.split(":", 1)[1] == name for key in table) < 2:
            return name
        return next((f"{plugin}:{name}" for plugin in (owner, "mtcore") if f"{plugin}:{name}" in table), name)

    def left_out(self, name: str) -> str | None:
        """The plugin of a qualified ``plugin:name`` when it is installed but MT_LOAD_PLUGINS leaves it out."""
        prefix = name.split(":", 1)[0] if ":" in name else None
        return prefix if prefix in self.excluded else None

    def _excluded_hint(self, kind: str, name: str, exc: UnknownNameError) -> UnknownNameError:
        prefix = name.split(":", 1)[0] if ":" in name else None
        failed = next((info for info in self.failures if prefix in (info.name, info.distribution)), None)
        if failed is not None:  # not "unknown": its plugin is installed but did not load
            return UnknownNameError(f"{kind} {name!r} is not registered because {failed.failure_line()}")
        if not self.excluded:
            return self._missing_plugin_hint(kind, name, prefix, exc)
        plugin = self.left_out(name)
        if plugin is not None:
            return UnknownNameError(f"unknown {kind} {name!r}: plugin {plugin!r} is installed but MT_LOAD_PLUGINS leaves it out; "
                                    "add it there, or unset MT_LOAD_PLUGINS")
        return UnknownNameError(f"{exc} (MT_LOAD_PLUGINS leaves out the installed plugin(s) {', '.join(self.excluded)})")

    def _missing_plugin_hint(self, kind: str, name: str, prefix: str | None, exc: UnknownNameError) -> UnknownNameError:
        """A qualified name whose plugin is not installed says so (``mt list-tasks`` could never list it); a near
        miss keeps its "did you mean"."""
        if prefix is None or "did you mean" in str(exc) or any(prefix in (p.name, p.distribution) for p in self.plugins):
            return exc
        if prefix == "user":
            if kind == "task":
                return UnknownNameError(f"unknown task {name!r}: nothing registered it in this process; register it from Python "
                                        "(mtcore.plugins.register_task(...)) before using it, or define it in the config's tasks "
                                        "(define:)")
            return UnknownNameError(f"unknown {kind} {name!r}: nothing registered it in this process; register it from Python "
                                    "(mtcore.plugins.register_component(...)) before using it")
        installed = ", ".join(sorted(p.name for p in self.plugins if not p.builtin)) or "none"
        return UnknownNameError(f"unknown {kind} {name!r}: no installed plugin is named {prefix!r} (installed plugins: {installed}); "
                                "install the plugin that provides it (mt plugins lists those installed)")

    def names(self, kind: str) -> list[str]:
        """Bare names of the registered components of ``kind`` (for messages and listings)."""
        return sorted({c.name for c in self.components[kind].values()})

    def find_tasks(self, plugin: str | None = None, kind: str | None = None) -> list[Task]:
        tasks = sorted(self.tasks.values(), key=lambda t: t.id)
        if plugin is not None:
            known = {p.name for p in self.plugins} | {p.distribution for p in self.plugins}
            if plugin not in known:
                left_out = plugin if plugin in self.excluded else self.excluded_distributions.get(plugin)
                if left_out is not None:
                    dist = f" (distribution {plugin})" if left_out != plugin else ""
                    raise UnknownNameError(f"plugin {left_out!r}{dist} is installed but MT_LOAD_PLUGINS leaves it out; add it there, "
                                           "or unset MT_LOAD_PLUGINS")
                hint = did_you_mean(plugin, sorted(known | set(self.excluded)))
                raise UnknownNameError(f"unknown plugin {plugin!r}{hint}; run 'mt plugins' to see them")
            names = {p.name for p in self.plugins if plugin in (p.name, p.distribution)}
            tasks = [t for t in tasks if t.plugin in names]
        if kind is not None:
            from mtcore.task import TaskKind

            kinds = [k.value for k in TaskKind]
            if kind not in kinds:
                raise UnknownNameError(f"unknown task kind {kind!r}{did_you_mean(kind, kinds)}; choose one of: {', '.join(kinds)}")
            tasks = [t for t in tasks if t.kind.value == kind]
        return tasks

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status != "ok"]

    def merge_plugin(self, info: PluginInfo, tasks: Iterable[Task], components: Iterable[tuple[str, tuple, dict]]) -> None:
        """Add everything one plugin registered, all or nothing (raises ValueError on conflict)."""
        added_tasks: list[str] = []
        added_components: list[tuple[str, str]] = []
        try:
            for task in tasks:
                added_tasks.append(self.add_task(task, info.name).id)
            for kind, args, kwargs in components:
                added_components.append((kind, self.add_component(kind, *args, plugin=info.name, **kwargs).id))
        except Exception:
            for task_id in added_tasks:
                self.tasks.pop(task_id, None)
            for kind, comp_id in added_components:
                self.components[kind].pop(comp_id, None)
            raise
        info.tasks = len(added_tasks)
        info.components = len(added_components)


#: The keywords ``register(name, factory, description, ...)`` takes beyond those, per component kind.
EXTRA_KEYWORDS: dict[str, tuple[str, ...]] = {"head": ("kinds",), "metric": ("kinds", "lower_is_better"), "writer": ("needs_ids",), "sampler": (), "loss": ()}


def check_component_fields(kind: str, name: Any, description: Any, extra: dict[str, Any]) -> None:
    """Refuse, at the ``register(...)`` call, a description that is no string and a keyword the kind does not take
    (a misspelled ``knids=`` would otherwise be kept as data and silently turn the kind check off)."""
    word = KIND_WORDS.get(kind, kind)
    if not isinstance(description, str):
        raise UsageError(f"{word} {name!r}: description must be a string, got {type(description).__name__} {description!r}"
                         + (" (pass kinds=... by keyword, after the description)" if isinstance(description, (tuple, list)) else ""))
    allowed = EXTRA_KEYWORDS.get(kind, ())
    for key in extra:
        if key in allowed:
            continue
        hint = did_you_mean(key, allowed, n=1)
        takes = f"it takes name, factory, description and {', '.join(allowed)}" if allowed else "it takes name, factory and description only"
        raise UsageError(f"{word} {name!r}: register() got the unknown keyword {key!r}{hint}; {takes}")
    if not isinstance(extra.get("lower_is_better", False), bool):
        raise UsageError(f"{word} {name!r}: lower_is_better must be True or False, got {extra['lower_is_better']!r}")


def _check_kinds(component: str, name: str, kinds: Any) -> None:
    """A head's or metric's ``kinds=`` is a tuple of task kinds (a misspelling fails the plugin at load, with did-you-mean)."""
    from mtcore.task import TaskKind

    known = [k.value for k in TaskKind]
    if isinstance(kinds, str) or not isinstance(kinds, (list, tuple)):
        raise UsageError(f"{component} {name!r}: kinds must be a tuple of task kinds, e.g. kinds=({known[0]!r},), got {kinds!r}")
    for kind in kinds:
        if kind not in known:
            raise UsageError(f"{component} {name!r}: unknown task kind {kind!r} in kinds{did_you_mean(str(kind), known, n=1)}; "
                             f"choose from {', '.join(known)}")


_NAMED: dict[tuple[type, str], type] = {}


def _named_class(cls: type, name: str) -> type:
    """``cls`` with the class attribute ``name`` equal to ``name``: set on ``cls`` itself when it does
    not set one of its own, otherwise (another name, or the class registered twice) a subclass."""
    own = vars(cls).get("name")
    if own == name:
        return cls
    if own is None:
        cls.name = name  # type: ignore[attr-defined]
        return cls
    if (cls, name) not in _NAMED:
        _NAMED[(cls, name)] = type(cls.__name__, (cls,), {"name": name, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                                           "__doc__": cls.__doc__})
    return _NAMED[(cls, name)]
