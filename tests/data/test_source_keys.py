"""An unknown key in a task's source (a YAML ``sources:`` entry, a config changing a task's source, a plugin's
``Source.local(...)``) lists exactly the keys that source takes, with did-you-mean: a hub source's, or the reader
options of the formats a files source reads, and the split names."""

from __future__ import annotations

import re

import pytest

from mtcore.errors import ConfigError
from mtcore.source import merge_sources, source_from_dict
from mtcore.task import Source, Task


def _refusal(spec: dict, name: str = "local") -> str:
    with pytest.raises(ConfigError) as caught:
        source_from_dict(name, spec, task_name="t")
    return str(caught.value)


def _takes(message: str) -> str:
    return message.split("; it takes: ", 1)[1]


def test_a_local_source_lists_the_reader_options_of_its_format_only():
    message = _refusal({"kind": "local", "format": "jsonl", "files": {"train": "t.jsonl"}, "sepp": ","})
    assert message.startswith("task 't': source 'local' has unknown key 'sepp' (did you mean 'sep'? 'sep' is a reader option of "
                              "csv, tsv, conll files, not of jsonl files)"), message
    assert _takes(message) == ("format, files, description, cache_dir, the reader options of jsonl files: encoding, row_expand, "
                               "row_filter (also one split's own, under train / validation / test)")
    csv = _refusal({"kind": "local", "format": "csv", "files": {"train": "t.csv"}, "fields": ["a"]})
    assert "unknown key 'fields' (did you mean 'files'?)" in csv
    assert "the reader options of csv files: encoding, header, multiline, names, quoting, row_expand, row_filter, sep (" in csv
    assert "path" not in _takes(csv) and "revision" not in _takes(csv) and "package" not in _takes(csv)  # no hub or sample key


def test_format_auto_reads_the_formats_its_file_names_say():
    named = _refusal({"kind": "local", "files": {"train": "train.csv", "test": "test.jsonl"}, "header_row": 1})
    assert "the reader options of jsonl or csv files: encoding, header, multiline, names, quoting, row_expand, row_filter, sep" in named
    globbed = _refusal({"kind": "local", "files": {"train": "train.*"}, "fild": "data"})
    assert "unknown key 'fild' (did you mean 'field'?)" in globbed and "the reader options of its files (any format): columns" in globbed


def test_split_names_are_keys_of_a_files_source_and_of_a_hubs_splits():
    assert "unknown key 'trian' (did you mean 'train'?)" in _refusal({"kind": "local", "files": {"train": "t.csv"}, "trian": {"sep": ";"}})
    assert _refusal({"kind": "local", "files": {"trian": "t.csv"}}) == (
        "task 't': source 'local': files names unknown split 'trian' (did you mean 'train'?); the splits are: train, validation, test")
    assert "source 'hub': splits names unknown split 'dev' (splits maps mtcore's split names to the hub's: {validation: dev})" in _refusal({"kind": "hub", "path": "x", "splits": {"dev": "dev"}}, "hub")
    hub = _refusal({"kind": "hub", "path": "x", "test": "test_hidden"}, "hub")
    assert hub == ("task 't': source 'hub' has unknown key 'test' (a hub source maps split names under splits: {test: <the hub's split "
                   "name>}); it takes: path, name, revision, data_dir, splits, description")
    assert "unknown key 'nmae' (did you mean 'name'?); it takes: path, name" in _refusal({"kind": "hub", "path": "x", "nmae": "y"}, "hub")


def test_a_sample_source_takes_package_and_needs_it():
    message = _refusal({"kind": "sample", "files": {"train": "t.jsonl"}, "pakage": "x"}, "sample")
    assert "unknown key 'pakage' (did you mean 'package'?)" in message and "cache_dir, package, the reader options" in message
    assert _refusal({"kind": "sample", "files": {"train": "t.jsonl"}}, "sample") == (
        "task 't': source 'sample' needs 'package': the Python package that ships its files (package: my_plugin)")
    assert "(did you mean 'files'?)" in _refusal({"kind": "local", "fles": {"train": "t.jsonl"}})
    assert "needs 'files'" in _refusal({"kind": "local", "format": "csv"})
    assert "(the folder is given with the task, not in its source: tasks.<i>.data_dir" in _refusal(
        {"kind": "local", "files": {"train": "t.csv"}, "data_dir": "data"})


def test_an_unknown_format_is_named_before_its_keys():
    message = _refusal({"kind": "local", "format": "jsonll", "files": {"train": "t.jsonl"}, "sepp": ","})
    assert message.startswith("task 't': source 'local' has unknown data format 'jsonll' (did you mean 'jsonl'?)"), message


def test_a_config_changing_a_tasks_source_is_checked_too():
    base = {"local": Source.local("jsonl", {"train": "t.jsonl"}), "hub": Source.hub("org/data")}
    with pytest.raises(ConfigError, match=re.escape("source 'local' has unknown key 'fles' (did you mean 'files'?); it takes: "
                                                    "format, files, description, cache_dir, the reader options of jsonl files")):
        merge_sources(base, {"local": {"fles": {"train": "u.jsonl"}}}, task_name="t")
    with pytest.raises(ConfigError, match=re.escape("source 'hub' has unknown key 'nmae' (did you mean 'name'?)")) as caught:
        merge_sources(base, {"hub": {"nmae": "ru"}}, task_name="t")
    assert caught.value.field == "sources.hub"  # a config's error names tasks.<i>.sources.hub
    merged = merge_sources(base, {"local": {"files": {"train": "u.csv"}, "format": "csv", "sep": ";", "description": "mine"}})
    assert merged["local"].options == {"format": "csv", "files": {"train": "u.csv"}, "sep": ";"}
    assert merged["local"].description == "mine"  # not a reader option passed to the loader


