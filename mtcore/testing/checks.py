"""Checks a plugin author runs in their tests: are my task specs and components sound?

:func:`check_plugin` loads the installed plugin the way ``mt`` does and checks, for the plugin and
each of its tasks:

* the plugin loads (entry point importable, hooks spelled right, nothing raised) and importing
  its entry-point module pulls in no heavy library (torch, transformers, datasets);
* it registers something (a hook that returns its tasks instead of calling ``register`` fails to
  load, naming the fix);
* a plugin that is "not installed" because its distribution is installed without an entry point
  in the ``mtcore`` group (a misspelled group, another entry-point name) says so;
* every lazy ``"module:attr"`` reference resolves: components, ``preprocess`` functions, source
  loaders; a head, sampler or loss strategy is a subclass of ``Head``, ``Sampler`` or
  ``LossStrategy``;
* a source's data format is one mtcore reads (checked when the Task is built, so a bad one fails
  the plugin's load, reported with the task's name);
* labels are consistent (no duplicates, ``label_values`` / ``label_aliases`` match ``labels``);
* the task's head, metrics and writer are registered, and the head serves the task's kind;
* the shipped sample is present and readable, its rows have the task's fields after
  preprocessing and every label is valid (see :mod:`mtcore.testing.sample_check`).

Problems come back as a :class:`CheckReport`; :func:`assert_plugin_valid` raises with all of
them at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import distributions, entry_points

from mtcore.errors import MtError
from mtcore.hookspecs import PROJECT
from mtcore.refs import describe, resolve
from mtcore.registry import Registry
from mtcore.task import Task, TaskKind

#: Libraries a plugin's entry-point module must not import (they make ``mt list-tasks`` slow).
HEAVY_MODULES = ("torch", "transformers", "datasets", "accelerate", "sklearn")



@dataclass(frozen=True)
class Problem:
    """One thing wrong, and where (``plugin 'x'`` or ``task 'x:y'``)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class CheckReport:
    """The outcome of :func:`check_plugin`: the plugin's task ids and every problem found."""

    plugin: str
    task_ids: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """A readable summary: one line per problem."""
        head = f"plugin {self.plugin!r}: {len(self.task_ids)} task(s), {len(self.components)} component(s)"
        if self.ok:
            return head + ", no problems"
        return "\n".join([f"{head}, {len(self.problems)} problem(s):", *(f"  - {p}" for p in self.problems)])


class PluginCheckError(AssertionError):
    """Raised by :func:`assert_plugin_valid` / :func:`assert_task_valid`, listing every problem."""


# ---- single checks ---------------------------------------------------------------------------
def heavy_imports(module: str, heavy: Iterable[str] = HEAVY_MODULES) -> list[str]:
    """The heavy libraries that importing ``module`` pulls in (checked in a fresh interpreter)."""
    return import_report([module], None, heavy)["heavy"]  # type: ignore[return-value]


def import_report(modules: Iterable[str], plugin_module: str | None, heavy: Iterable[str] = HEAVY_MODULES) -> dict[str, object]:
    """Import ``modules`` in a fresh interpreter and call ``plugin_module``'s ``mt_register_tasks``:
    ``{"heavy": [heavy libraries that got imported], "tasks": number of tasks registered}``
    (``tasks`` is 0 without a plugin module)."""
    modules = list(modules)
    register = f"importlib.import_module({plugin_module!r}).mt_register_tasks(tasks.append)\n" if plugin_module else ""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"tasks = []\n{register}"
        f"print(json.dumps({{'heavy': sorted(m for m in {list(heavy)!r} if m in sys.modules), 'tasks': len(tasks)}}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise ImportError(f"cannot import {plugin_module or modules[0]!r}: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_ref(ref: object, what: str) -> str | None:
    try:
        obj = resolve(ref)
    except MtError as exc:
        return f"{what} {describe(ref)!r} does not resolve: {exc}"
    except Exception as exc:  # an import that raises something else
        return f"{what} {describe(ref)!r} fails on import: {type(exc).__name__}: {exc}"
    if not callable(obj):
        return f"{what} {describe(ref)!r} is not callable"
    return None


