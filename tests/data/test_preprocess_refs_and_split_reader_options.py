"""Audit leftovers, data side: a misspelt ``module:function`` preprocess step gets "did you mean"; ``reader:`` takes a
split's own options (``{train: {sep: ";"}}``), so a CSV's separator need not reach a JSON Lines file of the same task."""

from __future__ import annotations

import json

import pytest

from mtcore.errors import ConfigError, PluginError

STEPS = '''
def lowercase_text(row):
    row["text"] = row["text"].lower()
    return row

LOWERCASE_TEST = 1  # not a function: never suggested
'''


@pytest.fixture()
def steps_module(tmp_path, monkeypatch):
    (tmp_path / "leftover18_steps.py").write_text(STEPS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "leftover18_steps"


def test_a_misspelt_preprocess_function_gets_did_you_mean(steps_module):
    from mtcore.data.preprocess import Preprocessor, build_preprocessor
    from mtcore.refs import near_attribute, reference_problem

    ref = f"{steps_module}:lowercase_txt"
    for build in (Preprocessor, build_preprocessor):  # reading the data
        with pytest.raises(PluginError, match=r"has no attribute 'lowercase_txt' \(did you mean 'lowercase_text'\?\)"):
            build([ref])
    assert "(did you mean 'lowercase_text'?)" in reference_problem(ref)  # mt check / mt train, before any data
    near = f"{steps_module}:LOWERCASE_TES"
    assert near_attribute(near) == " (did you mean 'LOWERCASE_TEST'?)"  # any name, as for registry references
    assert reference_problem(near).endswith("(did you mean 'lowercase_text'?)")  # a function: only callables


def test_mt_check_names_the_near_preprocess_function(steps_module, tmp_path, monkeypatch):
    from mtcore.task import Task
    from mtcore.train.validate import _check_preprocess

    class Entry:
        preprocess, define = None, {"name": "x"}

    task = Task(name="x", kind="text_classification", labels=("a", "b"), preprocess=(f"{steps_module}:lowercase_tex",))
    with pytest.raises(ConfigError) as error:
        _check_preprocess(Entry(), task, 0)
    assert str(error.value).startswith("config key 'tasks.0.define.preprocess': task 'x': preprocess reference "
                                       f"'{steps_module}:lowercase_tex' does not resolve: '{steps_module}' has no attribute "
                                       "'lowercase_tex' (did you mean 'lowercase_text'?); "), error.value


def _definition(reader) -> dict:
    return {"name": "mixed", "kind": "text_classification", "labels": ["neg", "pos"],
            "files": {"train": "train.csv", "test": "test.jsonl"}, "reader": reader}


def test_reader_options_of_one_split_reach_only_its_files(tmp_path):
    from mtcore.data.task_data import load_raw
    from mtcore.predict.inputs import reader_options_of
    from mtcore.yaml_tasks import task_from_definition

    (tmp_path / "train.csv").write_text("text;label\ngood;pos\nbad;neg\n", encoding="utf-8")
    (tmp_path / "test.jsonl").write_text(json.dumps({"text": "fine"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="test.jsonl: unknown jsonl reader option 'sep'"):  # one reader for both files
        load_raw(task_from_definition(_definition({"sep": ";"}), base_dir=tmp_path), splits=("train", "test"),
                 cache_dir=tmp_path / "c")
    task = task_from_definition(_definition({"train": {"sep": ";"}, "encoding": "utf-8"}), base_dir=tmp_path)
    raw = load_raw(task, splits=("train", "test"), cache_dir=tmp_path / "c")
    assert raw["train"]["text"] == ["good", "bad"] and raw["test"]["text"] == ["fine"]
    assert reader_options_of(task, "csv") == {"encoding": "utf-8", "sep": ";"}  # mt predict -i new.csv: read as train.csv
    assert reader_options_of(task, "jsonl") == {"encoding": "utf-8"}


@pytest.mark.parametrize("reader, message", [
    ({"dev": {"sep": ";"}}, "task 'mixed': reader.dev is not a split (did you mean 'validation'?); a split's own reader "
                            "options go under its name in files: train, test"),
    ({"trian": {"sep": ";"}}, "reader.trian is not a split (did you mean 'train'?)"),
    ({"validation": {"sep": ";"}}, "reader.validation gives the validation files' own reader options, but files has no "
                                   "validation split; files has: train, test"),
    ({"train": {"spe": ";"}}, "reader.train: unknown reader option 'spe' (did you mean 'sep'?)"),
    ({"train": ";"}, "reader.train: a split's own reader options are a mapping, e.g. {encoding: cp1251}, not ';'"),
    ("utf-8", "'reader' maps reader options to values"),
])
def test_a_reader_key_that_is_no_split_of_the_files_is_refused(tmp_path, reader, message):
    from mtcore.yaml_tasks import task_from_definition

    with pytest.raises(ConfigError) as error:
        task_from_definition(_definition(reader), base_dir=tmp_path)
    assert message in str(error.value), error.value


def test_a_sources_split_options_are_checked_too():
    from mtcore.source import source_from_dict

    source = source_from_dict("local", {"format": "auto", "files": {"train": "t.csv"}, "train": {"sep": ";"}}, task_name="t")
    assert source.options["train"] == {"sep": ";"}
    with pytest.raises(ConfigError, match=r"source 'local' key 'train': unknown reader option 'sepp' \(did you mean 'sep'\?\)"):
        source_from_dict("local", {"files": {"train": "t.csv"}, "train": {"sepp": ";"}}, task_name="t")
