"""The hook examples and signatures in mtcore/hookspecs.py and docs/hooks.md are what the code does.

* Every example, run as an installed plugin beside mtcore's built-ins and the shipped plugins,
  loads and registers names of its own: a copied example never makes a built-in's bare name
  ambiguous (a loss strategy ``dwa``, a writer ``rsg``).
* Every documented ``register(...)`` signature names exactly the parameters the real callback
  takes, and the keywords a metric is given are the documented ones.
* Documented Python API signatures in docs/python-api.md match the code.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from authoring.plugin_paths import plugin_paths

from mtcore import hookspecs
from mtcore.errors import UsageError
from mtcore.plugins import load_registry
from mtcore.registry import COMPONENT_KINDS, EXTRA_KEYWORDS

ROOT = Path(__file__).resolve().parents[1]
HOOKS_MD = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
PYTHON_API_MD = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
KIND_OF_HOOK = {hook: kind for kind, hook in COMPONENT_KINDS.items()}
HOOKS = ["mt_register_tasks", *COMPONENT_KINDS.values()]
HEADER = "from mtcore.hookspecs import hookimpl\nfrom mtcore.task import Source, Task\n\n\n"


def _docstring_example(hook: str) -> str:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    return textwrap.dedent(doc.split("Example::", 1)[1]).strip() + "\n"


def _hooks_md_section(hook: str) -> str:
    start = HOOKS_MD.index(f"## `{hook}(register)`")
    end = HOOKS_MD.index("\n## ", start + 1)
    return HOOKS_MD[start:end]


def _hooks_md_example(hook: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", _hooks_md_section(hook), flags=re.S)
    assert len(blocks) == 1, hook
    return "\n".join(line for line in blocks[0].splitlines() if not line.startswith("from ")) + "\n"


EXAMPLES = {
    "hookspecs": "\n\n".join(_docstring_example(hook) for hook in HOOKS),
    "hooks_md": "\n\n".join(_hooks_md_example(hook) for hook in HOOKS),
}


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """``put(source, package, name=None)``: ``source`` installed as the plugin module of ``package``; returns the plugin name."""
    monkeypatch.delenv("MT_LOAD_PLUGINS", raising=False)
    for paths in plugin_paths("mt_hookex_"):
        yield lambda source, package, name=None: paths.put(tmp_path / package, package, {"plugin.py": source}, ep_name=name)


@pytest.mark.parametrize("where", sorted(EXAMPLES))
def test_the_examples_load_as_a_plugin_and_use_names_no_other_plugin_uses(installed, where):
    plugin = installed(HEADER + EXAMPLES[where], f"mt_hookex_{where}")
    registry = load_registry(refresh=True, warn=False)
    info = next(p for p in registry.plugins if p.name == plugin)
    assert info.status == "ok", info.error
    others = {p.name for p in registry.plugins} - {plugin}
    assert {"mtcore", "rsg", "nli", "sentiment"} <= others  # the built-ins and the shipped plugins are there to collide with

    tasks = [t for t in registry.tasks.values() if t.plugin == plugin]
    assert tasks, "the mt_register_tasks example registers no task"
    for task in tasks:
        taken = sorted(t.id for t in registry.tasks.values() if t.name == task.name and t.plugin != plugin)
        assert not taken, f"{where}: example task {task.name!r} is also {taken}"
    for kind, table in registry.components.items():
        own = [c for c in table.values() if c.plugin == plugin]
        assert own, f"{where}: the {COMPONENT_KINDS[kind]} example registers nothing"
        for component in own:
            taken = sorted(c.id for c in table.values() if c.name == component.name and c.plugin != plugin)
            assert not taken, f"{where}: example {kind} {component.name!r} is also {taken}"
            assert registry.component(kind, component.name) is component  # the bare name stays unambiguous


def test_reusing_a_builtin_name_loads_and_makes_the_bare_name_ambiguous(installed):
    """What docs/hooks.md says of a name collision: both load, neither wins."""
    plugin = installed(HEADER + '@hookimpl\ndef mt_register_loss_strategies(register):\n'
                       '    register("dwa", "my_package.losses:Mine", "another dwa")\n', "mt_hookex_clash", "myplugin")
    registry = load_registry(refresh=True, warn=False)
    assert next(p for p in registry.plugins if p.name == plugin).status == "ok"
    assert registry.component("loss", f"{plugin}:dwa").plugin == plugin
    assert registry.component("loss", "mtcore:dwa").plugin == "mtcore"
    with pytest.raises(UsageError, match=rf"loss name 'dwa' is ambiguous: provided by mtcore:dwa, {plugin}:dwa; use the qualified id"):
        registry.component("loss", "dwa")
    said = "loss name 'dwa' is ambiguous: provided by mtcore:dwa, myplugin:dwa; use the qualified id"
    assert said in " ".join(HOOKS_MD.split())


# ---- register signatures ------------------------------------------------------------------------
def _call_at(text: str, start: int) -> str:
    """The balanced call ``name(...)`` beginning at ``start``, on one line."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if text[i] == ")" and depth == 0:
            return " ".join(text[start:i + 1].split())
    raise AssertionError(f"unbalanced call at {text[start:start + 60]!r}")


