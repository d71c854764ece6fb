"""Loading plugins: entry points in the ``mtcore`` group, each one isolated from the others.

* A plugin that fails to import, implements a hook that does not exist (a misspelling), leaves
  a hook undecorated, implements no hook at all, or raises inside a hook is recorded with its
  distribution, version, error and where it happened (file:line; the whole traceback is kept in
  ``PluginInfo.traceback`` and printed by the CLI with ``MT_DEBUG=1``); everything it
  registered is dropped and the other plugins keep working.
* Two distributions using the same plugin name: the first by distribution name loads, the
  other fails naming both.
* ``MT_STRICT_PLUGINS=1`` turns any such failure into an error (exit code 1).
* ``MT_LOAD_PLUGINS=a,b`` loads only those external plugins (entry-point or distribution
  names); set but empty, it loads none. mtcore's built-ins always load.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
import types
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pluggy

from mtcore import hookspecs
from mtcore.errors import PluginError, did_you_mean
from mtcore.registry import COMPONENT_KINDS, PluginInfo, Registry

BUILTIN_DISTRIBUTION = "mtcore"
HOOK_NAMES = ["mt_register_tasks", *COMPONENT_KINDS.values()]

_cache: dict[str | None, Registry] = {}  # by MT_LOAD_PLUGINS
#: What user code registered (register_task / register_component), by ("task" or the kind, name), in order: added to
#: every registry load_registry builds, so a refresh or another MT_LOAD_PLUGINS keeps them.
_user: dict[tuple[str, str], Callable[[Registry], Any]] = {}


class PluginWarning(UserWarning):
    """Emitted (outside the CLI) when a plugin fails to load."""


def strict_mode() -> bool:
    return os.environ.get("MT_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


@functools.lru_cache(maxsize=None)
def _name_of(distribution: Any) -> str:
    """A distribution's name (importlib reads and parses its METADATA file on every ``.name``)."""
    return distribution.name


def _selected(ep: EntryPoint, only: set[str] | None) -> bool:
    dist = _name_of(ep.dist) if ep.dist else ""
    if dist == BUILTIN_DISTRIBUTION or only is None:
        return True
    return ep.name in only or dist in only


#: Libraries a plugin module must not import when loaded (as mtcore.testing.checks.HEAVY_MODULES).
HEAVY_MODULES = ("torch", "transformers", "datasets", "accelerate", "sklearn")


def _heavy_imports(module: Any, before: set[str]) -> list[str]:
    """Heavy libraries that loading ``module`` imported (new in sys.modules) or that it holds as module globals."""
    held = {getattr(v, "__name__", "").split(".")[0] for v in vars(module).values() if isinstance(v, types.ModuleType)}
    return [m for m in HEAVY_MODULES if (m in sys.modules and m not in before) or m in held]


_IMPL_MARK = f"{hookspecs.PROJECT}_impl"  # the attribute pluggy's HookimplMarker("mtcore") sets


def _hook_problems(module: Any) -> list[str]:
    """Hook implementations that match no hook (misspellings), hooks left undecorated, or no hook at all.

    Undecorated functions whose names are not hook names (helpers called ``mt_something``) are
    none of mtcore's business.
    """
    problems, implemented = [], 0
    for attr in dir(module):
        value = getattr(module, attr, None)
        if not callable(value):
            continue
        marked = getattr(value, _IMPL_MARK, None) is not None
        if marked and attr not in HOOK_NAMES:
            problems.append(f"unknown hook {attr!r}{did_you_mean(attr, HOOK_NAMES, n=1)}{_defined_at(value)}")
        elif marked and (unknown := _unknown_arguments(value, attr)):
            problems.append(f"hook {attr!r} takes {', '.join(map(repr, unknown))}: its argument must be named 'register' "
                            f"(def {attr}(register))")
        elif not marked and attr in HOOK_NAMES:
            problems.append(f"{attr!r} is not decorated with @hookimpl (from mtcore.hookspecs import hookimpl), so mtcore would "
                            f"never call it{_defined_at(value)}")
        implemented += marked
    if not problems and not implemented:
        problems.append(f"module {module.__name__!r} implements no mtcore hook: decorate functions named "
                        "mt_register_tasks, mt_register_heads, ... with @hookimpl (from mtcore.hookspecs import hookimpl; see docs/hooks.md)")
    return problems


