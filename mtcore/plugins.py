"""Loading plugins: entry points in the ``mtcore`` group, each one isolated from the others.

* A plugin that fails to import, implements a hook that does not exist (a misspelling), or
  raises inside a hook is recorded with its distribution, version and error; everything it
  registered is dropped and the other plugins keep working.
* ``MT_STRICT_PLUGINS=1`` turns any such failure into an error (exit code 1).
* ``MT_LOAD_PLUGINS=a,b`` loads only those external plugins (entry-point or distribution
  names); set but empty, it loads none. mtcore's built-ins always load.
"""

from __future__ import annotations

import os
import warnings
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from mtcore import hookspecs
from mtcore.errors import PluginError, did_you_mean
from mtcore.registry import COMPONENT_KINDS, PluginInfo, Registry

BUILTIN_DISTRIBUTION = "mtcore"
HOOK_NAMES = ["mt_register_tasks", *COMPONENT_KINDS.values()]

_cache: dict[tuple[str | None, bool], Registry] = {}


class PluginWarning(UserWarning):
    """Emitted (outside the CLI) when a plugin fails to load."""


def strict_mode() -> bool:
    return os.environ.get("MT_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def _selected(ep: EntryPoint, only: set[str] | None) -> bool:
    dist = ep.dist.name if ep.dist else ""
    if dist == BUILTIN_DISTRIBUTION or only is None:
        return True
    return ep.name in only or dist in only


def _hook_problems(module: Any) -> list[str]:
    """Names in ``module`` that look like hook implementations but match no hook."""
    problems = []
    for attr in dir(module):
        if not attr.startswith("mt_") or not callable(getattr(module, attr)):
            continue
        if attr not in HOOK_NAMES:
            problems.append(f"unknown hook {attr!r}{did_you_mean(attr, HOOK_NAMES)}")
    return problems


def _collect(pm: pluggy.PluginManager, plugin_name: str) -> tuple[list, list]:
    """Call each hook of one plugin, collecting what it registers."""
    tasks: list = []
    components: list = []
    plugin = pm.get_plugin(plugin_name)
    for hook_name in HOOK_NAMES:
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue
        if hook_name == "mt_register_tasks":
            def register(task: Any) -> None:
                tasks.append(task)
        else:
            kind = next(k for k, h in COMPONENT_KINDS.items() if h == hook_name)

            def register(name: str, factory: Any, description: str = "", _kind: str = kind, **extra: Any) -> None:
                components.append((_kind, (name, factory), {"description": description, **extra}))

        hook_impls = [h for h in getattr(pm.hook, hook_name).get_hookimpls() if h.plugin_name == plugin_name]
        for hook_impl in hook_impls:
            available = {"register": register}
            hook_impl.function(**{arg: available[arg] for arg in hook_impl.argnames})
    return tasks, components


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_registry(*, refresh: bool = False, warn: bool = True) -> Registry:
    """Discover plugins and return the registry (cached per ``MT_LOAD_PLUGINS``/strict setting).

    Raises :class:`PluginError` in strict mode when any plugin failed.
    """
    only_env = os.environ.get("MT_LOAD_PLUGINS")
    key = (only_env, strict_mode())
    if not refresh and key in _cache:
        return _cache[key]
    only = None if only_env is None else {n.strip() for n in only_env.split(",") if n.strip()}

    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    eps = [ep for ep in entry_points(group=hookspecs.PROJECT) if _selected(ep, only)]
    eps.sort(key=lambda ep: (ep.dist is None or ep.dist.name != BUILTIN_DISTRIBUTION, ep.name))
    seen_names: set[str] = set()
    for ep in eps:
        dist = ep.dist.name if ep.dist else "?"
        info = PluginInfo(name=ep.name, distribution=dist, version=ep.dist.version if ep.dist else "?", builtin=dist == BUILTIN_DISTRIBUTION)
        registry.plugins.append(info)
        try:
            if ep.name in seen_names:
                raise PluginError(f"another installed plugin already uses the name {ep.name!r}")
            seen_names.add(ep.name)
            module = ep.load()
            problems = _hook_problems(module)
            if problems:
                raise PluginError("; ".join(problems))
            pm.register(module, name=ep.name)
            info.hooks = sorted(h.name for h in pm.get_hookcallers(module) or [])
            tasks, components = _collect(pm, ep.name)
            registry.merge_plugin(info, tasks, components)
        except Exception as exc:  # a broken plugin must never break the others
            info.status = "failed"
            info.error = _describe(exc)
            if pm.get_plugin(ep.name) is not None:
                pm.unregister(name=ep.name)
    if strict_mode() and registry.failures:
        raise PluginError(registry.failures[0].failure_line() + " (MT_STRICT_PLUGINS=1 makes this fatal)")
    if warn:
        for info in registry.failures:
            warnings.warn(info.failure_line(), PluginWarning, stacklevel=2)
    _cache[key] = registry
    return registry


def get_task(name: str):  # -> Task
    """The registered task ``name`` (qualified ``plugin:task`` or an unambiguous bare name)."""
    return load_registry().task(name)


def get_component(kind: str, name: str) -> Any:
    """The loaded object (class or function) registered as ``name`` for ``kind``."""
    return load_registry().component(kind, name).load()


def register_component(kind: str, name: str, factory: Any, description: str = "", **extra: Any) -> None:
    """Register a head, sampler, loss, metric or writer from user code (plugin name ``user``)."""
    for registry in _cache.values() or [load_registry()]:
        registry.add_component(kind, name, factory, "user", description, **extra)


def register_task(task: Any) -> Any:
    """Register a task from user code; its id becomes ``user:<name>``."""
    registered = None
    for registry in _cache.values() or [load_registry()]:
        registered = registry.add_task(task, "user")
    return registered