def _parameters(call: str) -> tuple[list[str], dict[str, str]]:
    """``register(name, factory, description="", kinds=())`` -> (names in order, {name: default source})."""
    node = ast.parse(call.replace("register(", "def register(", 1) + ": pass").body[0]
    assert isinstance(node, ast.FunctionDef)
    args = node.args.args
    defaults = dict(zip([a.arg for a in args][len(args) - len(node.args.defaults):], map(ast.unparse, node.args.defaults)))
    return [a.arg for a in args], defaults


def _documented(hook: str) -> dict[str, tuple[list[str], dict[str, str]]]:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    spec = doc[doc.index(":param register:"):doc.index("Example::")]
    section = _hooks_md_section(hook)
    return {where: _parameters(_call_at(text, text.index("register(")))
            for where, text in (("hookspecs.py", spec), ("docs/hooks.md", section))}


@pytest.fixture
def callbacks(installed):
    """The ``register`` callback each hook really receives, by hook name."""
    source = HEADER + "CAPTURED = {}\n\n" + "\n".join(
        f"@hookimpl\ndef {hook}(register):\n    CAPTURED[{hook!r}] = register\n\n" for hook in HOOKS)
    installed(source, "mt_hookex_capture")
    load_registry(refresh=True, warn=False)
    import mt_hookex_capture.plugin as module

    assert sorted(module.CAPTURED) == sorted(HOOKS)
    return module.CAPTURED


@pytest.mark.parametrize("hook", HOOKS)
def test_each_documented_register_signature_is_the_real_one(callbacks, hook):
    real = inspect.signature(callbacks[hook]).parameters
    named = [n for n, p in real.items() if not n.startswith("_") and p.kind is not p.VAR_KEYWORD]
    kind = KIND_OF_HOOK.get(hook)
    expected = named + list(EXTRA_KEYWORDS[kind]) if kind else named
    for where, (names, defaults) in _documented(hook).items():
        assert names == expected, f"{where} documents {hook}'s register({', '.join(names)}); it takes {', '.join(expected)}"
        if "description" in defaults:
            assert ast.literal_eval(defaults["description"]) == real["description"].default, where
    if kind is None:
        return
    register = callbacks[hook]
    good = {"kinds": ("text_classification",), "needs_ids": False, "lower_is_better": True}
    for keyword in EXTRA_KEYWORDS[kind]:  # each documented keyword is taken ...
        register(f"x_{keyword}", "my_package.x:y", "", **{keyword: good[keyword]})
    with pytest.raises(Exception, match="unknown keyword 'colour'"):  # ... and no other
        register("x_other", "my_package.x:y", "", colour="red")


def test_a_metric_is_given_exactly_the_documented_keywords():
    from mtcore.train.metrics import compute_metrics

    seen: dict[str, Any] = {}

    def declares(predictions, references, task, idx=None, null_answers=None):
        seen["declares"] = {"idx": idx, "null_answers": null_answers}
        return 1.0

    def takes_any(predictions, references, task, **keywords):
        seen["takes_any"] = keywords
        return 1.0

    class FakeTask:
        id, all_metrics = "x:t", ("declares", "takes_any")

    functions = {"declares": declares, "takes_any": takes_any}
    compute_metrics(FakeTask(), [0, 1], [0, 1], functions.__getitem__, idx=lambda: [7, 8], null_answers=[("a", 0.5), ("", -1.0)])
    assert seen == {"declares": {"idx": [7, 8], "null_answers": [("a", 0.5), ("", -1.0)]}, "takes_any": {}}
    spec = " ".join((inspect.getdoc(hookspecs.mt_register_metrics) or "").split())
    section = " ".join(_hooks_md_section("mt_register_metrics").split())
    for keyword in ("idx", "null_answers"):
        assert f"``{keyword}``" in spec and f"`{keyword}`" in section, keyword


# ---- docs/python-api.md signatures --------------------------------------------------------------
def _api(dotted: str) -> Any:
    module, _, attr = dotted.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


#: doc prefix (as written after a backtick) -> the object it documents; tests/test_docs_python_api.py checks the others
API_SIGNATURES = {
    ".save_pretrained(": "mtcore.model:MultitaskModel.save_pretrained",
    "export_all(": "mtcore.export:export_all",
    "tasks_from_yaml(": "mtcore.yaml_tasks:tasks_from_yaml",
    "tasks_from_package(": "mtcore.yaml_tasks:tasks_from_package",
    "register_yaml_tasks(": "mtcore.yaml_tasks:register_yaml_tasks",
    "register_component(": "mtcore.plugins:register_component",
    "heavy_imports(": "mtcore.testing:heavy_imports",
    "import_report(": "mtcore.testing:import_report",
    "NLinearsSequenceClassificationTask(": "mtcore.seed.classification:NLinearsSequenceClassificationTask",
}
#: positional parameters the docs call by a shorter name (as tests/test_docs_python_api.py allows)
RENAMED = {"save_directory": "dir"}