def _defined_at(function: Any) -> str:
    """``" (at mt_bad/plugin.py:12)"``: where a plugin's function is defined, or ``""``."""
    code = getattr(function, "__code__", None)
    if code is None or code.co_filename.startswith("<"):
        return ""
    return f" (at {'/'.join(Path(code.co_filename).parts[-2:])}:{code.co_firstlineno})"


def _unknown_arguments(function: Any, hook_name: str) -> list[str]:
    """Arguments of a hook implementation that its hookspec does not have (pluggy's error is unreadable)."""
    import inspect

    try:
        given = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return []
    spec = inspect.signature(getattr(hookspecs, hook_name)).parameters
    return [name for name in given if name not in spec]


def _check_entry_point(ep: EntryPoint, loaded: Any) -> None:
    """A plugin is a module (or a namespace object) of hooks, under a name of its own."""
    import inspect

    if inspect.isfunction(loaded) or inspect.ismethod(loaded):
        raise PluginError(f"entry point '{ep.name} = {ep.value}' names the function {loaded.__name__!r}, not the module of "
                          f"hooks: write {ep.name} = \"{ep.module}\" in its pyproject.toml and reinstall")


RESERVED_NAMES = {"user": "the tasks a training config defines (user:<task>)", "mtcore": "mtcore's built-in components"}


def _collect(pm: pluggy.PluginManager, plugin_name: str) -> tuple[list, list]:
    """Call each hook of one plugin, collecting what it registers."""
    tasks: list = []
    components: list = []
    checked = Registry()  # checks each call as it is made, so a mistake's error points at the plugin's line
    plugin = pm.get_plugin(plugin_name)
    for hook_name in HOOK_NAMES:
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue
        if hook_name == "mt_register_tasks":
            def register(task: Any) -> None:
                checked.add_task(task, plugin_name)
                tasks.append(task)
        else:
            kind = next(k for k, h in COMPONENT_KINDS.items() if h == hook_name)

            def register(name: str, factory: Any, description: str = "", _kind: str = kind, **extra: Any) -> None:
                checked.add_component(_kind, name, factory, plugin_name, description, **extra)
                components.append((_kind, (name, factory), {"description": description, **extra}))

        hook_impls = [h for h in getattr(pm.hook, hook_name).get_hookimpls() if h.plugin_name == plugin_name]
        for hook_impl in hook_impls:
            available = {"register": register}
            returned = hook_impl.function(**{arg: available[arg] for arg in hook_impl.argnames})
            if returned is not None:  # ``return [task]`` would register nothing, silently
                thing = "register(task) once per task" if hook_name == "mt_register_tasks" else "register(name, factory, ...) once per component"
                raise PluginError(f"{hook_name}() returned a {type(returned).__name__}, which mtcore ignores: call {thing} instead")
    return tasks, components


_OWN_CODE = (Path(__file__).resolve().parent, Path(pluggy.__file__).resolve().parent)