def test_a_run_config_names_the_source_key(tmp_path):
    from mtcore.train.config_io import load_config
    from mtcore.train.validate import plan_run

    raw = {"encoder": {"tiny": "bert"}, "tasks": [{"id": "nli:nli", "source": "local", "data_dir": str(tmp_path),
                                                   "sources": {"local": {"fles": {"train": "my_train.jsonl"}}}}]}
    with pytest.raises(ConfigError) as caught:
        plan_run(load_config(raw))
    assert str(caught.value).startswith("config key 'tasks.0.sources.local': task 'nli:nli': source 'local' has unknown key 'fles' "
                                        "(did you mean 'files'?)"), caught.value


def test_a_plugins_source_is_checked_when_the_task_is_made():
    with pytest.raises(ConfigError, match=re.escape("task 'r': source 'local' has unknown key 'sep' ('sep' is a reader option of "
                                                    "csv, tsv, conll files, not of jsonl files)")):
        Task(name="r", kind="text_classification", labels=("a", "b"), sources={"local": Source.local("jsonl", {"train": "t.jsonl"}, sep=";")})
    with pytest.raises(ConfigError, match=re.escape("files names unknown split 'dev' (did you mean 'validation'?)")):
        Task(name="r", kind="text_classification", labels=("a", "b"), sources={"local": Source.local("csv", {"dev": "dev.csv"})})


@pytest.mark.parametrize("task, change, said", [
    ("sentiment:mokoron", {"local": {"seeed": 7}}, "source 'local' has unknown key 'seeed' (did you mean 'seed'?); its loader takes: "
                                                   "cache_dir, corpus_files, description, encoding, format, header, package, proportions, seed, sep"),
    ("nli:xnli-ru", {"local": {"quotng": "minimal"}}, "unknown key 'quotng' (did you mean 'quoting'?)"),
    ("nli:headline-cause-simple", {"local": {"swap_augmnet": True}}, "unknown key 'swap_augmnet' (did you mean 'swap_augment'?)"),
    ("rsg:terra", {"local": {"file": {"train": "a.jsonl"}}}, "unknown key 'file' (did you mean 'files'?); its loader takes: cache_dir, "
                                                            "description, files, format, and the reader options of its files: encoding,"),
    ("rsg:terra", {"local": {"files": {"train": "a.jsonl", "dev": "b.jsonl"}}}, "files names unknown split 'dev' (did you mean 'validation'?)"),
    ("rsg:terra", {"hub": {"revison": "main"}}, "source 'hub' has unknown key 'revison' (did you mean 'revision'?)"),
    ("rsg:terra", {"local": {"data_dir": "x"}}, "unknown key 'data_dir' (the folder is given with the task, not in its source"),
])
def test_a_config_changing_a_source_a_plugins_own_loader_reads_is_checked(task, change, said, tmp_path):
    """The bundled tasks read through their plugins' loaders: a typo was "unexpected TypeError" when the data was read,
    or blamed on the data file, and ``mt check --no-data`` said "config ok"."""
    from mtcore.train.config_io import load_config
    from mtcore.train.validate import plan_run

    raw = {"encoder": {"tiny": "bert"}, "tasks": [{"id": task, "source": "sample", "sources": change}]}
    with pytest.raises(ConfigError) as caught:
        plan_run(load_config(raw))
    assert str(caught.value).startswith(f"config key 'tasks.0.sources.{next(iter(change))}': task '{task}': "), caught.value
    assert said in str(caught.value), caught.value


def test_what_a_plugins_own_loader_takes_is_accepted():
    from mtcore.plugins import get_task

    for task, change in (("rsg:terra", {"local": {"encoding": "cp1251", "test": {"encoding": "utf-8"}}}),
                         ("sentiment:mokoron", {"local": {"seed": 3, "proportions": {"train": 0.8, "validation": 0.1, "test": 0.1}}}),
                         ("sentiment:rusentiment", {"local": {"validation_share": 0.2, "encoding": "utf-8"}}),
                         ("nli:headline-cause-simple", {"local": {"swap_augment": True}, "hub": {"revision": "main"}})):
        merged = merge_sources(get_task(task).sources, change, task_name=task)
        assert all(merged[name].options[key] == value for name, keys in change.items() for key, value in keys.items())


def _passing_loader(task, splits, /, *, data_dir=None, files=None, **options):  # a plugin's loader that reads options itself
    return {}


def test_a_loader_passing_options_on_keeps_the_keys_its_own_source_sets():
    source = Source("local", _passing_loader, {"files": {"train": "t.jsonl"}, "lang": "ru"})
    merged = merge_sources({"local": source}, {"local": {"lang": "en", "encoding": "cp1251"}}, task_name="t")
    assert merged["local"].options["lang"] == "en" and merged["local"].options["encoding"] == "cp1251"
    with pytest.raises(ConfigError, match=re.escape("source 'local' has unknown key 'langg' (did you mean 'lang'?); its loader takes: ")):
        merge_sources({"local": source}, {"local": {"langg": "en"}}, task_name="t")
