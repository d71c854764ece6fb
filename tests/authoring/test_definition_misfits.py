"""A plugin task whose own definition names a head or a metric of another task kind: ``mt check`` says the plugin's
definition chose it (it blamed a config key 'tasks.0.head' the config did not have), and ``check_plugin``, which a
plugin's own test calls, reports the metric too (it passed, and only ``mt check`` refused the task)."""

from __future__ import annotations

import pytest

from mtcore import plugins
from mtcore.errors import ConfigError
from mtcore.task import Source, Task
from mtcore.testing.checks import check_components
from mtcore.train.config_io import load_config
from mtcore.train.validate import plan_run


def _register(monkeypatch, **fields) -> Task:
    monkeypatch.setattr(plugins, "_cache", {})
    task = Task(name="misfit", kind="multiple_choice", sources={"sample": Source.sample("mt_nli", "jsonl", {"train": "x.jsonl"})}, **fields)
    plugins.register_task(task)
    return plugins.load_registry().task("user:misfit")


def _plan_error(overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        plan_run(load_config({"encoder": {"tiny": "bert"}, "tasks": ["user:misfit"]}, list(overrides)))
    return str(info.value)


def test_a_head_of_another_kind_in_the_definition_is_blamed_on_the_definition(monkeypatch):
    _register(monkeypatch, head="classification")
    assert _plan_error() == ("task 'user:misfit' (from plugin 'user') names head 'classification', which serves text_classification, "
                             "pair_classification, not multiple_choice: fix the task's definition, or set config key 'tasks.0.head' "
                             "to a head for multiple_choice (mt components head lists them)")
    assert _plan_error(["tasks.0.head=classification"]).startswith("config key 'tasks.0.head': head 'classification' serves")


def test_a_metric_of_another_kind_in_the_definition_is_blamed_on_it_and_check_plugin_reports_it(monkeypatch):
    task = _register(monkeypatch, metrics=("accuracy", "pearson"))
    assert _plan_error() == ("metric 'pearson' scores regression tasks, not multiple_choice (task 'user:misfit'); choose another metric "
                             "(mt components metric lists them): it comes from plugin 'user''s definition of the task; fix that, or "
                             "set config key 'tasks.0.metrics'")
    assert check_components(task, plugins.load_registry()) == [
        "metric 'mtcore:pearson' scores regression tasks, not multiple_choice; choose another metric"]


@pytest.mark.parametrize("kind, fragment", [
    ("regression", "a regression task predicts a number and takes no labels (it has ['low', 'high']); remove 'labels'"),
    ("multiple_choice", "a multiple_choice task's label is the index of the right choice, so it takes no labels (it has ['low', "
                        "'high'], which nothing reads); remove 'labels'"),
])
def test_check_plugin_reports_labels_a_kind_does_not_read(kind, fragment):
    """Labels on a multiple_choice task were accepted without a word (nothing reads them: its label is a choice's index)."""
    from mtcore.testing.checks import check_labels

    assert check_labels(Task(name="t", kind=kind, labels=("low", "high"))) == [fragment]
    assert check_labels(Task(name="t", kind=kind)) == []