def _where(exc: BaseException) -> str:
    """``" (at file:line in function)"`` for the innermost frame outside mtcore, pluggy and importlib."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<") and not any(Path(f.filename).resolve().is_relative_to(own) for own in _OWN_CODE)]
    if not frames:
        return ""
    frame = frames[-1]
    path = Path(frame.filename)
    return f" (at {'/'.join(path.parts[-2:])}:{frame.lineno} in {frame.name})"


def _describe(exc: BaseException, ep: EntryPoint | None = None) -> str:
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:  # its place is the file's, not import_module's
        path = Path(exc.filename)
        return f"{type(exc).__name__}: {exc.msg} (at {'/'.join(path.parts[-2:])}:{exc.lineno}); fix the plugin's code there"
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, ImportError) and ep is not None:
        missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None and (ep.module == missing or ep.module.startswith(missing + ".")):  # the entry point's own module
            from mtcore.refs import near_module

            return (f"{line}{near_module(missing)} (importing entry point '{ep.name} = {ep.value}' of the {hookspecs.PROJECT!r} "
                    "group in its pyproject.toml)")
        where = _where(exc)
        if missing is None or not where:
            return line + where
        if missing.split(".")[0] == ep.module.split(".")[0]:
            return f"{line}{where}; the plugin's package has no module {missing!r}: fix that import"
        return (f"{line}{where}; install {missing.split('.')[0]!r} and declare it in the dependencies of the plugin's "
                "pyproject.toml, or import it only where it is used")
    return line + ("" if isinstance(exc, PluginError) else _where(exc))


def _name_and_distribution(eps: list[Any]) -> list[str]:
    """``rsg (mt-russian-superglue)`` per plugin: MT_LOAD_PLUGINS takes either name."""
    return sorted({f"{ep.name} ({_name_of(ep.dist)})" if ep.dist and _name_of(ep.dist) != ep.name else ep.name for ep in eps})


def load_registry(*, refresh: bool = False, warn: bool = True, strict: bool | None = None) -> Registry:
    """Discover plugins and return the registry (cached per ``MT_LOAD_PLUGINS``).

    Raises :class:`PluginError` in strict mode (``strict``, default ``MT_STRICT_PLUGINS``) when
    any plugin failed.
    """
    only_env = os.environ.get("MT_LOAD_PLUGINS")
    strict = strict_mode() if strict is None else strict
    key = only_env
    if not refresh and key in _cache:
        registry = _cache[key]
        _check_strict(registry, strict)
        return registry
    only = None if only_env is None else {n.strip() for n in only_env.split(",") if n.strip()}

    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    installed = list(entry_points(group=hookspecs.PROJECT))
    eps = [ep for ep in installed if _selected(ep, only)]
    registry.excluded = sorted({ep.name for ep in installed if not _selected(ep, only)})
    registry.excluded_distributions = {_name_of(ep.dist): ep.name for ep in installed if ep.dist and not _selected(ep, only)}
    external = [ep for ep in installed if not ep.dist or _name_of(ep.dist) != BUILTIN_DISTRIBUTION]
    known = sorted({ep.name for ep in external} | {_name_of(ep.dist) for ep in external if ep.dist})
    builtin = {ep.name for ep in installed} - {ep.name for ep in external} | {BUILTIN_DISTRIBUTION}  # always loaded
    for name in sorted((only or set()) - set(known) - builtin):
        registry.warnings.append(f"MT_LOAD_PLUGINS names {name!r}, which is no installed plugin{did_you_mean(name, known, n=1)}; "
                                 f"installed: {', '.join(_name_and_distribution(external)) or 'none'}")
    eps.sort(key=lambda ep: (ep.dist is None or _name_of(ep.dist) != BUILTIN_DISTRIBUTION, ep.name, _name_of(ep.dist) if ep.dist else ""))
    seen_names: dict[str, str] = {}
    for ep in eps:
        dist = _name_of(ep.dist) if ep.dist else "?"
        info = PluginInfo(name=ep.name, distribution=dist, version=ep.dist.version if ep.dist else "?", builtin=dist == BUILTIN_DISTRIBUTION)
        registry.plugins.append(info)
        try:
            if ep.name in seen_names:
                raise PluginError(f"the plugin name {ep.name!r} is also used by {seen_names[ep.name]}, which was loaded instead; "
                                  f"rename the entry point in one of their pyproject.toml files")
            seen_names[ep.name] = dist
            if ep.name in RESERVED_NAMES and not info.builtin:
                raise PluginError(f"the plugin name {ep.name!r} is reserved for {RESERVED_NAMES[ep.name]}; rename the entry point "
                                  f"in the [project.entry-points.{hookspecs.PROJECT}] table of its pyproject.toml and reinstall")
            before = {m for m in HEAVY_MODULES if m in sys.modules}
            module = ep.load()
            info.heavy = _heavy_imports(module, before)
            _check_entry_point(ep, module)
            problems = _hook_problems(module)
            if problems:
                raise PluginError("; ".join(problems))
            pm.register(module, name=ep.name)
            info.hooks = sorted(h.name for h in pm.get_hookcallers(module) or [])
            tasks, components = _collect(pm, ep.name)
            registry.merge_plugin(info, tasks, components)
        except Exception as exc:  # a broken plugin must never break the others
            info.status = "failed"
            info.error = _describe(exc, ep)
            info.traceback = "".join(traceback.format_exception(exc))
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
    for add in list(_user.values()):  # user code's own registrations outlive a refresh
        add(registry)
    _cache[key] = registry
    _check_strict(registry, strict)
    if warn:
        for line in registry.warnings + [info.failure_line() for info in registry.failures]:
            warnings.warn(line, PluginWarning, stacklevel=2)
    return registry


def _check_strict(registry: Registry, strict: bool) -> None:
    if strict and registry.failures:
        raise PluginError(registry.failures[0].failure_line() + " (MT_STRICT_PLUGINS=1 makes this fatal)")


def get_task(name: str):  # -> Task
    """The registered task ``name`` (qualified ``plugin:task`` or an unambiguous bare name)."""
    return load_registry().task(name)


def get_component(kind: str, name: str, owner: str | None = None) -> Any:
    """The loaded object (class or function) registered as ``name`` for ``kind``; ``owner``: the plugin of the task
    that names it (:meth:`~mtcore.registry.Registry.component`)."""
    return load_registry().component(kind, name, owner).load()


def component_ref(kind: str, name: str, owner: str | None = None) -> str:
    """``name`` as a task of plugin ``owner`` means it (:meth:`~mtcore.registry.Registry.ref`): itself, or a qualified id."""
    return load_registry(warn=False).ref(kind, name, owner)


def lower_is_better(metric: str, owner: str | None = None) -> bool:
    """Whether a smaller value of ``metric`` (its bare name or qualified id, ``mse`` or ``mtcore:mse``) is the better one:
    a metric registered with ``lower_is_better=True``. A name no loaded plugin registers is taken as higher-is-better.
    ``owner``: the plugin of the task that names it."""
    from mtcore.errors import MtError

    try:
        return bool(load_registry(warn=False).component("metric", metric, owner).extra.get("lower_is_better", False))
    except MtError:  # not registered (a run compared after its plugin was removed): the built-in's name still counts
        return metric.rsplit(":", 1)[-1] == "mse"


def register_component(kind: str, /, name: str, factory: Any, description: str = "", **extra: Any) -> None:
    """Register a head, sampler, loss, metric or writer from user code (plugin name ``user``). Registering the same
    ``kind`` and ``name`` again replaces it (a notebook cell run twice); registries built later keep it."""
    def add(registry: Registry) -> Any:
        table = registry.components.get(kind, {})
        previous = table.pop(f"user:{name}", None)
        try:
            return registry.add_component(kind, name, factory, "user", description, **extra)
        except BaseException:  # a mistake in the new one: the previous registration stays
            if previous is not None:
                table[previous.id] = previous
            raise

    _register(("component", f"{kind}:{name}"), add)


def register_task(task: Any) -> Any:
    """Register a task from user code; its id becomes ``user:<name>``. Registering a task of the same name again
    replaces it (a notebook cell run twice); registries built later keep it."""
    def add(registry: Registry) -> Any:
        previous = registry.tasks.pop(f"user:{getattr(task, 'name', '')}", None)
        try:
            return registry.add_task(task, "user")
        except BaseException:  # a mistake in the new one: the previous registration stays
            if previous is not None:
                registry.tasks[previous.id] = previous
            raise

    return _register(("task", str(getattr(task, "name", ""))), add)


def _register(key: tuple[str, str], add: Callable[[Registry], Any]) -> Any:
    registered = None
    for registry in list(_cache.values()) or [load_registry()]:
        registered = add(registry)  # a mistake raises here, before it is kept
    _user.pop(key, None)
    _user[key] = add
    return registered
