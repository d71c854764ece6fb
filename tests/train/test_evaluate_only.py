"""Tasks a run scores but does not train (``evaluate_with``, diagnostic sets): scored at every evaluation with a
trained task's head, reported, weighted 0 in the aggregate unless asked, and invisible to training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mtcore import Trainer

TERRA = {"id": "rsg:terra", "source": "sample"}
LIDIRUS = {"id": "rsg:lidirus", "source": "sample"}  # a diagnostic set: test split only, metadata.predict_with rsg:terra
NLI = {"id": "nli:nli", "source": "sample"}
XNLI_RU = {"id": "nli:xnli-ru", "source": "sample", "evaluate_with": "nli"}  # zero-shot: your NLI head on Russian XNLI


def _mt(*args: str) -> Any:
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def _config(make_config, tasks: list[dict[str, Any]], **sections: Any) -> dict[str, Any]:
    return make_config(tasks=tasks, **{"evaluation": {"every": 3, "at_end": True}, **sections})


def test_a_diagnostic_set_is_scored_with_its_head_each_evaluation_and_left_out_of_the_aggregate(tmp_path: Path, make_config, helpers):
    run = tmp_path / "run"
    summary = Trainer(_config(make_config, [TERRA, LIDIRUS]), output_dir=run).train()

    lidirus = summary["tasks"]["rsg:lidirus"]
    assert lidirus["evaluated_with"] == "rsg:terra" and lidirus["split"] == "test"  # LiDiRus has no validation split
    assert set(lidirus["final"]) == {"mcc", "loss"} and lidirus["own_best"]["metric"] == "mcc"
    assert summary["final"]["aggregate"] == summary["tasks"]["rsg:terra"]["final"]["accuracy"]  # weight 0: not in it
    events = helpers.read_events(run)
    start = next(e for e in events if e["event"] == "start")
    assert start["tasks"] == ["rsg:terra"] and start["evaluated_with"] == {"rsg:lidirus": "rsg:terra"}
    assert "task 'rsg:lidirus' (a diagnostic set) has no 'validation' split: scored on its 'test' split" in start["notes"]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6] and all("rsg:lidirus/mcc" in e["metrics"] for e in evals)
    assert not any(e["event"] == "train" and "rsg:lidirus" in json.dumps(e) for e in events)  # never trained on
    assert list(json.loads((run / "model" / "mtcore.json").read_text())["tasks"]) == ["rsg:terra"]  # no head of its own

    # mt evaluate RUN scores it as the run did: same head, same split, same aggregate
    result = _mt("evaluate", str(run), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tasks"]["rsg:lidirus"]["head"] == "rsg:terra" and report["tasks"]["rsg:lidirus"]["split"] == "test"
    assert report["metrics"]["rsg:lidirus/loss"] == pytest.approx(lidirus["final"]["loss"], rel=1e-6)
    assert report["aggregate"] == pytest.approx(summary["final"]["aggregate"])
    table = _mt("evaluate", str(run))
    assert "rsg:lidirus (head rsg:terra; test split; not in the aggregate)" in table.stdout, table.stdout


def test_a_weight_in_evaluation_weights_counts_it_in_the_aggregate_with_a_warning_when_that_is_test(tmp_path: Path, make_config):
    config = _config(make_config, [TERRA, LIDIRUS], evaluation={"every": 3, "at_end": True, "weights": {"lidirus": 1}})
    with pytest.warns(UserWarning, match="task 'rsg:lidirus' counts in the aggregate .* scored on its test split"):
        summary = Trainer(config, output_dir=tmp_path / "run").train()
    final = summary["tasks"]
    expected = (final["rsg:terra"]["final"]["accuracy"] + final["rsg:lidirus"]["final"]["mcc"]) / 2
    assert summary["final"]["aggregate"] == pytest.approx(expected)


def test_zero_shot_transfer_is_scored_during_training_as_mt_evaluate_head_scores_it(tmp_path: Path, make_config):
    run = tmp_path / "run"
    summary = Trainer(_config(make_config, [NLI, XNLI_RU]), output_dir=run).train()
    xnli = summary["tasks"]["nli:xnli-ru"]
    assert xnli["evaluated_with"] == "nli:nli" and xnli["split"] == "validation"
    result = _mt("evaluate", str(run / "model"), "--tasks", "nli:xnli-ru", "--head", "nli:nli", "--source", "sample", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metrics"]["nli:xnli-ru/loss"] == pytest.approx(xnli["final"]["loss"], rel=1e-6)
    assert report["metrics"]["nli:xnli-ru/accuracy"] == pytest.approx(xnli["final"]["accuracy"])

    # mt predict RUN knows which head scores it: --task all writes its file, --input needs no --head
    every = _mt("predict", str(run), "--task", "all", "--split", "validation", "-o", str(tmp_path / "preds"))
    assert every.exit_code == 0, every.stderr
    assert "wrote 50 predictions of nli:xnli-ru (head nli:nli; sample validation split)" in " ".join(every.stderr.split())
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == ["nli_nli.jsonl", "nli_xnli-ru.jsonl"]
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"premise": "Кот спит.", "hypothesis": "Кот не спит."}) + "\n")
    one = _mt("predict", str(run), "--task", "xnli-ru", "-i", str(tmp_path / "pairs.jsonl"))
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["label"] in ("entailment", "neutral", "contradiction")


def test_predict_input_of_an_evaluate_only_task_uses_the_run_entry_s_settings(tmp_path: Path, make_config):
    """``mt predict RUN --task X -i FILE`` predicted an evaluate_with task with its registered settings, not the run
    entry's (here max_length 8): the file's rows now get the probabilities the run's own split predictions have."""
    from mtcore.data import load_raw
    from mtcore.predict.tasks import registered_task

    run = tmp_path / "run"
    Trainer(_config(make_config, [NLI, {**XNLI_RU, "max_length": 8}], evaluation={"every": None, "at_end": False}),
            output_dir=run).train()
    split = _mt("predict", str(run), "--task", "xnli-ru", "--split", "validation", "-o", str(tmp_path / "split.jsonl"))
    assert split.exit_code == 0, split.stderr
    expected = [json.loads(line) for line in (tmp_path / "split.jsonl").read_text().splitlines()][:4]
    rows = list(load_raw(registered_task("nli:xnli-ru"), "sample", splits=("validation",))["validation"])[:4]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"premise": r["premise"], "hypothesis": r["hypothesis"]}) + "\n"
                                                 for r in rows), encoding="utf-8")
    given = _mt("predict", str(run), "--task", "xnli-ru", "-i", str(tmp_path / "rows.jsonl"), "-o", str(tmp_path / "given.jsonl"))
    assert given.exit_code == 0, given.stderr
    got = [json.loads(line) for line in (tmp_path / "given.jsonl").read_text().splitlines()]
    assert len(got) == len(expected) == 4
    for a, b in zip(got, expected):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)


