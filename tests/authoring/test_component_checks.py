"""A plugin's samplers, loss strategies, heads, preprocess references and source formats: each
mistake is one line naming the component (by its registered name), the task and the plugin.

The plugins are written here and "installed" as a package plus its ``.dist-info`` in a folder put
on ``PYTHONPATH`` (the real ``mt``) or ``sys.path`` (``check_plugin``).
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from clitools import run_mt

from mtcore.plugins import load_registry
from mtcore.testing import check_plugin

SAMPLE = 'Source.sample(__package__, "jsonl", {"train": "data/train.jsonl", "validation": "data/validation.jsonl"})'
TASKS = f'''
from mtcore.hookspecs import hookimpl
from mtcore.task import Source, Task


def task(name, **more):
    return Task(name=name, kind="text_classification", labels=("negative", "positive"), inputs={{"text": "review"}},
                sources={{"sample": {SAMPLE}}}, **more)
'''


def hooks(**registered: list[str]) -> str:
    """Plugin source: an ``mt_register_<kind>`` hook per keyword, calling ``register(...)`` with each argument text."""
    return "".join(f"\n\n@hookimpl\ndef mt_register_{kind}(register):\n" + "".join(f"    register({call})\n" for call in calls)
                   for kind, calls in registered.items())


COMPONENTS_PLUGIN = TASKS + hooks(
    tasks=['task("reviews")', 'task("opinions")', 'task("cleaned", preprocess=("mt_cc_comps.rows:no_such_function",))'],
    samplers=['"textual", "mt_cc_comps.parts:TextualSampler", "returns a string"',
              '"negative", "mt_cc_comps.parts:NegativeSampler", "returns a negative weight"',
              '"renamed", "mt_cc_comps.parts:SelfNamedSampler", "sets another name itself"'],
    loss_strategies=['"weird", "mt_cc_comps.parts:Weird", "not a LossStrategy"'],
    heads=['"plain", "mt_cc_comps.parts:Weird", "not a Head"'])

PARTS = '''
from mtcore.sampling.base import Sampler


class TextualSampler(Sampler):
    def probabilities(self, epoch):
        return "uniform"


class NegativeSampler(Sampler):
    def probabilities(self, epoch):
        return [-1.0, 2.0]


class SelfNamedSampler(Sampler):
    name = "something_else"
    defaults = {"temperature": 1.0}

    def probabilities(self, epoch):
        return [1.0] * len(self.tasks)


class Weird:
    pass
'''
ROWS = '{"review": "lovely tea", "label": "positive"}\n{"review": "awful smell", "label": "negative"}\n'


def _write_plugin(root: Path, package: str, plugin: str, files: dict[str, str]) -> None:
    (root / package / "data").mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    for name, text in files.items():
        (root / package / name).write_text(textwrap.dedent(text))
    for split in ("train", "validation"):
        (root / package / "data" / f"{split}.jsonl").write_text(ROWS)
    dist = root / f"{package}-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[mtcore]\n{plugin} = {package}.plugin\n")


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("component-plugins")
    _write_plugin(root, "mt_cc_comps", "ccomps", {"plugin.py": COMPONENTS_PLUGIN, "parts.py": PARTS,
                                                  "rows.py": "def clean(row):\n    return row\n"})
    _write_plugin(root, "mt_cc_format", "cformat", {"plugin.py": TASKS + hooks(tasks=[
        'task("reviews")',
        'Task(name="comments", kind="text_classification", labels=("a", "b"), '
        'sources={"local": Source.local("cvs", {"train": "train.csv"})})'])})
    yaml_plugin = "from mtcore.hookspecs import hookimpl\nfrom mtcore.yaml_tasks import register_yaml_tasks\n"
    yaml_plugin += "\n\n@hookimpl\ndef mt_register_tasks(register):\n    register_yaml_tasks(register, __package__)\n"
    _write_plugin(root, "mt_cc_yaml", "cyaml", {"plugin.py": yaml_plugin, "tasks.yaml": '''
tasks:
  - name: notes
    kind: text_classification
    labels: [a, b]
    sources:
      local: {kind: local, format: jsonlines, files: {train: train.jsonl}}
'''})
    return root


@pytest.fixture
def installed(plugins, monkeypatch):
    """The plugins importable in this process (for check_plugin and the registry)."""
    monkeypatch.syspath_prepend(str(plugins))
    importlib.invalidate_caches()
    yield load_registry(refresh=True, warn=False)
    monkeypatch.undo()
    for name in [m for m in sys.modules if m.startswith("mt_cc_")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    load_registry(refresh=True, warn=False)


def _config(tmp_path: Path, *tasks: str, **more) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2},
                                    "tasks": [{"id": t} for t in tasks], **more}))
    return str(path)


def _check(plugins: Path | None, config: str, *overrides: str):
    result = run_mt("check", config, *overrides, "--no-data", plugin_path=plugins, env={"MT_LOAD_PLUGINS": "ccomps"} if plugins else None)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.returncode, lines[0]


# ---- samplers: named as registered, their weights checked ------------------------------------------
def test_a_sampler_returning_a_string_is_named_with_what_it_returned(plugins, tmp_path):
    code, line = _check(plugins, _config(tmp_path, "ccomps:reviews", "ccomps:opinions"), "sampler.name=textual")
    assert code == 2
    assert line == ("error: sampler 'textual': probabilities(0) returned 'uniform' (a str); it must return one number >= 0 per "
                    "task (2: ccomps:reviews, ccomps:opinions)")


def test_plugin_sampler_errors_use_the_registered_name(plugins, tmp_path):
    config = _config(tmp_path, "ccomps:reviews", "ccomps:opinions")
    code, line = _check(plugins, config, "sampler.name=negative")
    assert code == 2 and line.startswith("error: sampler 'negative': probabilities(0) returned the invalid weights [-1.0, 2.0]; ")
    code, line = _check(plugins, config, "sampler.name=negative", "sampler.options.x=1")
    assert code == 2 and line == ("error: config key 'sampler.options': sampler 'negative': unknown option 'x'; it accepts: none; "
                                  "options of another sampler? sampler.options={} clears them")
    code, line = _check(plugins, config, "sampler.name=renamed", "sampler.options.temprature=2")
    assert code == 2 and line.startswith("error: config key 'sampler.options': sampler 'renamed': unknown option 'temprature' "
                                         "(did you mean 'temperature'?)")


# ---- loss strategies and heads that are not subclasses --------------------------------------------
def test_a_loss_strategy_that_is_no_loss_strategy_is_named_not_said_to_reject_options(plugins, tmp_path):
    code, line = _check(plugins, _config(tmp_path, "ccomps:reviews"), "loss.strategy=weird")
    assert code == 1
    assert line == ("error: loss strategy 'ccomps:weird' (config key 'loss.strategy') is registered by plugin 'ccomps' as "
                    "'mt_cc_comps.parts:Weird', a class that is not a mtcore.train.losses.LossStrategy subclass; the plugin must "
                    "register a subclass of LossStrategy (or a 'module:Class' naming one)")


def test_check_plugin_reports_a_loss_strategy_and_a_head_that_are_not_subclasses(installed):
    messages = [str(p) for p in check_plugin("ccomps", light_import=False, sample=False).problems]
    assert any("loss strategy 'ccomps:weird' is registered by plugin 'ccomps' as 'mt_cc_comps.parts:Weird', a class that is not "
               "a mtcore.train.losses.LossStrategy subclass" in m for m in messages), messages
    assert any("head 'ccomps:plain' is registered by plugin 'ccomps' as 'mt_cc_comps.parts:Weird', a class that is not a "
               "mtcore.model.heads.base.Head subclass" in m for m in messages), messages
    assert not any("sampler" in m for m in messages), messages  # its samplers are Sampler subclasses


@pytest.mark.parametrize("data", [False, True])
def test_a_head_that_is_no_module_is_named_by_mt_check_with_or_without_data(plugins, tmp_path, data):
    """It passed ``mt check --no-data`` (heads were built only with the data), and with the data it was said to have
    "rejected options {}: Weird() takes no arguments"."""
    result = run_mt("check", _config(tmp_path, "ccomps:reviews"), "tasks.0.head=plain", *([] if data else ["--no-data"]),
                    plugin_path=plugins, env={"MT_LOAD_PLUGINS": "ccomps"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0] == ("error: head 'ccomps:plain' (head of task 'ccomps:reviews') is registered by plugin 'ccomps' as "
                        "'mt_cc_comps.parts:Weird', a class that is not a mtcore.model.heads.base.Head subclass; the plugin must "
                        "register a subclass of Head (or a 'module:Class' naming one)")


def test_head_options_are_checked_without_data_too(tmp_path):
    code, line = _check(None, _config(tmp_path, "rsg:terra"), "tasks.0.head_options.poolng=cls")
    assert code == 2 and "unknown head option 'poolng' (did you mean 'pooling'" in line


# ---- preprocess references: resolved when the run is planned --------------------------------------
@pytest.mark.parametrize("reference, reason", [
    ("nope_cc_module:fn", "cannot import 'nope_cc_module': No module named 'nope_cc_module'"),
    ("mt_cc_comps.rows:missing_fn", "'mt_cc_comps.rows' has no attribute 'missing_fn'"),
])
def test_a_bad_preprocess_reference_in_the_config_names_its_key_and_task(plugins, tmp_path, reference, reason):
    code, line = _check(plugins, _config(tmp_path, "ccomps:reviews"), f"tasks.0.preprocess=[{reference}]")
    assert code == 2
    assert line == (f"error: config key 'tasks.0.preprocess': task 'ccomps:reviews': preprocess reference {reference!r} does not "
                    f"resolve: {reason}; write 'package.module:function' naming a function of an importable module")


def test_a_good_preprocess_reference_passes(plugins, tmp_path):
    result = run_mt("check", _config(tmp_path, "ccomps:reviews"), "tasks.0.preprocess=[mt_cc_comps.rows:clean]", "--no-data",
                    plugin_path=plugins, env={"MT_LOAD_PLUGINS": "ccomps"})
    assert result.returncode == 0, result.stderr


def test_a_bad_preprocess_reference_of_an_inline_task_names_the_define_key(plugins, tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "good", "label": "pos"}) + "\n")
    config = tmp_path / "d.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [{"define": {
        "name": "notes", "kind": "text_classification", "labels": ["neg", "pos"], "files": {"train": "train.jsonl"},
        "preprocess": ["mt_cc_comps.rows:nothing_here"]}}]}))
    code, line = _check(plugins, str(config))
    assert code == 2 and line.startswith("error: config key 'tasks.0.define.preprocess': task 'user:notes': preprocess reference "
                                         "'mt_cc_comps.rows:nothing_here' does not resolve: ")


def test_a_plugin_tasks_bad_preprocess_reference_names_the_task_and_plugin(plugins, tmp_path):
    code, line = _check(plugins, _config(tmp_path, "ccomps:cleaned"))
    assert code == 2
    assert line == ("error: task 'ccomps:cleaned' (from plugin 'ccomps'): preprocess reference 'mt_cc_comps.rows:no_such_function' "
                    "does not resolve: 'mt_cc_comps.rows' has no attribute 'no_such_function'; fix the task's definition in plugin "
                    "'ccomps', or set config key 'tasks.0.preprocess'")


# ---- source formats: checked when the task is built ----------------------------------------------
def test_an_unknown_source_format_fails_the_plugin_load_naming_the_task(installed):
    (info,) = [p for p in installed.plugins if p.name == "cformat"]
    assert info.status == "failed"
    assert info.error.startswith("ConfigError: task 'comments': source 'local' has unknown data format 'cvs' (did you mean 'csv'?); "
                                 "choose one of: jsonl, json, csv, tsv, parquet, conll, or auto")
    assert "(at mt_cc_format/plugin.py:" in info.error
    (problem,) = check_plugin("cformat", light_import=False).problems
    assert "failed to load" in problem.message and "unknown data format 'cvs'" in problem.message


def test_an_unknown_format_in_a_plugins_tasks_yaml_fails_its_load(installed):
    (info,) = [p for p in installed.plugins if p.name == "cyaml"]
    assert info.status == "failed"
    assert info.error.startswith("ConfigError: mt_cc_yaml/tasks.yaml, task 1 of 1 ('notes'): source 'local' has unknown data "
                                 "format 'jsonlines' (did you mean 'jsonl'?)"), info.error


def test_show_task_names_the_failure_instead_of_describing_the_source(plugins):
    result = run_mt("show-task", "cformat:comments", plugin_path=plugins, env={"MT_LOAD_PLUGINS": "cformat"})
    assert result.returncode == 2
    assert "task 'cformat:comments' is not registered because plugin 'cformat'" in result.stderr
    assert "unknown data format 'cvs' (did you mean 'csv'?)" in result.stderr


def test_formats_are_checked_only_for_mtcores_own_loaders():
    from mtcore.errors import ConfigError
    from mtcore.task import Source, Task

    with pytest.raises(ConfigError, match=r"^task 'notes': source 'sample' has unknown data format 'parket' \(did you mean 'parquet'\?\)"):
        Task(name="notes", kind="regression", sources={"sample": Source.sample("pkg", "parket", {"train": "t.parquet"})})
    own = Source("local", "my_pkg.loaders:load_xml", {"format": "xml", "files": {"train": "train.xml"}})
    assert Task(name="notes", kind="regression", sources={"local": own}).sources["local"].options["format"] == "xml"
    task = Task(name="notes", kind="regression", sources={"local": Source.local("auto", {"train": "train.*"})})
    with pytest.raises(ConfigError, match=r"source 'local' has unknown data format 'tsvv' \(did you mean 'tsv'\?\)"):
        task.replace(sources={"local": Source.local("tsvv", {"train": "train.tsv"})})
