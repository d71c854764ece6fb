"""``mtcore.testing`` plugin checks: what they catch, in one report."""

from __future__ import annotations

import json

import pytest

from mtcore.errors import ConfigError
from mtcore.plugins import load_registry
from mtcore.task import Source, Task
from mtcore.testing import PluginCheckError, assert_task_valid, check_plugin, check_task, heavy_imports


def _sample_package(root, name: str, rows: dict[str, list[dict]]) -> str:
    package = root / name
    (package / "sample").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for split, items in rows.items():
        (package / "sample" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    return name


def _task(package: str, **changes) -> Task:
    task = Task(name="reviews", kind="text_classification", labels=("negative", "positive"), inputs={"text": "review"},
                sources={"sample": Source.sample(package, "jsonl", {"train": "sample/train.jsonl", "validation": "sample/validation.jsonl"})},
                plugin="authoring")
    return task.replace(**changes) if changes else task


GOOD = {"train": [{"review": "fine", "label": "positive"}, {"review": "bad", "label": "negative"}],
        "validation": [{"review": "ok", "label": "positive"}]}


def test_a_sound_task_has_no_problems(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    task = _task(_sample_package(tmp_path, "authoring_good_pkg", GOOD))
    assert check_task(task, registry=load_registry(warn=False)) == []
    assert_task_valid(task)


def test_every_spec_problem_is_reported_at_once(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    task = _task(_sample_package(tmp_path, "authoring_spec_pkg", GOOD), preprocess=("no_such_module_xyz:clean",), head="no_such_head",
                 metrics=("accuracy", "acuracy"), writer="no_such_writer")
    messages = [p.message for p in check_task(task, registry=load_registry(warn=False), sample=False)]
    text = "\n".join(messages)
    assert "preprocess[0] 'no_such_module_xyz:clean' does not resolve" in text
    assert "unknown head 'no_such_head'" in text
    assert "unknown metric 'acuracy'" in text and "did you mean 'accuracy'" in text
    assert "unknown writer 'no_such_writer'" in text
    assert all("\n" not in m for m in messages)


@pytest.mark.parametrize("changes,expected", [
    ({"inputs": {"txt": "review"}}, r"task 'reviews': inputs maps unknown column 'txt' \(did you mean 'text'\?\); columns are: text, "),
    ({"labels": "negative positive"}, r"task 'reviews': labels must be a list of label names, not the string 'negative positive' "
                                      r"\(write labels=\('negative', 'positive', \.\.\.\)\)"),
    ({"labels": "neg,pos"}, r"task 'reviews': labels must be a list of label names, not the string 'neg,pos' \(write labels=\('neg', 'pos', \.\.\.\)\)"),
    ({"labels": ("a", "b", "a")}, r"task 'reviews': labels has duplicates \('a'\); each label name must be unique"),
    ({"label_aliases": {"pos": "postive"}}, r"task 'reviews': label_aliases maps 'pos' to 'postive', which is not one of the labels "
                                            r"'negative', 'positive' \(did you mean 'positive'\?\)"),
])
def test_task_refuses_bad_labels_and_inputs_when_built(changes, expected):
    with pytest.raises(ConfigError, match="^" + expected) as info:
        _task("authoring_unused_pkg", **changes)
    assert "\n" not in str(info.value)


def test_a_head_that_does_not_serve_the_kind_is_reported(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    task = _task(_sample_package(tmp_path, "authoring_head_pkg", GOOD), head="regression")
    messages = [p.message for p in check_task(task, registry=load_registry(warn=False), sample=False)]
    assert any("serves regression, not text_classification" in m for m in messages)


def test_a_bad_sample_row_is_reported_with_its_file_and_row(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = {"train": [{"review": "fine", "label": "positive"}, {"review": "x", "label": "negative"}, {"review": "bad", "label": "postive"}],
            "validation": [{"label": "positive"}]}
    task = _task(_sample_package(tmp_path, "authoring_bad_pkg", rows))
    messages = [p.message for p in check_task(task, registry=load_registry(warn=False))]
    train = next(m for m in messages if m.startswith("sample train"))
    assert "train.jsonl row 3" in train and "'postive'" in train
    validation = next(m for m in messages if m.startswith("sample validation"))
    assert "no field 'review'" in validation
    with pytest.raises(PluginCheckError, match="2 problem"):
        assert_task_valid(task, registry=load_registry(warn=False))


def test_a_missing_sample_is_reported(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = _sample_package(tmp_path, "authoring_nosample_pkg", {"train": GOOD["train"]})
    messages = [p.message for p in check_task(_task(package), registry=load_registry(warn=False))]
    assert any("sample file 'sample/validation.jsonl' is missing" in m for m in messages)
    no_sample = _task(package).replace(sources={})
    assert any("has no 'sample' source" in p.message for p in check_task(no_sample, registry=load_registry(warn=False)))


def test_check_plugin_loads_installed_plugins(fixture_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(fixture_plugins))
    monkeypatch.setenv("MT_LOAD_PLUGINS", "full,broken_import")
    full = check_plugin("full", light_import=False)
    assert full.task_ids == ["full:echo"] and len(full.components) == 5
    assert any("has no 'sample' source" in str(p) for p in full.problems)  # the fixture ships no sample
    broken = check_plugin("broken_import")
    assert not broken.ok and "failed to load" in broken.format()
    missing = check_plugin("not-installed-anywhere")
    assert not missing.ok and "is not installed" in missing.problems[0].message


def test_installed_battery_plugins_pass_the_checks():
    for name in ("rsg", "nli", "sentiment"):
        report = check_plugin(name, light_import=False)
        assert report.task_ids, name
        assert report.ok, report.format()


def test_heavy_imports_are_detected_in_a_fresh_interpreter(tmp_path, monkeypatch):
    (tmp_path / "authoring_light_mod.py").write_text("import json\n")
    (tmp_path / "authoring_heavy_mod.py").write_text("import torch\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert heavy_imports("authoring_light_mod") == []
    assert heavy_imports("authoring_heavy_mod") == ["torch"]
