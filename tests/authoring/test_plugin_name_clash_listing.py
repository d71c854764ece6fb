"""Two distributions naming the same plugin: the first by distribution name loads, the other fails naming both.
``mt list-tasks --plugin NAME`` exited 1 with the loser's failure and listed nothing; it lists the loaded one's tasks,
with the other's failure as a warning."""

from __future__ import annotations

import pytest
from authoring.plugin_paths import plugin_paths
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.plugins import load_registry

PLUGIN = '''from mtcore.hookspecs import hookimpl
from mtcore.task import Task


@hookimpl
def mt_register_tasks(register):
    register(Task(name="NAME", kind="text_classification", labels=("bad", "good")))
'''


@pytest.fixture
def clash(tmp_path):
    for paths in plugin_paths("mt_clash_"):
        paths.put(tmp_path / "a", "mt_clash_alpha", {"plugin.py": PLUGIN.replace("NAME", "alpha_reviews")}, ep_name="clashing")
        paths.put(tmp_path / "b", "mt_clash_beta", {"plugin.py": PLUGIN.replace("NAME", "beta_reviews")}, ep_name="clashing")
        load_registry(refresh=True, warn=False)
        yield


def test_list_tasks_of_a_plugin_name_two_distributions_use_lists_the_loaded_one(clash):
    result = CliRunner().invoke(app, ["list-tasks", "--plugin", "clashing"])
    assert result.exit_code == 0, result.output
    assert "clashing:alpha_reviews" in result.stdout and "beta_reviews" not in result.stdout
    assert "mt-clash-beta" in result.stderr and "mt-clash-alpha" in result.stderr  # the loser's failure, naming both
    loser = CliRunner().invoke(app, ["list-tasks", "--plugin", "mt-clash-beta"])  # asked for by its distribution: it failed
    assert loser.exit_code == 1 and "mt-clash-beta" in loser.stderr