def test_an_evaluate_only_task_changes_nothing_in_training(tmp_path: Path, make_config, helpers):
    alone = Trainer(_config(make_config, [NLI]), output_dir=tmp_path / "alone").train()
    scored = Trainer(_config(make_config, [NLI, {**XNLI_RU, "split": "test"}]), output_dir=tmp_path / "scored").train()
    assert scored["tasks"]["nli:xnli-ru"]["split"] == "test"
    before, after = helpers.load_weights(tmp_path / "alone" / "model"), helpers.load_weights(tmp_path / "scored" / "model")
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    assert alone["tasks"]["nli:nli"] == scored["tasks"]["nli:nli"]
    losses = [[(e["step"], e["loss"]) for e in helpers.read_events(tmp_path / name) if e["event"] == "train"] for name in ("alone", "scored")]
    assert losses[0] and losses[0] == losses[1]


@pytest.mark.parametrize(("tasks", "message"), [
    ([NLI, LIDIRUS], "config key 'tasks.1.evaluate_with': 'rsg:terra' is not trained by this run; its tasks: nli:nli (task "
                     "'rsg:lidirus' is scored with the head of 'rsg:terra'; add that task to tasks)"),
    ([NLI, {**XNLI_RU, "evaluate_with": "nli:nl"}], "'nli:nl' is not trained by this run; its tasks: nli:nli (did you mean 'nli:nli'?)"),
    ([NLI, {"id": "rsg:rcb", "source": "sample", "evaluate_with": "nli:nli"}],
     "config key 'tasks.1.evaluate_with': task 'rsg:rcb' has labels ['entailment', 'contradiction', 'neutral'], but the head "
     "'nli:nli' was trained with ['entailment', 'neutral', 'contradiction']; the labels must be the same, in the same order"),
    ([NLI, {**TERRA, "evaluate_with": "nli:nli"}], "task 'rsg:terra' has labels"),
    ([NLI, {**XNLI_RU, "weight": 2}], "config key 'tasks.1.weight': task 'nli:xnli-ru' is only evaluated (with the head of "
                                      "'nli:nli'), not trained; remove weight (evaluation.weights.nli:xnli-ru counts it"),
    ([NLI, {**XNLI_RU, "head_options": {"pooling": "mean"}}], "config key 'tasks.1.head_options': task 'nli:xnli-ru' is only evaluated"),
    ([{**NLI, "split": "test"}], "config key 'tasks.0.split': task entries choose a split only when they are evaluated"),
    ([XNLI_RU], "config key 'tasks.0.evaluate_with': this run trains no task, so no head can score 'nli:xnli-ru'"),
], ids=["serving-task-missing", "typo", "labels-in-another-order", "other-labels", "weight", "head-options", "split-of-a-trained-task",
        "nothing-trained"])
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, tasks, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": tasks, "schedule": {"max_steps": 2}}))
    result = _mt("check", str(path), "--no-data")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_mt_check_lists_it_with_its_head_and_split(tmp_path: Path, make_config):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(make_config, [TERRA, LIDIRUS])))
    result = _mt("check", str(path))
    assert result.exit_code == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "1 task(s) + 1 evaluated only" in out and "rsg:lidirus (evaluated with rsg:terra)" in out and "(test)" in out


