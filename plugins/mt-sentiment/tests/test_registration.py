"""The installed distribution registers the three sentiment tasks with consistent specs."""

from __future__ import annotations

import pytest

from mtcore.task import TaskKind
from mtcore.testing.checks import check_plugin

TASK_IDS = ("sentiment:mokoron", "sentiment:rusentiment", "sentiment:sentiment")
KNOWN_METRICS = {"accuracy", "f1_macro", "f1_micro", "f1_weighted", "f1_binary", "mcc", "pearson", "spearman", "mse", "exact_match", "token_accuracy",
                 "f1_accuracy_mean", "f1_entity"}


def test_plugin_loads_and_registers_every_task(registry):
    info = next(p for p in registry.plugins if p.name == "sentiment")
    assert info.status == "ok", info.error
    assert info.distribution == "mt-sentiment"
    assert sorted(t.id for t in registry.find_tasks(plugin="sentiment")) == sorted(TASK_IDS)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_spec_is_consistent(registry, task_id):
    task = registry.task(task_id)
    assert task.kind is TaskKind.TEXT_CLASSIFICATION and not task.is_pair
    assert set(task.all_metrics) <= KNOWN_METRICS and set(task.all_metrics) <= set(registry.names("metric"))
    assert {"local", "sample"} <= set(task.sources)
    assert "hub" not in task.sources  # none of these corpora is on the hub
    assert task.metadata["sample"] == "synthetic, for demos and tests"
    for class_id, name in enumerate(task.labels):
        assert task.label_id(name) == class_id


def test_mokoron_split_is_recorded(registry):
    task = registry.task("sentiment:mokoron")
    local = task.sources["local"].options
    assert local["seed"] == 42 and local["proportions"] == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert local["sep"] == ";" and local["header"] is None and local["corpus_files"] == {"positive": "positive.csv", "negative": "negative.csv"}
    assert "seed" in task.metadata["split"] and task.metadata["size"]["total"] == 226834
    assert task.input_map == {"text": "ttext"} and task.labels == ("negative", "positive")


def test_rusentiment_and_generic(registry):
    rusentiment = registry.task("sentiment:rusentiment")
    assert rusentiment.labels == ("positive", "negative", "neutral", "speech", "skip")
    assert rusentiment.sources["local"].options["files"] == {"train": "rusentiment_random_posts.csv", "test": "rusentiment_test.csv"}
    assert "on request" in rusentiment.metadata["licence"]
    generic = registry.task("sentiment:sentiment")
    assert generic.sources["local"].options == {"format": "auto", "files": {"train": "train.*", "validation": "validation.*", "test": "test.*"}}


def test_check_plugin_finds_no_problem():
    report = check_plugin("sentiment")  # sample=True: every sample split goes through mtcore's validation
    assert report.ok, report.format()