def check_references(task: Task) -> list[str]:
    """Every lazy reference of the task (preprocess functions, source loaders) resolves."""
    problems = []
    for i, ref in enumerate(task.preprocess):
        problem = _check_ref(ref, f"preprocess[{i}]")
        if problem:
            problems.append(problem)
    for name, source in task.sources.items():
        problem = _check_ref(source.loader, f"source {name!r} loader")
        if problem:
            problems.append(problem)
        package = source.options.get("package")
        if source.kind == "sample" and package:
            try:
                __import__(str(package))
            except Exception as exc:
                problems.append(f"source {name!r}: sample package {package!r} cannot be imported: {exc}")
    return problems


def check_labels(task: Task) -> list[str]:
    """Label names, stored values and aliases agree with each other and with the task kind."""
    problems = []  # duplicate label names, aliases to no label and unknown input columns are refused by Task itself
    if task.label_values is not None:
        values = [(type(v).__name__, v) for v in task.label_values]
        if len(set(map(repr, values))) != len(values):
            problems.append(f"label_values has duplicates: {list(task.label_values)!r}")
    if task.kind is TaskKind.REGRESSION and task.labels:
        problems.append(f"a regression task predicts a number and takes no labels (it has {list(task.labels)}); remove 'labels'")
    if task.kind is TaskKind.MULTIPLE_CHOICE and task.labels:
        problems.append(f"a multiple_choice task's label is the index of the right choice, so it takes no labels (it has "
                        f"{list(task.labels)}, which nothing reads); remove 'labels'")
    return problems


def check_components(task: Task, registry: Registry) -> list[str]:
    """The task's head, metrics and writer are registered (and load); the head serves its kind, and so does each metric."""
    problems = []
    try:
        head = registry.component("head", task.head_ref, task.plugin)
    except MtError as exc:
        problems.append(f"head: {exc}")
    else:
        kinds = head.extra.get("kinds") or []
        if kinds and task.kind.value not in kinds:
            problems.append(f"head {head.id!r} serves {', '.join(kinds)}, not {task.kind.value}; choose another head")
        problem = _check_ref(head.ref, f"head {head.id!r}")
        if problem:
            problems.append(problem)
    for metric in task.all_metrics:
        try:
            component = registry.component("metric", metric, task.metric_owner)
        except MtError as exc:
            problems.append(f"metric: {exc}")
            continue
        kinds = component.extra.get("kinds") or []
        if kinds and task.kind.value not in kinds:
            problems.append(f"metric {component.id!r} scores {', '.join(kinds)} tasks, not {task.kind.value}; choose another metric")
        problem = _check_ref(component.ref, f"metric {component.id!r}")
        if problem:
            problems.append(problem)
    if task.writer:
        try:
            registry.component("writer", task.writer, task.plugin)
        except MtError as exc:
            problems.append(f"writer: {exc}")
    return problems


# ---- whole tasks and plugins -----------------------------------------------------------------
def check_task(task: Task, *, registry: Registry | None = None, sample: bool = True) -> list[Problem]:
    """Every problem of one task spec (``registry`` defaults to the installed plugins)."""
    if registry is None:
        from mtcore.plugins import load_registry

        registry = load_registry(warn=False)
    where = f"task {task.id!r}"
    messages = check_references(task) + check_labels(task) + check_components(task, registry)
    if sample:
        from mtcore.testing.sample_check import check_sample

        messages += check_sample(task)
    return [Problem(where, m) for m in messages]


def _entry_point_module(plugin: str) -> str | None:
    for ep in entry_points(group=PROJECT):
        if ep.name == plugin:
            return ep.value.split(":", 1)[0]
    return None


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _not_installed_hint(name: str) -> str:
    """Why plugin ``name`` has no entry point: its distribution declares it in another group or name."""
    wanted = {_canonical(name), _canonical(f"mt-{name}")}
    for dist in distributions():
        dist_name = dist.metadata["Name"] or ""
        eps = list(dist.entry_points)
        if _canonical(dist_name) not in wanted and not any(ep.name == name and ep.group != PROJECT for ep in eps):
            continue
        own = [ep for ep in eps if ep.group == PROJECT]
        if own:
            names = ", ".join(sorted(ep.name for ep in own))
            return (f"distribution {dist_name} is installed and declares the plugin as {names!r} in the {PROJECT!r} group: "
                    f"check that name (task ids are {own[0].name}:<task>), or rename the entry point and reinstall")
        groups = ", ".join(sorted({ep.group for ep in eps})) or "none"
        return (f"distribution {dist_name} is installed but has no entry point in the {PROJECT!r} group (its entry-point groups: {groups}); "
                f"write [project.entry-points.{PROJECT}] {name} = \"<package>.plugin\" in its pyproject.toml and reinstall (pip install -e .)")
    return ""


