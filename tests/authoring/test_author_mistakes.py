"""Mistakes a new plugin author makes, found by following the docs (a user study), and what they get.

Each fake plugin here is "installed" by putting a package and its ``.dist-info`` (with
``entry_points.txt``) on ``sys.path``, which is all ``importlib.metadata`` needs.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from authoring.plugin_paths import plugin_paths

from mtcore.cli import scaffold
from mtcore.errors import ConfigError, MtError, UsageError
from mtcore.plugins import load_registry
from mtcore.testing import check_plugin
from mtcore.testing.smoke import smoke_train
from mtcore.testing.sources import sample_words
from mtcore.yaml_tasks import task_from_definition, tasks_from_package

ROOT = Path(__file__).resolve().parents[2]

GOOD_HOOK = '''
from mtcore.hookspecs import hookimpl
from mtcore.task import Source, Task


def task():
    return Task(name="reviews", kind="text_classification", labels=("negative", "positive"), inputs={"text": "review"},
                sources={"sample": Source.sample(__package__, "jsonl", {"train": "data/train.jsonl", "validation": "data/validation.jsonl"})})


@hookimpl
def mt_register_tasks(register):
    BODY
'''
ROWS = '{"review": "lovely tea", "label": "positive"}\n{"review": "awful smell", "label": "negative"}\n'


@pytest.fixture
def install(tmp_path):
    """``install(package, body, group="mtcore", ep_name=None)``: a plugin package on sys.path."""
    for paths in plugin_paths("mt_study_"):
        def make(package: str, body: str, *, group: str = "mtcore", ep_name: str | None = None) -> str:
            files = {"plugin.py": GOOD_HOOK.replace("BODY", body), "data/train.jsonl": ROWS, "data/validation.jsonl": ROWS}
            return paths.put(tmp_path / package, package, files, group=group, ep_name=ep_name)

        yield make


# ---- check_plugin: what loads "ok" yet registers nothing ----------------------------------------
def test_a_sound_plugin_has_no_problems(install):
    plugin = install("mt_study_good", "register(task())")
    report = check_plugin(plugin, light_import=False)
    assert report.ok, report.format()
    assert report.task_ids == ["study_good:reviews"]


def test_a_hook_returning_its_tasks_is_reported(install):
    plugin = install("mt_study_returns", "return [task()]")
    report = check_plugin(plugin, light_import=False)
    assert not report.ok
    (problem,) = report.problems
    assert problem.message.endswith("failed to load: PluginError: mt_register_tasks() returned a list, which mtcore ignores: "
                                    "call register(task) once per task instead")


def test_a_plugin_registering_nothing_is_reported(install):
    plugin = install("mt_study_nothing", "pass")
    report = check_plugin(plugin, light_import=False)
    assert [p.message for p in report.problems] == [
        "registers no task and no component: its hooks must call register(...) (see docs/hooks.md)"]


def test_an_entry_point_in_a_misspelled_group_is_named(install):
    install("mt_study_group", "register(task())", group="mt_core")
    (problem,) = check_plugin("study_group", light_import=False).problems
    assert "distribution mt-study-group is installed but has no entry point in the 'mtcore' group" in problem.message
    assert "(its entry-point groups: mt_core)" in problem.message
    assert "[project.entry-points.mtcore] study_group = " in problem.message and "\n" not in problem.message


def test_an_entry_point_under_another_name_is_named(install):
    install("mt_study_named", "register(task())", ep_name="other_name")
    (problem,) = check_plugin("study_named", light_import=False).problems
    assert "declares the plugin as 'other_name' in the 'mtcore' group" in problem.message


def test_smoke_train_names_the_plugin_failure_not_just_an_unknown_task(install, tmp_path):
    install("mt_study_broken", "register({'name': 'reviews'})")
    load_registry(refresh=True, warn=False)
    with pytest.raises(MtError) as caught:
        smoke_train("study_broken:reviews", output_dir=tmp_path / "run", steps=1)
    message = str(caught.value)
    assert "task 'study_broken:reviews' is not registered because plugin 'study_broken'" in message
    assert "failed to load: TypeError: register() expects a mtcore.task.Task, got dict" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("body, error", [
    ("register({'name': 'reviews'})", "TypeError: register() expects a mtcore.task.Task, got dict; build it with Task("),
    ("register(task())\n    register(task())", "ConfigError: task 'study_where:reviews' is registered twice; register each task once"),
])
def test_a_registration_mistake_names_the_plugin_line_that_made_it(install, tmp_path, body, error):
    plugin = install("mt_study_where", body)
    registry = load_registry(refresh=True, warn=False)
    (info,) = [p for p in registry.plugins if p.name == plugin]
    assert info.status == "failed" and error in info.error
    lines = (tmp_path / "mt_study_where" / "mt_study_where" / "plugin.py").read_text().split("\n")
    last_line = max(i for i, line in enumerate(lines, 1) if line.strip() == body.split("\n")[-1].strip())
    assert info.error.endswith(f"(at mt_study_where/plugin.py:{last_line} in mt_register_tasks)"), info.error
    assert "study_where:reviews" not in registry.tasks  # all or nothing


def test_a_component_registration_mistake_names_the_plugin_line_too(install, tmp_path):
    plugin = install("mt_study_metric", "pass")
    hook = tmp_path / "mt_study_metric" / "mt_study_metric" / "plugin.py"
    hook.write_text(hook.read_text() + "\n\n@hookimpl\ndef mt_register_metrics(register):\n"
                    "    register('hits', len, 'share of hits', kinds=('text_clasification',))\n")
    registry = load_registry(refresh=True, warn=False)
    (info,) = [p for p in registry.plugins if p.name == plugin]
    assert "unknown task kind 'text_clasification' in kinds (did you mean 'text_classification'?)" in info.error
    line = hook.read_text().split("\n").index("    register('hits', len, 'share of hits', kinds=('text_clasification',))") + 1
    assert info.error.endswith(f"(at mt_study_metric/plugin.py:{line} in mt_register_metrics)"), info.error


# ---- plugin_test_fixtures' tiny encoder: samples not under sample/ -----------------------------
def test_sample_words_reads_data_files_wherever_the_package_keeps_them(install):
    install("mt_study_words", "register(task())")  # its sample is in data/, as docs/writing-plugins.md section 7 ships it
    assert {"lovely", "tea", "awful", "smell", "positive"} <= set(sample_words("mt_study_words"))
    assert sample_words("mt_study_words", "sample") == []  # a folder that is not there: no words, no crash


def test_sample_words_over_the_limit_keeps_the_most_frequent(tmp_path, monkeypatch):
    """It kept the alphabetically first words: ids and Latin words before every Cyrillic one (a scale audit)."""
    import json

    (tmp_path / "mt_freq" / "data").mkdir(parents=True)
    (tmp_path / "mt_freq" / "__init__.py").write_text("")
    rows = [{"idx": f"id{i}", "text": f"кошка собака слово{i}"} for i in range(50)]
    (tmp_path / "mt_freq" / "data" / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                                              encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert sample_words("mt_freq", limit=4) == sorted(["idx", "text", "кошка", "собака"])
    assert len(sample_words("mt_freq")) == 4 + 50 + 50


def test_plugin_test_fixtures_take_the_plugin_or_distribution_name_too(install):
    from mtcore.testing.sources import package_of

    plugin = install("mt_study_names", "register(task())")
    assert package_of(plugin) == package_of("mt-study-names") == package_of("mt_study_names") == "mt_study_names"
    with pytest.raises(ValueError, match=r"'mt-no-such-thing' is neither an importable package nor an installed plugin"):
        package_of("mt-no-such-thing")


# ---- mt new-plugin: reserved and derived short names ---------------------------------------------
@pytest.mark.parametrize("name, plugin, fragment", [
    ("mt-user", None, "plugin short name 'user' is reserved for tasks a training config defines (ids user:<task>); "
                      "pass --plugin NAME (the short name derived from 'mt-user' was 'user')"),
    ("mt-unused-name", "user", "plugin short name 'user' is reserved for tasks a training config defines (ids user:<task>); "
                               "pass another --plugin"),
    ("mt-1x", None, "plugin short name '1x' is not valid: use lowercase letters, digits and '_', starting with a letter; "
                    "pass --plugin NAME (the short name derived from 'mt-1x' was '1x')"),
])
def test_short_names_that_cannot_work_are_refused_with_the_fix(name, plugin, fragment):
    with pytest.raises(UsageError) as caught:
        scaffold.plugin_names(name, plugin)
    assert str(caught.value) == fragment


def test_the_scaffolded_pyproject_says_to_adapt_the_package_data(tmp_path):
    _, target, _ = scaffold.create_plugin("mt-study-pkgdata", tmp_path / "p")
    text = (target / "pyproject.toml").read_text()
    assert "change the pattern with your files (sample/*.csv, tasks.yaml, data/*)" in text


# ---- YAML tasks in a plugin ------------------------------------------------------------------------
def test_yaml_errors_name_the_task_once(install):
    install("mt_study_yaml", "register(task())")
    package_dir = Path(importlib.import_module("mt_study_yaml").__file__).parent
    (package_dir / "tasks.yaml").write_text("tasks:\n  - {name: a, kind: text_clasification, labels: [x, y], files: data/train.jsonl}\n")
    with pytest.raises(ConfigError) as caught:
        tasks_from_package("mt_study_yaml")
    assert str(caught.value).startswith("mt_study_yaml/tasks.yaml, task 1 of 1 ('a'): kind 'text_clasification' is not valid")
    with pytest.raises(ConfigError) as caught:
        tasks_from_package("mt_study_yaml", "task.yaml")
    assert str(caught.value) == ("cannot read task definitions mt_study_yaml/task.yaml: No such file or directory; "
                                 "the YAML files in mt_study_yaml are: tasks.yaml")
    with pytest.raises(ConfigError, match=r"No module named 'mt-study-yaml' \(the import package, e.g. 'mt_study_yaml', not the distribution name\)"):
        tasks_from_package("mt-study-yaml")


# ---- the docs' examples do what the docs say ----------------------------------------------------
def _yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", markdown, flags=re.S)


def test_the_tutorials_plugin_yaml_gives_a_local_source_for_the_users_files():
    import yaml

    tutorial = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    section = tutorial.split("## 7.", 1)[1]
    definition = yaml.safe_load(_yaml_blocks(section)[0])["tasks"][0]
    task = task_from_definition(definition, package="mt_toxic", plugin="toxic")
    assert set(task.sources) == {"sample", "local"}
    assert task.sources["local"].kind == "local"


def test_the_hook_rules_name_the_return_rule_and_the_reserved_names():
    hooks = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    rules = hooks.split("## `mt_register_tasks", 1)[0]
    assert "**Call `register`, return nothing.**" in rules
    for name in scaffold.RESERVED_PLUGIN_NAMES:
        assert f"`{name}`" in rules.split("**Reserved names.**", 1)[1]
    assert "must be called `register`" in rules


def test_the_tutorial_says_how_to_set_up_multiple_choice_and_the_registry_fixture():
    tutorial = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    assert "`multiple_choice`, `regression` and `extractive_qa` tasks take no `labels`" in tutorial
    assert 'mt_registry.task("toxic:toxic")' in tutorial
    assert "changes to `pyproject.toml` (the entry point, its group or name) need `pip install -e`" in tutorial


# ---- loading: what `mt plugins` says (mtcore/plugins.py) ---------------------------------------
def _failure(plugin: str) -> str:
    registry = load_registry(refresh=True, warn=False)
    (info,) = [p for p in registry.plugins if p.name == plugin]
    assert info.status == "failed"
    return info.error


def test_a_hook_that_returns_its_tasks_fails_to_load_instead_of_registering_nothing(install):
    plugin = install("mt_study_ret", "return [task()]")
    assert _failure(plugin) == ("PluginError: mt_register_tasks() returned a list, which mtcore ignores: call register(task) "
                                "once per task instead")


def test_a_hook_argument_not_named_register_is_named(install, tmp_path):
    plugin = install("mt_study_arg", "register(task())")
    code = tmp_path / "mt_study_arg" / "mt_study_arg" / "plugin.py"
    code.write_text(code.read_text().replace("def mt_register_tasks(register):\n    register(", "def mt_register_tasks(reg):\n    reg("))
    assert _failure(plugin) == ("PluginError: hook 'mt_register_tasks' takes 'reg': its argument must be named 'register' "
                                "(def mt_register_tasks(register))")


def test_an_entry_point_naming_the_hook_function_is_named(install, tmp_path):
    plugin = install("mt_study_fn", "register(task())")
    entry_points = tmp_path / "mt_study_fn" / "mt_study_fn-0.1.0.dist-info" / "entry_points.txt"
    entry_points.write_text("[mtcore]\nstudy_fn = mt_study_fn.plugin:mt_register_tasks\n")
    assert _failure(plugin) == ("PluginError: entry point 'study_fn = mt_study_fn.plugin:mt_register_tasks' names the function "
                                "'mt_register_tasks', not the module of hooks: write study_fn = \"mt_study_fn.plugin\" in its "
                                "pyproject.toml and reinstall")


def test_a_plugin_named_user_is_refused_at_load(install):
    install("mt_study_user", "register(task())", ep_name="user")
    assert _failure("user").startswith("PluginError: the plugin name 'user' is reserved for the tasks a training config defines")
    assert "user:reviews" not in load_registry(warn=False).tasks


def test_a_task_of_a_plugin_that_failed_is_not_called_unknown(install):
    install("mt_study_failed", "return [task()]")
    with pytest.raises(MtError) as caught:
        load_registry(refresh=True, warn=False).task("study_failed:reviews")
    assert str(caught.value).startswith("task 'study_failed:reviews' is not registered because plugin 'study_failed' "
                                        "(mt-study-failed 0.1.0) failed to load: PluginError: mt_register_tasks() returned a list")


def test_a_plugin_failure_is_said_once_by_the_cli(install):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    install("mt_study_once", "return [task()]")
    load_registry(refresh=True, warn=False)
    for _ in range(2):  # the second command warns again, and is shortened again
        result = CliRunner().invoke(app, ["show-task", "study_once:reviews"])
        warning, error = result.stderr.splitlines()
        assert warning.startswith("warning: plugin 'study_once' (mt-study-once 0.1.0) failed to load: PluginError: mt_register_tasks() "
                                  "returned a list"), warning
        assert error == ("error: task 'study_once:reviews' is not registered because plugin 'study_once' (mt-study-once 0.1.0) "
                         "failed to load (see the warning above)"), error
    with pytest.raises(MtError, match="failed to load: PluginError: mt_register_tasks"):  # the API's error keeps the reason
        load_registry(warn=False).task("study_once:reviews")
