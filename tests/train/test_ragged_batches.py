"""Batches whose rows differ in shape or labelling, through the public API (Trainer, ``mt evaluate``).

* multiple choice with 2 and 3 choices in one split: the collator pads the choices dimension
  with masked-out choices, and predictions, metrics, losses and gradients equal scoring each row alone;
* a partly labelled regression or multi-label split (some targets blank): the labelled rows are
  scored, the others are left out of the loss and the metrics, as classification does.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from mtcore import Trainer

FILL = "the a one some this that my".split()
FRUIT, OTHER = ["apple", "pear", "plum", "peach"], ["stone", "chair", "brick", "sock"]
POS, NEG = ["good", "great", "nice"], ["bad", "awful", "poor"]


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def _choice_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Which choice is a fruit? Rows have 2 or 3 choices, in random order."""
    rows = []
    for i in range(n):
        count = rng.choice([2, 3])
        choices = rng.sample(OTHER, count - 1)
        label = rng.randrange(count)
        choices.insert(label, rng.choice(FRUIT))
        rows.append({"idx": i, "text": " ".join(rng.choice(FILL) for _ in range(rng.randint(1, 4))), "choices": choices, "label": label})
    return rows


def _score_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        words = [rng.choice(FILL) for _ in range(rng.randint(1, 3))]
        positive = rng.randrange(3)
        words += rng.sample(POS, positive) + rng.sample(NEG, 2 - positive)
        rows.append({"idx": i, "text": " ".join(words), "label": float(positive) / 2})
    return rows


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory: pytest.TempPathFactory, small_encoder: Path) -> tuple[Path, Trainer]:
    """A 4-step run on a multiple-choice task whose splits mix 2- and 3-choice rows (batches of 8)."""
    root = tmp_path_factory.mktemp("mc")
    rng = random.Random(7)
    files = {split: _write(root / f"mc_{split}.jsonl", _choice_rows(n, rng)) for split, n in (("train", 40), ("validation", 17))}
    counts = {len(json.loads(line)["choices"]) for line in Path(files["validation"]).read_text().splitlines()}
    assert counts == {2, 3}
    config = {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"path": str(small_encoder)},
              "tasks": [{"define": {"name": "mc", "kind": "multiple_choice", "files": files}}],
              "optimizer": {"lr": 1e-3}, "schedule": {"max_steps": 4, "warmup_steps": 0},
              "batching": {"batch_size": 8, "eval_batch_size": 64}, "evaluation": {"every": None, "at_end": True},
              "checkpoint": {"every": None}, "logging": {"every": 2, "progress": "none", "plot": False}}
    trainer = Trainer(config, output_dir=root / "run")
    trainer.train()
    return root / "run", trainer


def test_multiple_choice_rows_with_2_and_3_choices_train_and_evaluate_like_single_rows(mc_run):
    from mtcore.predict.evaluate import evaluate_path

    run, _ = mc_run
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["steps"] == 4 and "user:mc/accuracy" in summary["final"]["metrics"]
    together = evaluate_path(run, batch_size=64).metrics  # one batch mixing 2- and 3-choice rows
    alone = evaluate_path(run, batch_size=1).metrics  # every row scored alone
    assert together["user:mc/accuracy"] == alone["user:mc/accuracy"] == summary["final"]["metrics"]["user:mc/accuracy"]
    assert math.isclose(together["user:mc/loss"], alone["user:mc/loss"], rel_tol=1e-5)


def test_predict_on_mixed_choice_counts_gives_one_probability_per_real_choice(mc_run):
    from mtcore.model import MultitaskModel
    from mtcore.predict.predictor import predict

    run, _ = mc_run
    model = MultitaskModel.from_pretrained(run / "model").eval()
    rows = [{"text": "the one", "choices": ["stone", "plum"], "label": 1},
            {"text": "my", "choices": ["chair", "sock", "apple"], "label": 2},
            {"text": "", "choices": ["pear", "brick"], "label": 0}]
    mixed, alone = predict(model, "mc", rows, batch_size=3), predict(model, "mc", rows, batch_size=1)
    assert [len(p) for p in mixed.probabilities] == [2, 3, 2]
    assert mixed.class_ids == alone.class_ids
    for a, b in zip(mixed.probabilities, alone.probabilities):
        assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_mt_predict_writes_one_probability_per_real_choice(mc_run, tmp_path, fmt):
    """`mt predict` on a file mixing 2- and 3-choice rows, in one batch: every writer keeps each row's own choices."""
    import csv

    from typer.testing import CliRunner

    from mtcore.cli.app import app
    from mtcore.model import MultitaskModel
    from mtcore.predict.predictor import predict

    run, _ = mc_run
    rows = [{"idx": 10 + i, "text": text, "choices": choices} for i, (text, choices) in
            enumerate([("the one", ["stone", "plum", "sock"]), ("my", ["chair", "apple"]), ("", ["pear", "brick", "sock"]), ("a", ["x", "y"])])]
    _write(tmp_path / "rows.jsonl", rows)
    result = CliRunner().invoke(app, ["predict", str(run), "--task", "mc", "--input", str(tmp_path / "rows.jsonl"), "--batch-size", "8",
                                      "--format", fmt, "--output", str(tmp_path / f"out.{fmt}")])
    assert result.exit_code == 0, result.stderr
    alone = [predict(MultitaskModel.from_pretrained(run / "model"), "mc", [row], batch_size=1) for row in rows]
    text = (tmp_path / f"out.{fmt}").read_text(encoding="utf-8")
    if fmt == "jsonl":
        written = [json.loads(line) for line in text.splitlines()]
        probabilities = [row["probabilities"] for row in written]
    else:
        written = list(csv.DictReader(text.splitlines()))
        assert list(written[0]) == ["idx", "label", "p_0", "p_1", "p_2"]
        assert [row["p_2"] == "" for row in written] == [False, True, False, True]  # no stand-in choice gets a probability
        probabilities = [[float(row[f"p_{j}"]) for j in range(3) if row[f"p_{j}"]] for row in written]
    assert [str(row["idx"]) for row in written] == [str(row["idx"]) for row in rows]
    assert [int(row["label"]) for row in written] == [single.labels[0] for single in alone]
    for probs, single in zip(probabilities, alone):
        assert probs == pytest.approx(single.probabilities[0], abs=1e-5) and math.isclose(sum(probs), 1.0, rel_tol=1e-4)