def check_plugin(
    name: str,
    *,
    registry: Registry | None = None,
    sample: bool = True,
    light_import: bool = True,
) -> CheckReport:
    """Load the installed plugin ``name`` (entry-point or distribution name) and check everything.

    ``sample=False`` skips reading the shipped samples; ``light_import=False`` skips the
    fresh-interpreter check that the entry-point module imports nothing heavy.
    """
    if registry is None:
        from mtcore.plugins import load_registry

        registry = load_registry(refresh=True, warn=False)
    report = CheckReport(plugin=name)
    infos = [p for p in registry.plugins if name in (p.name, p.distribution)]
    where = f"plugin {name!r}"
    if not infos:
        installed = ", ".join(sorted(p.name for p in registry.plugins)) or "none"
        hint = _not_installed_hint(name)
        report.problems.append(Problem(where, hint or f"is not installed (entry points in group {PROJECT!r}: {installed}); "
                                              "run 'pip install -e .' in the plugin's folder"))
        return report
    for info in infos:
        if info.status != "ok":
            report.problems.append(Problem(where, f"failed to load: {info.error}"))
            continue
        if light_import and not info.builtin:
            module = _entry_point_module(info.name)
            if module:
                try:
                    heavy = heavy_imports(module)
                except ImportError as exc:
                    report.problems.append(Problem(where, str(exc)))
                else:
                    if heavy:
                        report.problems.append(Problem(where, f"importing {module!r} imports {', '.join(heavy)}; import them inside the functions that need them"))
        for kind, table in registry.components.items():
            for component in table.values():
                if component.plugin != info.name:
                    continue
                report.components.append(f"{kind} {component.id}")
                problem = _check_ref(component.ref, f"{kind} {component.id!r}") or component.type_problem(component.load())
                if problem:
                    report.problems.append(Problem(where, problem))
                clash = sorted(c.id for c in table.values() if c.name == component.name and c.plugin != info.name)
                if clash:
                    report.problems.append(Problem(where, _clash(f"{kind} {component.id!r}", component.name, clash)))
        tasks = registry.find_tasks(plugin=info.name)
        for task in tasks:
            report.task_ids.append(task.id)
            clash = sorted(t.id for t in registry.tasks.values() if t.name == task.name and t.plugin != info.name)
            if clash:
                report.problems.append(Problem(where, _clash(f"task {task.id!r}", task.name, clash)))
            report.problems.extend(check_task(task, registry=registry, sample=sample))
        if not info.builtin and not tasks and info.components == 0:
            report.problems.append(Problem(where, "registers no task and no component: its hooks must call register(...) "
                                                  "(see docs/hooks.md)"))
    return report


def _clash(what: str, name: str, others: list[str]) -> str:
    """Another plugin registers ``name`` too: its bare name is ambiguous (docs/hooks.md, "Names never collide silently")."""
    return (f"{what} has the name of {', '.join(others)}: the bare name {name!r} is now ambiguous, so every config "
            f"and task naming it bare fails; register it under a name of your own")


def assert_plugin_valid(name: str, **options: object) -> CheckReport:
    """:func:`check_plugin`, raising :class:`PluginCheckError` (an AssertionError) on any problem."""
    report = check_plugin(name, **options)  # type: ignore[arg-type]
    if not report.ok:
        raise PluginCheckError(report.format())
    return report


def assert_task_valid(task: Task, **options: object) -> None:
    """:func:`check_task`, raising :class:`PluginCheckError` on any problem."""
    problems = check_task(task, **options)  # type: ignore[arg-type]
    if problems:
        raise PluginCheckError("\n".join([f"task {task.id!r}: {len(problems)} problem(s):", *(f"  - {p.message}" for p in problems)]))
