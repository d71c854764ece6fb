"""SQuAD 2.0's "no answer" threshold: every prediction of a ``no_answer`` task carries its null score
diff, the task's ``null_threshold`` moves the decision, and ``squad_best_f1`` / ``squad_best_em`` /
``squad_best_f1_threshold`` find the best threshold exactly (as SQuAD 2.0's script's best_f1)."""

from __future__ import annotations

import json
import random

import pytest

from mtcore.data.qa_decoding import best_windows
from mtcore.errors import ConfigError
from mtcore.task import Task
from mtcore.train.qa_metrics import squad_best_em, squad_best_f1, squad_best_f1_threshold, squad_em, squad_f1

V2 = Task(name="q", kind="extractive_qa", no_answer=True)
WORDS = ["red", "blue", "green", "the red", "dark blue", "a green one"]


def _thresholded(null_answers, threshold):
    return ["" if diff > threshold else span for span, diff in null_answers]


def test_the_best_threshold_is_the_best_of_every_threshold_tried_one_by_one():
    rng = random.Random(0)
    for trial in range(40):
        n = rng.randint(1, 25)
        references = [[""] if rng.random() < 0.4 else [rng.choice(WORDS)] for _ in range(n)]
        # diffs with ties, spans that are sometimes right, sometimes partly right
        null_answers = [(rng.choice(WORDS), float(rng.choice([-2, -1, -0.5, 0, 0.5, 1, 3]) + rng.choice([0, 0.25]))) for _ in range(n)]
        candidates = sorted({d for _, d in null_answers}) + [min(d for _, d in null_answers) - 1.0]
        f1s = {t: squad_f1(_thresholded(null_answers, t), references, V2) for t in candidates}
        ems = {t: squad_em(_thresholded(null_answers, t), references, V2) for t in candidates}
        best = squad_best_f1([], references, V2, null_answers=null_answers)
        assert best == pytest.approx(max(f1s.values())), trial
        assert squad_best_em([], references, V2, null_answers=null_answers) == pytest.approx(max(ems.values())), trial
        threshold = squad_best_f1_threshold([], references, V2, null_answers=null_answers)
        assert squad_f1(_thresholded(null_answers, threshold), references, V2) == pytest.approx(best), trial  # it reaches it
        assert best >= squad_f1(_thresholded(null_answers, 0.0), references, V2) - 1e-12  # never below the default threshold's


def test_the_best_threshold_metrics_are_nan_without_no_answer_and_on_no_question():
    nan = squad_best_f1(["red"], [["red"]], Task(name="q", kind="extractive_qa"), null_answers=None)
    assert nan != nan
    empty = squad_best_f1_threshold([], [], V2, null_answers=[])
    assert empty != empty


def test_best_windows_gives_the_null_score_diff_and_answers_below_the_threshold():
    # (window, example, best span score, null score): example 0's span 5.0 vs null min(4, 7) = 4 -> diff -1
    windows = [(0, 0, 5.0, 4.0), (1, 0, 2.0, 7.0), (2, 1, 1.0, 3.0)]
    default = best_windows(windows, no_answer=True)
    assert (default[0].window, default[0].null_score_diff) == (0, -1.0)
    assert (default[1].window, default[1].span_window, default[1].null_score_diff) == (None, 2, 2.0)  # 3 - 1 > 0: no answer
    assert best_windows(windows, no_answer=True, null_threshold=2.0)[1].window == 2  # diff 2 is not above 2: answered
    assert best_windows(windows, no_answer=True, null_threshold=-1.5)[0].window is None
    assert best_windows(windows, no_answer=False, null_threshold=-9)[1].window == 2  # without no_answer, always a span


def test_null_threshold_is_a_finite_number_of_a_no_answer_task_and_saved_with_the_model():
    from mtcore.model.manifest import task_from_info, task_info

    with pytest.raises(ConfigError, match="null_threshold applies to questions without an answer; set no_answer: true"):
        Task(name="q", kind="extractive_qa", null_threshold=1.5)
    for bad in ("1", float("nan"), float("inf"), True):
        with pytest.raises(ConfigError, match="null_threshold .* must be a finite number"):
            Task(name="q", kind="extractive_qa", no_answer=True, null_threshold=bad)
    saved = task_from_info(json.loads(json.dumps(task_info(Task(name="q", kind="extractive_qa", no_answer=True, null_threshold=-2)))))
    assert saved.null_threshold == -2.0
    assert V2.all_metrics[-2:] == ("squad_best_f1", "squad_best_f1_threshold")  # SQuAD 2.0's report, by default


