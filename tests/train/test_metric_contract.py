"""A metric's contract (one number) and what happens when it is broken, errors that end a run, unscored splits.

An audit found: a plugin metric returning a string ended the run, after all the training, with
"unexpected ValueError: could not convert string to float" (mt check said "config ok"); such a run
left no ``error`` event, so mt compare called it "still running"; an evaluation split without
labels was scored silently as "aggregate nan".
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from mtcore.errors import ConfigError
from mtcore.cli.app import app
from mtcore.plugins import register_component
from mtcore.train.losses import SingleTaskLoss
from mtcore.train.metrics import MetricError, compute_metrics

CALLS: list[tuple[str, str]] = []


def says_high(predictions, references, task=None):
    return "high"


def says_dict(predictions, references, task=None):
    return {"accuracy": 1.0}


def raises(predictions, references, task=None):
    raise KeyError("no column 'gold'\nsecond line")


def right_probe(predictions, references, task=None):
    """Records the call and checks that the predictions are the references (what mt check gives every metric)."""
    kind = task.kind.value
    CALLS.append((task.id, kind))
    if kind == "extractive_qa":
        same = all(p in r for p, r in zip(predictions, references))
    elif kind == "token_classification":
        same = all(np.array_equal(p[r >= 0], r[r >= 0]) for p, r in zip(predictions, references))  # -100: not a word
    else:
        same = np.array_equal(np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64))
    assert same and len(references) > 0, (task.id, predictions, references)
    return 1.0


class BoomAtStep3(SingleTaskLoss):
    """A loss strategy that fails inside the loop with an error that is no MtError (a bug)."""

    def begin_step(self, step, reduce_mean=None):
        if step == 3:
            raise ValueError("weights went negative\nmore")


MODULE = says_high.__module__  # as pytest imports this file


@pytest.fixture(autouse=True)
def _registered():
    """Register the test components for each test: another test may have reloaded the registry (plugins' env)."""
    for kind, name, factory in [("metric", "says_high_test", says_high), ("metric", "says_dict_test", says_dict),
                                ("metric", "raises_test", raises), ("metric", "right_probe_test", right_probe),
                                ("loss", "boom_at_3_test", BoomAtStep3)]:
        try:
            register_component(kind, name, factory)
        except ConfigError:  # "registered twice": this registry has them from an earlier test
            pass


def _task(task_id: str, kind: str = "text_classification"):
    from types import SimpleNamespace

    return SimpleNamespace(id=task_id, kind=SimpleNamespace(value=kind), all_metrics=())


def _score(function, name="m"):
    task = _task("user:t")
    task.all_metrics = (name,)
    return compute_metrics(task, np.array([1, 0]), np.array([1, 1]), lambda _: function)[f"user:t/{name}"]


def test_a_metric_returns_one_number_and_anything_else_is_one_line_naming_it():
    import torch

    for value, expected in ((1, 1.0), (np.float32(0.5), 0.5), (np.array(0.25), 0.25), (torch.tensor(0.75), 0.75), (float("nan"), None),
                            (np.array([0.375]), 0.375), (torch.tensor([0.625]), 0.625)):  # one-element arrays: their value
        got = _score(lambda p, r, t=None, v=value: v)
        assert (np.isnan(got) if expected is None else got == expected) and type(got) is float
    for value, shown in (("high", "str 'high'"), ({"a": 1.0}, "dict {'a': 1.0}"), (None, "NoneType None"), (True, "bool True"),
                         (np.array([0.5, 0.5]), "ndarray of shape (2,)"), ("x" * 200, "str '" + "x" * 56 + "...")):
        with pytest.raises(MetricError) as err:
            _score(lambda p, r, t=None, v=value: v)
        message = str(err.value)
        assert message.startswith("metric 'm' (reference ") and f"of task 'user:t' returned {shown}; a metric returns one number" in message
        assert "\n" not in message
    with pytest.raises(MetricError) as err:  # a registered one: its plugin and reference
        _score(raises, "raises_test")
    assert str(err.value) == (f"metric 'raises_test' (plugin 'user', reference '{MODULE}:raises') of task 'user:t' failed: "
                              "KeyError: \"no column 'gold'\\nsecond line\"; fix that function (MT_DEBUG=1 shows the traceback)")
    with pytest.raises(MetricError, match=r"^metric 'says_dict_test' \(plugin 'user', reference '[\w.]+:says_dict'\) "
                       r"of task 'user:t' returned dict \{'accuracy': 1\.0\}; "):
        _score(says_dict, "says_dict_test")


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _more_kinds(root: Path) -> list[dict]:
    """Regression, multi-label, token classification and extractive QA tasks (inline), short rows."""
    import random

    rng = random.Random(5)
    colours, fill = ["red", "blue", "green"], ["the", "a", "on", "it", "is"]
    files: dict[str, dict[str, str]] = {}
    for split, n in (("train", 12), ("validation", 10)):
        rows = {"score": [], "tags": [], "ner": [], "qa": []}
        for i in range(n):
            words = [rng.choice(fill + colours) for _ in range(rng.randint(2, 5))]
            rows["score"].append({"text": " ".join(words), "label": float(sum(w in colours for w in words))})
            rows["tags"].append({"text": " ".join(words), "label": sorted({w for w in words if w in colours})})
            rows["ner"].append({"tokens": words, "label": ["B-C" if w in colours else "O" for w in words]})
            colour, at = rng.choice(colours), rng.randrange(len(words) + 1)
            context = words[:at] + [colour] + words[at:]
            start = len(" ".join(context[:at])) + (1 if at else 0)
            rows["qa"].append({"id": i, "question": "which colour", "context": " ".join(context),
                               "answers": {"text": [colour], "answer_start": [start]}})
        for name, data in rows.items():
            files.setdefault(name, {})[split] = _write(root / f"{name}_{split}.jsonl", data)
    return [{"define": {"name": "score", "kind": "regression", "files": files["score"]}},
            {"define": {"name": "tags", "kind": "multi_label", "labels": colours, "files": files["tags"]}},
            {"define": {"name": "ner", "kind": "token_classification", "labels": ["O", "B-C"], "files": files["ner"]}},
            {"define": {"name": "qa", "kind": "extractive_qa", "id_field": "id", "files": files["qa"]}}]


def _check(config: dict, path: Path, *overrides: str):
    path.write_text(yaml.safe_dump(config))
    return CliRunner().invoke(app, ["check", str(path), *overrides])


def test_mt_check_calls_every_metric_of_every_kind_with_the_labels_as_predictions(tmp_path, make_config):
    tasks = copy.deepcopy(make_config()["tasks"]) + _more_kinds(tmp_path)
    defaults = _check(make_config(tasks=copy.deepcopy(tasks)), tmp_path / "defaults.yaml")  # every kind's own metrics take it
    assert defaults.exit_code == 0 and defaults.stdout.rstrip().endswith("config ok"), defaults.output
    for task in tasks:
        task["define"]["metrics"] = ["right_probe_test"]
    CALLS.clear()
    result = _check(make_config(tasks=tasks), tmp_path / "c.yaml")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("config ok")
    assert sorted(kind for _, kind in CALLS) == sorted(["text_classification", "pair_classification", "multiple_choice", "regression",
                                                         "multi_label", "token_classification", "extractive_qa"])


@pytest.mark.parametrize("metric, said", [
    ("says_high_test", "returned str 'high'; a metric returns one number, a float"),
    ("raises_test", "failed: KeyError: \"no column 'gold'\\nsecond line\"; fix that function"),
])
def test_mt_check_finds_a_broken_metric_before_training(tmp_path, make_config, metric, said):
    tasks = copy.deepcopy(make_config()["tasks"])
    tasks[1]["define"]["metrics"] = ["accuracy", metric]
    result = _check(make_config(tasks=tasks), tmp_path / "c.yaml")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    line = result.stderr.strip()
    assert line.startswith(f"error: mt check, scoring the validation split's labels as predictions: metric {metric!r} (plugin 'user', "
                           f"reference '{MODULE}:") and f"of task 'user:pair' {said}" in line, line
    assert "config ok" not in result.stdout and sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def _train(config: dict, run: Path, *overrides: str):
    path = run.parent / f"{run.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return CliRunner().invoke(app, ["train", str(path), "--output-dir", str(run), *overrides])


def test_a_metric_failing_in_the_final_evaluation_ends_the_run_with_an_error_event_mt_compare_reads(tmp_path, make_config, helpers):
    tasks = copy.deepcopy(make_config()["tasks"])
    tasks[0]["define"]["metrics"] = ["accuracy", "says_high_test"]
    run = tmp_path / "run"
    result = _train(make_config(tasks=tasks), run)  # evaluation at the end only: after every step
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: metric 'says_high_test' (plugin 'user', reference '{MODULE}:says_high') of task "
                               "'user:sent' returned str 'high'; "), lines[0]
    last = helpers.read_events(run)[-1]
    assert last["event"] == "error" and last["step"] == 6 and last["message"] == lines[0][len("error: "):]
    assert not (run / "summary.json").exists()
    compared = CliRunner().invoke(app, ["compare", str(run)])
    assert compared.exit_code == 2
    assert compared.stderr.strip() == (f"error: {run}: no summary.json there: the run stopped on an error at step 6: metric "
                                       f"'says_high_test' (plugin 'user', reference '{MODULE}:says_high') of task "
                                       "'user:sent' returned str 'high' (its metrics.jsonl has the whole message); train it again, "
                                       "or leave it out")