def test_a_resume_may_add_or_remove_an_evaluate_only_task_and_trains_the_same(tmp_path: Path, make_config, helpers):
    from mtcore.errors import ConfigError
    from mtcore.train.monitor import NonFiniteLossError

    def config(tasks: list[dict[str, Any]], **debug: Any) -> dict[str, Any]:
        return make_config(tasks=tasks, schedule={"max_steps": 8, "warmup_steps": 1}, evaluation={"every": 4, "at_end": True},
                           checkpoint={"every": 4, "keep_last": 5}, debug=debug)

    Trainer(config([NLI]), output_dir=tmp_path / "straight").train()
    with pytest.raises(NonFiniteLossError):  # a crash after the checkpoint of step 4
        Trainer(config([NLI], inject_nan_at_step=6), output_dir=tmp_path / "crashed").train()
    summary = Trainer(config([NLI, XNLI_RU]), output_dir=tmp_path / "crashed", resume=True).train()
    assert summary["resumed_from"].endswith("step-000004") and "accuracy" in summary["tasks"]["nli:xnli-ru"]["final"]
    straight, resumed = helpers.load_weights(tmp_path / "straight" / "model"), helpers.load_weights(tmp_path / "crashed" / "model")
    assert straight.keys() == resumed.keys() and all((straight[k] == resumed[k]).all() for k in straight)

    (tmp_path / "crashed" / "summary.json").unlink()  # as if it had stopped again: now leave it out, but change a trained task
    assert Trainer(config([NLI]), output_dir=tmp_path / "crashed", resume=True).train()["steps"] == 8
    (tmp_path / "crashed" / "summary.json").unlink()
    with pytest.raises(ConfigError, match=r"config key 'tasks.0.batch_size' changed \(None -> 4\)"):
        Trainer(config([{**NLI, "batch_size": 4}, XNLI_RU]), output_dir=tmp_path / "crashed", resume=True).train()


def test_the_eval_line_shows_tasks_outside_the_aggregate_apart():
    from mtcore.train.events import eval_line

    metrics = {"rsg:terra/accuracy": 0.5, "rsg:terra/loss": 0.7, "rsg:lidirus/mcc": 0.1, "rsg:lidirus/loss": 0.7}
    line = eval_line(3, metrics, 0.5, True, ["rsg:terra", "rsg:lidirus"], "validation", ["rsg:lidirus"])
    assert line == "eval step 3: aggregate 0.5000 (best); rsg:terra/accuracy 0.5000; not in the aggregate: rsg:lidirus/mcc 0.1000"
    assert "not in the aggregate" not in eval_line(3, metrics, 0.3, False, ["rsg:terra", "rsg:lidirus"], "validation")
