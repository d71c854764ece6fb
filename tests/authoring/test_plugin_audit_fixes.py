"""Fixes of the plugin-author audit: a plugin's mistake fails that plugin, at its own line, with the fix.

* ``register(..., knids=...)`` / ``kind=`` is refused at the call (did you mean 'kinds'), not kept as data;
* a ``Task`` / component ``description`` or a ``metadata`` key of the wrong type fails only its plugin,
  so ``mt list-tasks`` / ``mt components`` keep working for the others;
* a missing import inside the plugin module or a SyntaxError names the plugin's file and line;
* ``mt plugins`` names a plugin whose module imports torch;
* a YAML task's misspelled ``sources:`` key is refused with did-you-mean.
"""

from __future__ import annotations

import pytest
from authoring.plugin_paths import plugin_paths
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.errors import ConfigError, UsageError
from mtcore.plugins import load_registry, register_component
from mtcore.refs import BadReference
from mtcore.yaml_tasks import task_from_definition

HEAD = '''from mtcore.hookspecs import hookimpl
from mtcore.task import Task
'''
TASK = '''

@hookimpl
def mt_register_tasks(register):
    register(Task(name="reviews", kind="text_classification", labels=("bad", "good")FIELDS))
'''
COMPONENT = '''

@hookimpl
def mt_register_HOOK(register):
    register(ARGS)
'''


@pytest.fixture
def install(tmp_path):
    """``install(package, plugin_text, **files)``: a plugin (named after the package without ``mt_``) on sys.path;
    returns its PluginInfo after a fresh load."""
    for paths in plugin_paths("mt_audit_"):
        def make(package: str, text: str, **files: str):
            plugin = paths.put(tmp_path / package, package, {"plugin.py": text, **{f"{k}.py": v for k, v in files.items()}})
            registry = load_registry(refresh=True, warn=False)
            return next(p for p in registry.plugins if p.name == plugin)

        yield make


def _component(hook: str, args: str) -> str:
    return HEAD + COMPONENT.replace("HOOK", hook).replace("ARGS", args)


# ---- item 1: register()'s keywords -----------------------------------------------------------------
def test_a_misspelled_kinds_keyword_fails_the_plugin_at_its_register_line(install):
    info = install("mt_audit_knids", _component("metrics", '"bal", "json:dumps", "mean recall", knids=("regression",)'))
    assert info.status == "failed"
    assert "unknown keyword 'knids' (did you mean 'kinds'?)" in info.error, info.error
    assert "(at mt_audit_knids/plugin.py:7 in mt_register_metrics)" in info.error, info.error
    assert not any(c.endswith(":bal") for c in load_registry().components["metric"])


def test_kind_singular_suggests_kinds_instead_of_an_internal_type_error(install):
    info = install("mt_audit_kind", _component("heads", '"pool", "json:dumps", "a head", kind=("text_classification",)'))
    assert info.status == "failed" and "unknown keyword 'kind' (did you mean 'kinds'?)" in info.error, info.error
    assert "multiple values" not in info.error and "add_component" not in info.error


def test_a_sampler_refuses_kinds_and_a_writer_keeps_needs_ids(install):
    info = install("mt_audit_sampler", _component("samplers", '"s", "json:dumps", "x", kinds=("regression",)'))
    assert info.status == "failed" and "sampler 's': register() got the unknown keyword 'kinds'" in info.error, info.error
    info = install("mt_audit_writer", _component("writers", '"w", "json:dumps", "x", needs_ids=False'))
    assert info.status == "ok", info.error


def test_register_component_from_user_code_refuses_an_unknown_keyword():
    with pytest.raises(UsageError, match=r"unknown keyword 'kind' \(did you mean 'kinds'\?\)"):
        register_component("metric", "audit_user_metric", "json:dumps", "x", kind=("regression",))


# ---- item 2: wrong-typed description / metadata fail their plugin only -----------------------------
@pytest.mark.parametrize("fields, words", [(', description=("Toxic", "comments")', "description must be a string"),
                                           (', metadata={2019: "year"}', "metadata key 2019 is not a string")])
def test_a_task_field_of_the_wrong_type_fails_its_plugin_and_the_listing_still_works(install, fields, words):
    info = install("mt_audit_task", HEAD + TASK.replace("FIELDS", fields))
    assert info.status == "failed" and words in info.error and "(at mt_audit_task/plugin.py:" in info.error, info.error
    result = CliRunner().invoke(app, ["list-tasks"], terminal_width=300)
    assert result.exit_code == 0 and "rsg:terra" in result.stdout, result.output
    assert "TypeError" not in result.output


def test_kinds_passed_as_the_description_fail_the_plugin_and_mt_components_still_works(install):
    info = install("mt_audit_posdesc", _component("heads", '"pool", "json:dumps", ("text_classification",)'))
    assert info.status == "failed" and "head 'pool': description must be a string, got tuple" in info.error, info.error
    assert "pass kinds=... by keyword" in info.error
    result = CliRunner().invoke(app, ["components", "head"], terminal_width=300)
    assert result.exit_code == 0 and "mtcore:classification" in result.stdout, result.output


