"""Tasks defined as YAML: inline in a training config, or shipped as data in a plugin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from clitools import run_mt
from mtcore.errors import ConfigError
from mtcore.yaml_tasks import task_from_definition, tasks_from_package, tasks_from_yaml

TERRA = {"name": "terra", "kind": "pair_classification", "labels": ["entailment", "not_entailment"],
         "inputs": {"text": "premise", "text_pair": "hypothesis"}, "metrics": ["accuracy", "f1_macro"], "max_length": 256}


def _terra_sample(folder: Path) -> Path:
    """The rsg plugin's TERRa sample files, copied into ``folder`` (train.jsonl, val.jsonl)."""
    folder.mkdir(parents=True, exist_ok=True)
    sample = resources.files("mt_russian_superglue").joinpath("sample", "TERRa")
    for name in ("train.jsonl", "val.jsonl"):
        (folder / name).write_bytes(sample.joinpath(name).read_bytes())
    return folder


def _train(config: dict, tmp_path: Path, name: str) -> dict:
    from mtcore.train.trainer import Trainer

    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return Trainer(path, output_dir=tmp_path / f"run-{name}").train()


def test_an_inline_yaml_task_trains_and_evaluates_exactly_like_the_plugin_task(tmp_path):
    _terra_sample(tmp_path / "data")
    common = {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"tiny": "bert"},
              "schedule": {"max_steps": 4}, "batching": {"batch_size": 4},
              "checkpoint": {"every": None}, "logging": {"every": 1, "progress": "none", "plot": False}}
    inline = {**TERRA, "files": {"train": "data/train.jsonl", "validation": "data/val.jsonl"}, "reader": {"encoding": "utf-8-sig"}}
    plugin = _train({**common, "tasks": [{"id": "rsg:terra", "source": "sample"}]}, tmp_path, "plugin")
    defined = _train({**common, "tasks": [{"define": inline}]}, tmp_path, "inline")

    assert defined["steps"] == plugin["steps"] == 4
    [(plugin_id, plugin_task)] = plugin["tasks"].items()
    [(inline_id, inline_task)] = defined["tasks"].items()
    assert (plugin_id, inline_id) == ("rsg:terra", "user:terra")
    assert inline_task["final"].keys() == plugin_task["final"].keys() >= {"accuracy", "f1_macro"}
    assert defined["examples_seen"] == plugin["examples_seen"] == 16
    # the saved models describe the task the same way (batch order differs: it is seeded by the task id)
    saved = [json.loads((tmp_path / f"run-{name}" / "model" / "mtcore.json").read_text())["tasks"] for name in ("plugin", "inline")]
    plugin_info, inline_info = saved[0]["rsg:terra"], saved[1]["user:terra"]
    for key in ("kind", "labels", "inputs", "head_class", "num_labels", "metrics", "max_length", "truncation"):
        assert inline_info.get(key) == plugin_info.get(key), key


def test_definition_files_are_relative_to_the_config_folder_or_data_dir(tmp_path):
    from mtcore.data.task_data import load_raw

    _terra_sample(tmp_path / "cfg" / "data")
    definition = {**TERRA, "files": {"train": "data/train.jsonl"}, "reader": {"encoding": "utf-8-sig"}}
    task = task_from_definition(definition, base_dir=tmp_path / "cfg", plugin="user")
    assert task.id == "user:terra" and set(task.sources) == {"local", "sample"}
    rows = load_raw(task, "sample", splits=["train"], cache_dir=tmp_path / "cache")["train"]
    assert rows.num_rows > 0 and {"premise", "hypothesis", "label"} <= set(rows.column_names)
    other = _terra_sample(tmp_path / "elsewhere" / "data").parent
    assert load_raw(task, "local", data_dir=other, splits=["train"], cache_dir=tmp_path / "cache")["train"].num_rows == rows.num_rows


def test_a_defined_local_sources_twin_reads_its_folder_only_not_every_folder_below(tmp_path):
    """The sample twin of ``sources: {local: ...}`` reads relative to the defining folder; it looked in every sub-folder
    (as a data_dir may hold an unpacked zip), so a config beside a data folder trained on whatever file matched there."""
    from mtcore.data.task_data import load_raw
    from mtcore.errors import DataError

    _terra_sample(tmp_path / "cfg" / "some" / "other" / "data")
    definition = {**TERRA, "sources": {"local": {"kind": "local", "files": {"train": "train.jsonl"}, "encoding": "utf-8-sig"}}}
    task = task_from_definition(definition, base_dir=tmp_path / "cfg", plugin="user")
    with pytest.raises(DataError, match="no file matches 'train.jsonl'"):
        load_raw(task, "sample", splits=["train"], cache_dir=tmp_path / "cache")
    folder = tmp_path / "cfg" / "some" / "other"  # a data_dir above the files is still searched: an unpacked zip
    assert load_raw(task, "local", data_dir=folder, splits=["train"], cache_dir=tmp_path / "cache")["train"].num_rows > 0