def test_a_mixed_choice_batch_gives_each_rows_logits_loss_and_gradients(mc_run):
    _, trainer = mc_run
    data = trainer.engine.eval_data["user:mc"]
    split = data.splits["validation"]
    model = trainer.model.eval()
    counts = [len(split[i]["input_ids"]) for i in range(split.num_rows)]
    picked = [counts.index(2), counts.index(3), len(counts) - 1 - counts[::-1].index(2)]
    rows = [split[i] for i in picked]
    batch = data.collator(rows)
    assert batch["input_ids"].shape[:2] == (3, 3) and batch["choice_mask"].tolist() == [[True, True, False], [True] * 3, [True, True, False]]

    def grads() -> dict[str, torch.Tensor]:
        out = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return out

    model.zero_grad(set_to_none=True)
    out = model("user:mc", **batch)
    out.loss.backward()
    together = grads()
    assert out.logits.shape == (3, 3)
    assert out.logits[0, 2] < -1e30 and out.logits[2, 2] < -1e30  # a padded choice never wins
    losses, singles = [], []
    for j, row in enumerate(rows):
        single = model("user:mc", **data.collator([row]))
        assert "choice_mask" not in data.collator([row])
        n = counts[picked[j]]
        assert torch.allclose(out.logits[j, :n], single.logits[0], atol=1e-5)
        (single.loss / len(rows)).backward()
        losses.append(float(single.loss.detach()))
        singles.append(grads())
    assert math.isclose(float(out.loss.detach()), sum(losses) / len(losses), rel_tol=1e-5)
    assert together.keys() == singles[0].keys()
    for name, grad in together.items():  # padded choices receive no loss: the gradient is the rows' own
        assert torch.allclose(grad, sum(s[name] for s in singles), atol=1e-6), name


PARTLY_LABELLED = {
    "regression": ({"kind": "regression"}, {"pearson", "spearman", "mse", "loss"}),
    "multi_label": ({"kind": "multi_label", "labels": ["pos", "neg"]}, {"f1_micro", "f1_macro", "exact_match", "loss"}),
}


@pytest.mark.parametrize("kind", sorted(PARTLY_LABELLED))
def test_a_partly_labelled_split_scores_its_labelled_rows_only(tmp_path: Path, small_encoder: Path, kind: str):
    """``mt evaluate --split test`` on a split with a few blank targets equals scoring only its labelled rows."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    rng = random.Random(5)
    train, test = _score_rows(32, rng), _score_rows(12, rng)
    if kind == "multi_label":
        for row in train + test:
            row["label"] = [name for name, on in (("pos", row["label"] > 0), ("neg", row["label"] < 1)) if on]
    for i in (1, 4, 5, 9):  # blank targets, as in a dev file where a few are missing
        test[i]["label"] = None
    labelled = [row for row in test if row["label"] is not None]
    files = {"train": _write(tmp_path / "train.jsonl", train), "validation": _write(tmp_path / "labelled.jsonl", labelled),
             "test": _write(tmp_path / "test.jsonl", test)}
    definition, metrics = PARTLY_LABELLED[kind]
    config = {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"path": str(small_encoder)},
              "tasks": [{"define": {"name": "score", **definition, "files": files}}],
              "optimizer": {"lr": 3e-3}, "schedule": {"max_steps": 12, "warmup_steps": 0},
              "batching": {"batch_size": 8}, "evaluation": {"every": None, "at_end": True},
              "checkpoint": {"every": None}, "logging": {"every": 2, "progress": "none", "plot": False}}
    Trainer(config, output_dir=tmp_path / "run").train()

    def evaluate(split: str) -> dict[str, float]:  # batches of 3 rows: some mix labelled and unlabelled rows
        result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), "--split", split, "--batch-size", "3", "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["metrics"]

    partly, only_labelled = evaluate("test"), evaluate("validation")
    assert set(partly) == {f"user:score/{name}" for name in metrics} == set(only_labelled)
    for key, value in only_labelled.items():  # the loss too: a mean over labelled rows, whatever the batches
        assert math.isclose(partly[key], value, rel_tol=1e-5, abs_tol=1e-7), key
