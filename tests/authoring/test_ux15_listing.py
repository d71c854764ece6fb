"""What `mt list-tasks --plugin P` and `mt show-task` tell a plugin author: a plugin that failed to load
is an error, not an empty listing; a local source names the files it reads; a plugin's own sample is
not called synthetic."""

from __future__ import annotations

import pytest
from authoring.plugin_paths import plugin_paths
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.plugins import load_registry

TASKS = '''
from mtcore.hookspecs import hookimpl
from mtcore.task import Source, Task


@hookimpl
def mt_register_tasks(register):
    BODY
    register(Task(name="comments", kind="text_classification", labels=("ok", "toxic"), inputs={"text": "comment_text"},
                  sources={"sample": Source.sample(__package__, "jsonl", {"train": "sample/train.jsonl"}),
                           "local": Source.local("csv", {"train": "train.csv", "validation": "dev.csv", "test": "test.csv"})}))
'''
METRIC_ONLY = '''
from mtcore.hookspecs import hookimpl


@hookimpl
def mt_register_metrics(register):
    register("ux15_zero", "mt_ux15_metric.plugin:zero", "always 0")


def zero(predictions, references):
    return 0.0
'''


@pytest.fixture
def install(tmp_path):
    """``install(package, plugin_module_text)``: a plugin (named after the package, without ``mt_``) on sys.path."""
    for paths in plugin_paths("mt_ux15_"):
        def make(package: str, text: str) -> str:
            plugin = paths.put(tmp_path / package, package, {"plugin.py": text, "sample/train.jsonl": '{"comment_text": "hi", "label": "ok"}\n'})
            load_registry(refresh=True, warn=False)
            return plugin

        yield make


def test_listing_the_tasks_of_a_plugin_that_failed_to_load_is_an_error(install):
    plugin = install("mt_ux15_broken", TASKS.replace("BODY", "raise RuntimeError('no config file')"))
    for name in (plugin, "mt-ux15-broken"):  # the plugin's name or its distribution's
        result = CliRunner().invoke(app, ["list-tasks", "--plugin", name])
        line = result.stderr.strip()
        assert result.exit_code != 0 and len(line.splitlines()) == 1, result.stderr
        assert line.startswith("error: plugin 'ux15_broken' (mt-ux15-broken 0.1.0) failed to load: ") and "no config file" in line, line
        assert "tasks" not in result.stdout, result.stdout  # no empty "0 tasks" table
    assert CliRunner().invoke(app, ["list-tasks", "--json", "--plugin", plugin]).exit_code != 0


def test_a_plugin_that_loaded_without_tasks_still_lists_none(install):
    plugin = install("mt_ux15_metric", METRIC_ONLY)
    result = CliRunner().invoke(app, ["list-tasks", "--plugin", plugin])
    assert result.exit_code == 0 and "0 tasks" in result.stdout, result.output


def test_show_task_names_the_files_each_source_reads_and_does_not_call_a_plugin_sample_synthetic(install):
    plugin = install("mt_ux15_show", TASKS.replace("BODY", "pass"))
    result = CliRunner().invoke(app, ["show-task", f"{plugin}:comments"], terminal_width=300)
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.strip("│ ").split()) for line in result.stdout.splitlines()]
    assert "files │ train: train.csv, validation: dev.csv, test: test.csv (under data_dir)" in lines, result.stdout
    assert "source sample │ sample files shipped in mt_ux15_show" in lines, result.stdout
    assert "files │ train: sample/train.jsonl (in mt_ux15_show)" in lines, result.stdout
    assert "synthetic" not in result.stdout