def test_a_yaml_file_of_definitions(tmp_path):
    (tmp_path / "tasks.yaml").write_text(textwrap.dedent("""\
        tasks:
          - name: a
            kind: text_classification
            labels: [neg, pos]
            files: {train: a/train.csv}
          - name: b
            kind: regression
            files: b.jsonl
        """))
    first, second = tasks_from_yaml(tmp_path / "tasks.yaml")
    assert (first.name, first.kind.value, first.labels) == ("a", "text_classification", ("neg", "pos"))
    assert first.sources["local"].options["files"] == {"train": "a/train.csv"}
    assert first.sources["sample"].options["base_dir"] == str(tmp_path)
    assert second.sources["local"].options["files"] == {"train": "b.jsonl"}


@pytest.mark.parametrize("text, fragment", [
    ("tasks:\n  - {name: a, kind: text_classification, lables: [x, y], files: a.jsonl}\n", "tasks.yaml, task 1 of 1 ('a'): unknown key 'lables' (did you mean 'labels'"),
    ("tasks:\n  - {name: a, kind: regression, fles: a.jsonl}\n", "unknown key 'fles' (did you mean 'files'"),
    ("tasks:\n  - {name: a, kind: regression, reader: {encoding: utf-8}, file: a.jsonl}\n",  # was blamed on 'reader'
     "task 1 of 1 ('a'): unknown key 'file' (did you mean 'files'?); 'format' and 'reader' need 'files' beside them"),
    ("tasks:\n  - {name: a, kind: text_clasification, labels: [x, y]}\n", "kind 'text_clasification' is not valid"),
    ("tasks:\n  - {name: a, kind: regression, files: {train: [1, 2]}}\n", "files.train must be a path"),
    ("tasks:\n  - {name: a, kind: regression, files: {train: a.jsonl, valid: b.jsonl}}\n",
     "task 1 of 1 ('a'): files.valid is not a split (did you mean 'validation'?); the splits are train, validation, test"),
    ("tasks:\n  - {name: a, kind: regression, files: {trian: a.jsonl}}\n", "files.trian is not a split (did you mean 'train'?)"),
    ("tasks:\n  - {name: a, kind: regression, format: xml, files: a.xml}\n", "format 'xml' is not one of"),
    ("tasks:\n  - {name: a, kind: regression}\n  - {name: a, kind: regression}\n", "task 'a' is defined twice"),
    ("tasks: [\n", "line"),
    ("nothing: here\n", "expected a 'tasks:' list"),
])
def test_definition_mistakes_are_one_line_config_errors(tmp_path, text, fragment):
    path = tmp_path / "tasks.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        tasks_from_yaml(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


YAML_PLUGIN = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mt-authoring-yaml"
        version = "0.0.1"

        [project.entry-points.mtcore]
        yamlonly = "mt_authoring_yaml.plugin"

        [tool.setuptools.packages.find]
        include = ["mt_authoring_yaml*"]

        [tool.setuptools.package-data]
        mt_authoring_yaml = ["tasks.yaml", "data/*.jsonl"]
        """,
    "mt_authoring_yaml/__init__.py": "",
    "mt_authoring_yaml/plugin.py": """\
        from mtcore.hookspecs import hookimpl
        from mtcore.yaml_tasks import register_yaml_tasks


        @hookimpl
        def mt_register_tasks(register):
            register_yaml_tasks(register, "mt_authoring_yaml", "tasks.yaml")
        """,
    "mt_authoring_yaml/tasks.yaml": """\
        tasks:
          - name: terra-copy
            kind: pair_classification
            labels: [entailment, not_entailment]
            inputs: {text: premise, text_pair: hypothesis}
            files: {train: data/train.jsonl, validation: data/val.jsonl}
            reader: {encoding: utf-8-sig}
        """,
}


def test_a_plugin_can_ship_its_tasks_as_yaml_data(tmp_path, monkeypatch):
    from mtcore.testing import check_plugin

    project = tmp_path / "mt-authoring-yaml"
    for rel, text in YAML_PLUGIN.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(textwrap.dedent(text))
    shutil.copytree(_terra_sample(tmp_path / "terra"), project / "mt_authoring_yaml" / "data")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--target", str(site), str(project)], check=True, capture_output=True, text=True)

    listed = run_mt("list-tasks", "--json", "--plugin", "yamlonly", plugin_path=site)
    assert [t["id"] for t in json.loads(listed.stdout)] == ["yamlonly:terra-copy"]

    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("MT_LOAD_PLUGINS", "yamlonly")
    report = check_plugin("yamlonly")
    assert report.ok, report.format()
    [task] = tasks_from_package("mt_authoring_yaml")
    assert task.sources["sample"].options["package"] == "mt_authoring_yaml"