# ---- items 5, 6: import failures inside the plugin name its file and line --------------------------
def test_a_missing_dependency_is_located_in_the_plugin_and_the_fix_is_to_install_it(install):
    info = install("mt_audit_dep", HEAD + "import emoji_cleaner_not_installed  # noqa\n" + TASK.replace("FIELDS", ""))
    assert info.status == "failed"
    assert "(at mt_audit_dep/plugin.py:3 in <module>)" in info.error, info.error
    assert "install 'emoji_cleaner_not_installed' and declare it in the dependencies" in info.error
    assert "entry point" not in info.error


def test_a_missing_helper_module_of_the_plugin_is_named_and_a_wrong_entry_point_still_is(install, tmp_path):
    info = install("mt_audit_helper", HEAD + "from mt_audit_helper.helpers import clean  # noqa\n" + TASK.replace("FIELDS", ""))
    assert info.status == "failed" and "(at mt_audit_helper/plugin.py:3 in <module>)" in info.error, info.error
    assert "the plugin's package has no module 'mt_audit_helper.helpers'" in info.error
    # when the entry point itself names no module, the entry point is what to fix
    (tmp_path / "mt_audit_helper" / "mt_audit_helper-0.1.0.dist-info" / "entry_points.txt").write_text(
        "[mtcore]\naudit_helper = mt_audit_helper.plugn\n")
    info = next(p for p in load_registry(refresh=True, warn=False).plugins if p.name == "audit_helper")
    assert "(did you mean 'mt_audit_helper.plugin'?) (importing entry point 'audit_helper = mt_audit_helper.plugn'" in info.error, info.error


def test_a_syntax_error_is_located_in_the_plugin_file_not_in_importlib(install):
    info = install("mt_audit_syntax", HEAD + TASK.replace("FIELDS", "").replace("def mt_register_tasks(register):", "def mt_register_tasks(register)"))
    assert info.status == "failed" and info.error.startswith("SyntaxError: "), info.error
    assert "(at mt_audit_syntax/plugin.py:6)" in info.error and "importlib" not in info.error, info.error


# ---- item 7: mt plugins names a plugin that imports torch -----------------------------------------
def test_mt_plugins_names_a_plugin_that_imports_torch(install):
    info = install("mt_audit_heavy", "import torch  # noqa: F401\n" + HEAD + TASK.replace("FIELDS", ""))
    assert info.status == "ok" and info.heavy == ["torch"], info
    result = CliRunner().invoke(app, ["plugins"], terminal_width=300)
    assert "plugin 'audit_heavy' (mt-audit-heavy) imports torch when it is loaded" in result.stderr, result.output
    assert "plugin 'rsg'" not in result.stderr
    assert next(p for p in load_registry().plugins if p.name == "rsg").heavy == []


# ---- item 8: a YAML task's sources: entry ----------------------------------------------------------
def test_a_misspelled_key_of_a_yaml_source_is_refused_with_did_you_mean():
    definition = {"name": "comments", "kind": "text_classification", "labels": ["ok", "toxic"],
                  "sources": {"local": {"kind": "local", "format": "jsonl", "file": {"train": "train.jsonl"}}}}
    with pytest.raises(ConfigError, match=r"task 'comments': source 'local' has unknown key 'file' \(did you mean 'files'\?\)"):
        task_from_definition(definition)
    definition["sources"]["local"] = {"kind": "local", "format": "csv", "files": {"train": "a.csv"}, "delimiter": ";"}
    with pytest.raises(ConfigError, match=r"unknown key 'delimiter' \(did you mean 'sep'\?\)"):
        task_from_definition(definition)
    definition["sources"]["local"] = {"kind": "local", "format": "csv", "files": {"train": "a.csv"}, "sep": ";", "encoding": "utf-8"}
    assert task_from_definition(definition).sources["local"].options["sep"] == ";"


# ---- items 9, 10, 11 (low) ------------------------------------------------------------------------
def test_a_misspelled_hook_is_located_at_its_definition(install):
    info = install("mt_audit_hookname", HEAD + TASK.replace("FIELDS", "").replace("def mt_register_tasks(", "def mt_register_task("))
    assert "unknown hook 'mt_register_task' (did you mean 'mt_register_tasks'?) (at mt_audit_hookname/plugin.py:5)" in info.error, info.error


def test_a_misspelled_component_class_gets_did_you_mean(install):
    info = install("mt_audit_ref", _component("heads", '"pool", "mt_audit_ref.heads:AttentionPolHead", "a head", kinds=("text_classification",)'),
                   heads="class AttentionPoolHead:\n    pass\n")
    assert info.status == "ok", info.error
    with pytest.raises(BadReference, match=r"has no attribute 'AttentionPolHead' \(did you mean 'AttentionPoolHead'\?\) \(from reference"):
        load_registry().component("head", "audit_ref:pool").load()


def test_new_plugin_refuses_conftest(tmp_path):
    result = CliRunner().invoke(app, ["new-plugin", "conftest", "--dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "clashes with Python or mtcore" in result.output, result.output
    assert not (tmp_path / "out").exists()