def test_an_unexpected_error_inside_the_loop_is_recorded_too(tmp_path, make_config, helpers):
    run = tmp_path / "run"
    result = _train(make_config(), run, "loss.strategy=boom_at_3_test")
    assert result.exit_code == 1
    line = result.stderr.strip()
    # the line names the innermost frame of the user's code it came from: this file's begin_step
    assert line.startswith("error: unexpected ValueError: weights went negative more (at "), line
    assert line.endswith("test_metric_contract.py:60 in begin_step) (set MT_DEBUG=1 to see the traceback)"), line
    events = helpers.read_events(run)
    message = line[len("error: "):-len(" (set MT_DEBUG=1 to see the traceback)")]
    assert events[0]["event"] == "start" and events[-1] == {**events[-1], "event": "error", "step": 2, "message": message}
    compared = CliRunner().invoke(app, ["compare", str(run)])
    assert compared.exit_code == 2 and "the run stopped on an error at step 2: unexpected ValueError: weights went negative" in compared.stderr


def test_an_evaluation_split_without_labels_is_said_not_scored(tmp_path, make_config, small_tasks):
    tasks = copy.deepcopy(make_config()["tasks"])
    unlabelled = tmp_path / "sent_test.jsonl"
    rows = [json.loads(line) for line in Path(tasks[0]["define"]["files"]["validation"]).read_text().splitlines()]
    _write(unlabelled, [{k: v for k, v in row.items() if k != "label"} for row in rows])
    tasks[0]["define"]["files"] = {**tasks[0]["define"]["files"], "test": str(unlabelled)}
    tasks = tasks[:1]
    warning = ("warning: task 'user:sent': its test split has no labelled rows, so it will not be scored (evaluation.split=test); "
               "evaluate on a split with labels, e.g. evaluation.split=validation")
    checked = _check(make_config(tasks=tasks), tmp_path / "c.yaml", "evaluation.split=test")
    assert checked.exit_code == 0 and checked.stderr.strip() == warning, checked.output
    assert checked.stdout.rstrip().endswith("config ok")
    assert _check(make_config(tasks=tasks), tmp_path / "c.yaml").stderr.strip() == ""  # validation: labelled, no warning
    run = tmp_path / "run"
    trained = _train(make_config(tasks=tasks, logging={"every": 2, "progress": "plain", "plot": False}), run,
                     "evaluation.split=test", "evaluation.every=3")
    assert trained.exit_code == 0, trained.output
    lines = trained.stderr.strip().splitlines()
    assert warning in lines and len(lines) == 2, lines  # and that checkpoint.keep_best selects on the test split
    assert any(line.startswith("warning: evaluation.split is 'test', so the best checkpoint") for line in lines), lines
    assert "eval step 3: no task was scored (no labelled rows in the test split)" in trained.stdout
    assert "nan" not in trained.stdout.lower()
    assert f"trained: steps 6, no task scored; run directory {run}" in trained.stdout