def _rows(n: int, seed: int) -> list[dict]:
    """Half the questions answered by the context's colour word, half without any colour (no answer)."""
    rng = random.Random(seed)
    fill = "the a one some this that my your his her it is was has on in at".split()
    rows = []
    for i in range(n):
        words = [rng.choice(fill) for _ in range(rng.randint(4, 9))]
        answers = {"text": [], "answer_start": []}
        if i % 2:
            colour, at = rng.choice(["red", "blue", "green"]), rng.randrange(0, 4)
            words.insert(at, colour)
            answers = {"text": [colour], "answer_start": [len(" ".join(words[:at])) + (1 if at else 0)]}
        rows.append({"id": i, "question": "which colour is it", "context": " ".join(words), "answers": answers})
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_a_run_reports_the_best_threshold_and_a_configured_threshold_changes_the_answers(tmp_path):
    from mtcore import Trainer
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    words = "the a one some this that my your his her it is was has on in at red blue green which colour".split()
    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words=words, hidden_size=32, num_layers=1, num_heads=2)
    files = {"train": _write(tmp_path / "train.jsonl", _rows(48, 0)), "validation": _write(tmp_path / "val.jsonl", _rows(20, 1))}

    def config(**task):
        return {"encoder": {"path": str(encoder)}, "schedule": {"max_steps": 30, "warmup_steps": 0}, "optimizer": {"lr": 3e-3},
                "tasks": [{"define": {"name": "qa", "kind": "extractive_qa", "id_field": "id", "no_answer": True, "files": files}, **task}],
                "batching": {"batch_size": 8}, "evaluation": {"every": None, "at_end": True},
                "logging": {"progress": "none", "plot": False}, "checkpoint": {"every": None}}

    metrics = Trainer(config(), output_dir=tmp_path / "run").train()["final"]["metrics"]
    assert {"user:qa/squad_best_f1", "user:qa/squad_best_f1_threshold", "user:qa/squad_f1_no_answer"} <= set(metrics)
    assert metrics["user:qa/squad_best_f1"] >= metrics["user:qa/squad_f1"] - 1e-9
    model = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    rows = model.predict("qa", [{"question": r["question"], "context": r["context"]} for r in _rows(20, 1)]).rows()
    assert all((row["label"] == "") == (row["null_score_diff"] > 0) for row in rows), rows  # the default threshold: 0
    assert all(row["best_span"] == row["label"] for row in rows if row["label"])
    assert any(row["best_span"] and not row["label"] for row in rows)  # an abstained question still shows its span
    gold = [r["answers"]["text"] or [""] for r in _rows(20, 1)]  # the best F1 from the prediction file alone
    by_hand = max(squad_f1(_thresholded([(r["best_span"], r["null_score_diff"]) for r in rows], t), gold, V2)
                  for t in [r["null_score_diff"] for r in rows] + [min(r["null_score_diff"] for r in rows) - 1])
    assert by_hand == pytest.approx(metrics["user:qa/squad_best_f1"])

    from typer.testing import CliRunner

    from mtcore.cli.app import app

    runner = CliRunner()
    best = metrics["user:qa/squad_best_f1_threshold"]
    tuned = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "--json", "--null-threshold", f"{best:.6g}"])  # rounded
    assert tuned.exit_code == 0, tuned.output
    scores = json.loads(tuned.stdout)["metrics"]
    assert scores["user:qa/squad_f1"] == pytest.approx(metrics["user:qa/squad_best_f1"])  # the best threshold gives the best F1
    listed = runner.invoke(app, ["predict", str(tmp_path / "run"), "--split", "validation", "--null-threshold", "1e6"])
    assert listed.exit_code == 0 and all(json.loads(line)["label"] != "" for line in listed.stdout.splitlines()), listed.output
    ranked = runner.invoke(app, ["predict", str(tmp_path / "run"), "--split", "validation", "--n-best", "3"])  # nbest_predictions
    assert ranked.exit_code == 0, ranked.output
    for line in ranked.stdout.splitlines():
        row = json.loads(line)
        best = row["n_best"]
        assert len(best) == 3 and sum(a["probability"] for a in best) == pytest.approx(1.0)
        assert [a["logit"] for a in best] == sorted((a["logit"] for a in best), reverse=True)
        assert "" in [a["text"] for a in best[:1]] or best[0]["text"] == row["best_span"]  # the top: "no answer" or the best span
        assert ((best[0]["text"] == "") == (row["label"] == "")) and (row["label"] == "" or best[0]["text"] == row["label"])

    Trainer(config(null_threshold=1e6), output_dir=tmp_path / "never").train()  # a threshold no diff reaches
    saved = MultitaskModel.from_pretrained(tmp_path / "never" / "model")
    assert saved.tasks["user:qa"]["null_threshold"] == 1e6
    answered = saved.predict("qa", [{"question": r["question"], "context": r["context"]} for r in _rows(20, 1)]).rows()
    assert all(row["label"] != "" and row["answer_start"] >= 0 for row in answered), answered  # every question gets a span
    assert sum(row["label"] == "" for row in rows) > 0  # where the default threshold abstained


def test_null_threshold_on_a_task_without_unanswerable_questions_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from mtcore.cli.app import app
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words=["a", "b"], hidden_size=16, num_layers=1, num_heads=2)
    MultitaskModel(str(encoder), [Task(name="q", kind="extractive_qa")]).save_pretrained(tmp_path / "model", tokenizer=None)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "model"), "-i", "-", "--null-threshold", "1"],
                                input='{"question": "a", "context": "b"}\n')
    assert result.exit_code == 2 and "--null-threshold moves the \"no answer\" decision" in result.output, result.output


def test_n_best_on_another_kind_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from mtcore.cli.app import app
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words=["a", "b"], hidden_size=16, num_layers=1, num_heads=2)
    MultitaskModel(str(encoder), [Task(name="c", kind="text_classification", labels=["x", "y"])]).save_pretrained(tmp_path / "model",
                                                                                                              tokenizer=None)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "model"), "-i", "-", "--n-best", "2"], input='{"text": "a"}\n')
    assert result.exit_code == 2 and "n_best lists answers of extractive QA tasks" in result.stderr, result.output


def test_null_threshold_on_another_kind_names_the_kind_it_is_for():
    """It said "set no_answer: true too", which is then refused for a token task."""
    with pytest.raises(ConfigError, match="null_threshold .* is for extractive_qa tasks with no_answer; remove it from a token_classification task"):
        Task(name="ner", kind="token_classification", labels=("O", "B-X"), null_threshold=1.0)
