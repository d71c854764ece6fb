"""A plugin's mistake in ``Task.replace(...)`` (or in a ``Task(...)`` field) is reported as a ``Task(...)`` mistake is:
one line naming the task, the field, the value and the fix, at the plugin's own line (not Python's dataclasses.py)."""

from __future__ import annotations

import pytest
from authoring.plugin_paths import plugin_paths

from mtcore.errors import ConfigError
from mtcore.plugins import load_registry
from mtcore.task import Task

HOOK = '''
from mtcore.hookspecs import hookimpl
from mtcore.task import Task

BASE = Task(name="reviews", kind="text_classification", labels=("negative", "positive"))


@hookimpl
def mt_register_tasks(register):
    register(CALL)
'''


@pytest.fixture
def failure(tmp_path):
    """``failure(call)``: the error line of a plugin whose hook runs ``register(<call>)``, and that call's line."""
    for paths in plugin_paths("mt_replacing_"):
        def load(call: str, package: str = "mt_replacing_task") -> tuple[str, int]:
            text = HOOK.replace("CALL", call)
            plugin = paths.put(tmp_path / package, package, {"plugin.py": text})
            (info,) = [p for p in load_registry(refresh=True, warn=False).plugins if p.name == plugin]
            assert info.status == "failed", info
            return info.error, text.split("\n").index(f"    register({call})") + 1

        yield load


@pytest.mark.parametrize("call, message", [
    ("BASE.replace(labels='positive')",
     "ConfigError: task 'reviews': labels must be a list of label names, not the string 'positive' (write labels=('positive', ...))"),
    ("BASE.replace(kind='text_clasification')", "ConfigError: task 'reviews': kind 'text_clasification' is not valid (did you mean "
                                                "'text_classification'"),
    ("BASE.replace(main_metric='acc')", "main_metric 'acc' is not among its metrics ['accuracy', 'f1_macro'] (did you mean 'accuracy'?)"),
    ("BASE.replace(lables=('a', 'b'))", "ConfigError: task 'reviews': replace() got unknown field 'lables' (did you mean 'labels'"),
    ("BASE.replace(max_length='128')", "task 'reviews': max_length (tokens per example) must be a whole number >= 1, got '128'; "
                                       "write max_length=128"),
    ("BASE.replace(truncation='only_frist')", "truncation 'only_frist' is not one of longest_first, only_first, only_second, "
                                              "do_not_truncate (did you mean 'only_first'?)"),
    ("Task(name='r', kind='text_classification', labels=('a', 'b'), lables=('a', 'b'))",
     "ConfigError: task 'r': Task() got unknown field 'lables' (did you mean 'labels'"),
])
def test_a_mistake_in_replace_names_the_field_and_the_plugins_line(failure, call, message):
    error, line = failure(call)
    assert message in error, error
    assert error.endswith(f"(at mt_replacing_task/plugin.py:{line} in mt_register_tasks)"), error
    assert "dataclasses.py" not in error


def test_replace_and_the_constructor_refuse_with_the_same_line():
    base = Task(name="reviews", kind="text_classification", labels=("negative", "positive"))
    for values in ({"labels": "negative,positive"}, {"evaluate_only": "yes"}, {"max_length": 0}):
        with pytest.raises(ConfigError) as built:
            Task(**{"name": "reviews", "kind": "text_classification", "labels": ("negative", "positive"), **values})
        with pytest.raises(ConfigError) as replaced:
            base.replace(**values)
        assert str(replaced.value) == str(built.value)
    with pytest.raises(ConfigError, match=r"replace\(\) got unknown field 'colour'; Task fields are: name, kind, description, "):
        base.replace(colour="red")
    assert base.replace(max_length=64).max_length == 64 and base.replace(max_length=64).labels == base.labels