def test_an_eval_line_names_the_tasks_not_scored():
    from mtcore.train.events import eval_line

    metrics = {"a/accuracy": 0.5, "a/loss": 0.7}
    assert eval_line(4, metrics, 0.5, True, ["a", "b"], "test") == "eval step 4: aggregate 0.5000 (best); a/accuracy 0.5000; not scored (no labelled test rows): b"
    assert eval_line(4, {}, float("nan"), False, ["a"], "test") == "eval step 4: no task was scored (no labelled rows in the test split)"
    assert eval_line(4, {}, float("nan"), False, [], "dev") == "eval step 4: no task was scored (no task has a dev split)"
    assert eval_line(4, {"a/accuracy": float("nan")}, float("nan"), False, ["a"], "v").startswith("eval step 4: no aggregate (every main metric is NaN)")


def test_mt_checks_metric_probe_prints_no_library_notes_on_its_perfect_predictions(tmp_path):
    """A validation split of one class: sklearn's mcc notes "a single label was found", about the probe, not the run."""
    import yaml

    (tmp_path / "train.jsonl").write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    (tmp_path / "dev.jsonl").write_text('{"text": "good", "label": "pos"}\n{"text": "fine", "label": "pos"}\n')
    task = {"define": {"name": "r", "kind": "text_classification", "labels": ["neg", "pos"], "metrics": ["accuracy", "mcc"],
                       "files": {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "dev.jsonl")}}}
    path = tmp_path / "deg.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": [task], "schedule": {"max_steps": 2}}))
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 0 and "config ok" in result.stdout, result.output
    assert "warning" not in result.stderr, result.stderr
