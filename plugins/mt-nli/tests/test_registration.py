"""The installed distribution registers the four NLI tasks with consistent specs."""

from __future__ import annotations

import pytest

from mtcore.task import TaskKind
from mtcore.testing.checks import check_plugin

TASK_IDS = ("nli:xnli-ru", "nli:headline-cause-simple", "nli:headline-cause-full", "nli:nli")
KNOWN_METRICS = {"accuracy", "f1_macro", "f1_micro", "f1_weighted", "f1_binary", "mcc", "pearson", "spearman", "mse", "exact_match", "token_accuracy",
                 "f1_accuracy_mean", "f1_entity"}


def test_plugin_loads_and_registers_every_task(registry):
    info = next(p for p in registry.plugins if p.name == "nli")
    assert info.status == "ok", info.error
    assert info.distribution == "mt-nli"
    assert sorted(t.id for t in registry.find_tasks(plugin="nli")) == sorted(TASK_IDS)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_spec_is_consistent(registry, task_id):
    task = registry.task(task_id)
    assert task.kind is TaskKind.PAIR_CLASSIFICATION and task.is_pair
    assert set(task.all_metrics) <= KNOWN_METRICS and set(task.all_metrics) <= set(registry.names("metric"))
    assert "sample" in task.sources and "local" in task.sources
    assert task.metadata["sample"] == "synthetic, for demos and tests"
    for class_id, name in enumerate(task.labels):
        assert task.label_id(name) == class_id and task.label_id(class_id) == class_id


def test_xnli_labels_and_alias(registry):
    task = registry.task("nli:xnli-ru")
    assert task.labels == ("entailment", "neutral", "contradiction")  # the hub ClassLabel order
    assert task.label_id("contradictory") == 2
    assert task.sources["hub"].options["path"] == "facebook/xnli" and task.sources["hub"].options["name"] == "ru"
    assert task.metadata["size"] == {"train": 392702, "validation": 2490, "test": 5010}


def test_headline_cause_schemes(registry):
    simple, full = registry.task("nli:headline-cause-simple"), registry.task("nli:headline-cause-full")
    assert simple.labels == ("not_cause", "left_right", "right_left")
    assert len(full.labels) == 7 and full.labels[3:5] == ("left_right_cause", "right_left_cause")
    assert simple.input_map == {"text": "left_title", "text_pair": "right_title"} and simple.id_field == "id"
    assert simple.sources["hub"].options["data_dir"] == "ru_simple" and full.sources["hub"].options["data_dir"] == "ru_full"
    assert simple.sources["hub"].options["revision"] == "refs/convert/parquet"
    assert all(source.options["swap_augment"] is False for source in simple.sources.values())  # off unless asked for


def test_generic_nli_takes_files_from_the_config(registry):
    task = registry.task("nli:nli")
    local = task.sources["local"]
    assert local.kind == "local" and local.options["format"] == "auto"
    assert local.options["files"] == {"train": "train.*", "validation": "validation.*", "test": "test.*"}
    assert task.input_map == {"text": "premise", "text_pair": "hypothesis"}
    assert task.labels == ("entailment", "neutral", "contradiction")


def test_check_plugin_finds_no_problem():
    report = check_plugin("nli")  # sample=True: every sample split goes through mtcore's validation
    assert report.ok, report.format()