def _doc_signature(prefix: str) -> ast.arguments:
    call = _call_at(PYTHON_API_MD, PYTHON_API_MD.index("`" + prefix) + 1)
    rest = call.partition("(")[2]
    node = ast.parse(f"def f({rest[:-1]}): pass").body[0]
    assert isinstance(node, ast.FunctionDef)
    return node.args


@pytest.mark.parametrize("prefix", sorted(API_SIGNATURES))
def test_python_api_signatures_match_the_code(prefix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = inspect.signature(_api(API_SIGNATURES[prefix]))
    params = [p for n, p in real.parameters.items() if n != "self"]
    doc = _doc_signature(prefix)
    documented = [(a.arg, "positional") for a in doc.posonlyargs + doc.args] + [(a.arg, "keyword") for a in doc.kwonlyargs]
    documented += [("**", "**")] if doc.kwarg else []  # its name is the docs' choice
    actual = [(p.name, "keyword") if p.kind is p.KEYWORD_ONLY else (RENAMED.get(p.name, p.name), "positional")
              for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    actual += [("**", "**")] if any(p.kind is p.VAR_KEYWORD for p in params) else []
    assert documented == actual, f"docs/python-api.md: `{prefix}...` documents {documented}, the code takes {actual}"
    doc_defaults = dict(zip([a.arg for a in doc.args][len(doc.args) - len(doc.defaults):], doc.defaults))
    doc_defaults.update({a.arg: d for a, d in zip(doc.kwonlyargs, doc.kw_defaults) if d is not None})
    for name, node in doc_defaults.items():
        try:
            value = ast.literal_eval(node)
        except ValueError:  # a name (HEAVY_MODULES): not checked
            continue
        default = real.parameters[name].default
        assert default == value, f"{prefix}: {name}={ast.unparse(node)} documented, the code's default is {default!r}"


def test_a_plugin_task_naming_a_metric_gets_its_plugins_own_else_is_told_it_is_ambiguous(installed):
    """A bare name the task's definition names is its own plugin's namesake (here over mtcore's 'accuracy'); a name
    only two other plugins register is ambiguous, said as such (it read "names metric 'x', which is not registered
    (did you mean 'x'?)")."""
    from mtcore.errors import ConfigError
    from mtcore.train.config_io import load_config
    from mtcore.train.validate import plan_run

    source = (HEADER + "@hookimpl\ndef mt_register_metrics(register):\n"
              "    register('accuracy', 'mtcore.train.metrics:f1_macro', 'another accuracy')\n\n\n"
              "@hookimpl\ndef mt_register_tasks(register):\n"
              "    register(Task(name='toxic', kind='text_classification', labels=('ok', 'toxic'), metrics=('accuracy',),\n"
              "                  sources={'sample': Source.sample('my_package.data', 'jsonl', {'train': 'train.jsonl'})}))\n"
              "    register(Task(name='rare', kind='text_classification', labels=('ok', 'toxic'), metrics=('rarest',),\n"
              "                  sources={'sample': Source.sample('my_package.data', 'jsonl', {'train': 'train.jsonl'})}))\n")
    plugin = installed(source, "mt_hookex_metric", "acc")
    registry = load_registry(refresh=True, warn=False)
    plan_run(load_config({"encoder": {"tiny": "bert"}, "tasks": [f"{plugin}:toxic"]}))
    assert registry.component("metric", "accuracy", plugin).id == f"{plugin}:accuracy"
    assert registry.component("metric", "accuracy", "rsg").id == "mtcore:accuracy"
    for other in ("other_a", "other_b"):
        registry.add_component("metric", "rarest", "mtcore.train.metrics:accuracy", other)
    try:
        with pytest.raises(ConfigError) as info:
            plan_run(load_config({"encoder": {"tiny": "bert"}, "tasks": [f"{plugin}:rare"]}))
    finally:
        load_registry(refresh=True, warn=False)
    message = str(info.value)
    assert message.startswith(f"task '{plugin}:rare' (from plugin '{plugin}') names metric 'rarest': "), message
    assert "ambiguous: provided by other_a:rarest, other_b:rarest" in message and "not registered" not in message, message


def test_check_plugin_reports_a_name_another_plugin_registers(installed):
    from mtcore.testing import check_plugin

    plugin = installed(HEADER + '@hookimpl\ndef mt_register_loss_strategies(register):\n'
                       '    register("dwa", "mtcore.train.loss_balancers:DynamicWeightAverageLoss", "another dwa")\n'
                       '    register("mine_only", "mtcore.train.loss_balancers:DynamicWeightAverageLoss", "no clash")\n',
                       "mt_hookex_checked", "checked")
    report = check_plugin(plugin, registry=load_registry(refresh=True, warn=False), light_import=False)
    messages = [p.message for p in report.problems]
    assert messages == [f"loss '{plugin}:dwa' has the name of mtcore:dwa: the bare name 'dwa' is now ambiguous, so every "
                        "config and task naming it bare fails; register it under a name of your own"], messages
