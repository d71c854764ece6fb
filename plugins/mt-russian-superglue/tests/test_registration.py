"""The installed distribution registers the nine tasks, the writer and MuSeRC's metrics, with consistent specs."""

from __future__ import annotations

import pytest

from mtcore.task import TaskKind
from mtcore.testing.checks import check_plugin

TASK_IDS = ("rsg:danetqa", "rsg:terra", "rsg:parus", "rsg:rcb", "rsg:lidirus", "rsg:russe", "rsg:rwsd", "rsg:muserc", "rsg:rucos")
KNOWN_METRICS = {"accuracy", "f1_macro", "f1_micro", "f1_weighted", "f1_binary", "mcc", "pearson", "spearman", "mse", "exact_match", "token_accuracy",
                 "f1_accuracy_mean", "f1_entity", "squad_f1", "squad_em", "muserc_em", "muserc_score", "rucos_f1", "rucos_em"}


def test_plugin_loads_and_registers_every_task(registry):
    info = next(p for p in registry.plugins if p.name == "rsg")
    assert info.status == "ok", info.error
    assert info.distribution == "mt-russian-superglue"
    assert sorted(t.id for t in registry.find_tasks(plugin="rsg")) == sorted(TASK_IDS)


def test_rsg_writer_is_registered(registry):
    writer = registry.component("writer", "rsg:rsg")
    assert writer.ref == "mt_russian_superglue.submission:write_rsg"
    assert callable(writer.load())


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_spec_is_consistent(registry, task_id):
    task = registry.task(task_id)
    assert set(task.all_metrics) <= KNOWN_METRICS and set(task.all_metrics) <= set(registry.names("metric"))
    assert set(task.all_metrics) <= set(registry.names("metric"))
    assert task.main in task.all_metrics
    assert set(task.sources) == {"hub", "local", "sample"}
    assert task.writer == "rsg"
    assert task.metadata["sample"] == "synthetic, for demos and tests"
    assert task.metadata["size"] and task.description
    for class_id, _ in enumerate(task.labels):  # every class round-trips through its stored form
        assert task.label_id(task.label_value(class_id)) == class_id


def test_kinds_labels_and_stored_forms(registry):
    danetqa, terra, parus, rcb, lidirus, russe, rwsd, muserc, rucos = (registry.task(t) for t in TASK_IDS)
    assert danetqa.kind is TaskKind.PAIR_CLASSIFICATION and danetqa.input_map == {"text": "question", "text_pair": "passage"}
    assert danetqa.label_id(True) == 1 and danetqa.label_id(False) == 0 and danetqa.label_id(1) == 1  # JSON bool, hub int
    assert danetqa.label_value(1) is True and danetqa.label_value(0) is False
    assert terra.labels == ("entailment", "not_entailment") and terra.label_value(1) == "not_entailment"
    assert parus.kind is TaskKind.MULTIPLE_CHOICE and parus.label_value(1) == 1 and parus.label_id(1) == 1
    assert rcb.labels == ("entailment", "contradiction", "neutral") and rcb.all_metrics == ("f1_accuracy_mean", "f1_macro", "accuracy")
    assert rcb.main == "f1_accuracy_mean"  # the official score: the mean of macro F1 and accuracy
    assert lidirus.evaluate_only and lidirus.all_metrics == ("mcc",)
    assert lidirus.input_map == {"text": "sentence1", "text_pair": "sentence2"}
    assert set(lidirus.sources["local"].options["files"]) == {"test"}
    assert danetqa.label_id(-1) is None  # hub test labels are -1: unlabelled
    for task in (russe, rwsd):  # JSON bools in the official files, ClassLabel False/True in the export
        assert task.labels == ("False", "True") and task.label_value(1) is True and task.label_id(False) == 0
    assert muserc.label_value(1) == 1 and muserc.label_id(0) == 0 and muserc.main == "muserc_score"  # answers labelled 0/1
    assert rucos.kind is TaskKind.EXTRACTIVE_QA and rucos.main == "rucos_f1"
    assert muserc.sources["local"].options["row_expand"] == "mt_russian_superglue.nested:muserc_rows"
    assert rucos.sources["sample"].options["row_expand"] == "mt_russian_superglue.nested:rucos_rows"


def test_hub_sources_use_the_parquet_export(registry):
    for task_id in TASK_IDS:
        options = registry.task(task_id).sources["hub"].options
        assert options["path"] == "RussianNLP/russian_super_glue"
        assert options["revision"] == "refs/convert/parquet"
        assert options["data_dir"] == task_id.split(":")[1]


def test_check_plugin_finds_no_problem():
    report = check_plugin("rsg")  # sample=True: every sample split goes through mtcore's validation
    assert report.ok, report.format()
    assert sorted(report.task_ids) == sorted(TASK_IDS)
