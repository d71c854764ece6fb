"""Span pooling end to end through ``mt``: a task whose label depends on which words a row marks is learned with
``pooling: spans`` and not from [CLS]; evaluate, predict and check read the spans; export refuses the head."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
import yaml

from mtcore import Trainer

COLORS = ["red", "blue", "green"]
FILL = "the a one some this that my your his her it is was has on in at".split()


def _rows(n: int, rng: random.Random) -> list[dict]:
    """Eight words, two of them marked: are the two marked colours the same? (Other colours stand around them.)"""
    rows = []
    for i in range(n):
        words = [rng.choice(FILL + COLORS) for _ in range(8)]
        a, b = sorted(rng.sample(range(8), 2))
        same = rng.randrange(2)
        words[a] = rng.choice(COLORS)
        words[b] = words[a] if same else rng.choice([c for c in COLORS if c != words[a]])
        starts = [sum(len(w) + 1 for w in words[:k]) for k in range(8)]
        rows.append({"idx": i, "text": " ".join(words), "label": ["different", "same"][same],
                     "marked": [[starts[a], starts[a] + len(words[a])], [starts[b], starts[b] + len(words[b])]]})
    return rows


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory, small_encoder: Path) -> dict:
    root = tmp_path_factory.mktemp("colours")
    rng = random.Random(0)
    for split, n in (("train", 400), ("val", 100)):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(n, rng)), encoding="utf-8")
    return {"seed": 1, "cpu": True, "precision": "fp32", "encoder": {"path": str(small_encoder)},
            "tasks": [{"define": {"name": "colours", "kind": "text_classification", "labels": ["different", "same"],
                                  "inputs": {"spans": "marked"},
                                  "files": {"train": str(root / "train.jsonl"), "validation": str(root / "val.jsonl")}},
                       "head": "mlp", "head_options": {"pooling": "spans"}}],
            "optimizer": {"lr": 3e-3}, "schedule": {"max_steps": 100, "warmup_steps": 10}, "batching": {"batch_size": 16},
            "evaluation": {"every": None, "at_end": True}, "logging": {"progress": "none", "plot": False}}


def _accuracy(run: Path) -> float:
    return json.loads((run / "summary.json").read_text())["tasks"]["user:colours"]["final"]["accuracy"]


def test_spans_learn_what_the_first_token_cannot_and_every_command_reads_them(tmp_path: Path, colours: dict, helpers):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(colours), encoding="utf-8")
    env = helpers.subprocess_env()
    done = subprocess.run(helpers.mt_command("train", str(config), "--output-dir", str(tmp_path / "spans")), capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    cls = {**colours, "tasks": [{**colours["tasks"][0], "head_options": {"pooling": "cls"}}]}
    Trainer(cls, output_dir=tmp_path / "cls").train()
    assert _accuracy(tmp_path / "spans") >= 0.9 and _accuracy(tmp_path / "cls") <= 0.7

    evaluated = subprocess.run(helpers.mt_command("evaluate", str(tmp_path / "spans"), "--json"), capture_output=True, text=True,
                               env=env, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    assert abs(scores["tasks"]["user:colours"]["metrics"]["accuracy"] - _accuracy(tmp_path / "spans")) < 1e-9
    predicted = subprocess.run(helpers.mt_command("predict", str(tmp_path / "spans"), "--input", colours["tasks"][0]["define"]["files"]["validation"],
                                                  "--output", str(tmp_path / "pred.jsonl")), capture_output=True, text=True, env=env, timeout=300)
    assert predicted.returncode == 0, predicted.stderr
    truth = [json.loads(line)["label"] for line in Path(colours["tasks"][0]["define"]["files"]["validation"]).read_text().splitlines()]
    labels = [json.loads(line)["label"] for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert sum(a == b for a, b in zip(labels, truth)) / len(truth) == pytest.approx(_accuracy(tmp_path / "spans"))

    exported = subprocess.run(helpers.mt_command("export", str(tmp_path / "spans"), str(tmp_path / "plain"), "--task", "colours"),
                              capture_output=True, text=True, env=env, timeout=300)
    assert exported.returncode != 0 and "pools spans of its rows, which no plain classifier reads" in exported.stderr
    assert "Traceback" not in exported.stderr and not (tmp_path / "plain").exists()


def test_a_head_pooling_other_numbers_of_spans_is_refused_by_mt_check(tmp_path: Path, colours: dict, helpers):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(colours), encoding="utf-8")
    done = subprocess.run(helpers.mt_command("check", str(config), "tasks.0.head_options.num_spans=3"), capture_output=True, text=True,
                          env=helpers.subprocess_env(), timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "task 'user:colours', train split: rows have 2 span(s) and the head pools 3 (head option num_spans); give each row 3 " \
           "(write [0, 0] for a span a row lacks), or (before training) set head_options: {num_spans: 2}" in done.stderr
    unmapped = {**colours, "tasks": [{**colours["tasks"][0], "define": {**colours["tasks"][0]["define"], "inputs": {}}}]}
    config.write_text(yaml.safe_dump(unmapped), encoding="utf-8")
    done = subprocess.run(helpers.mt_command("check", str(config)), capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode != 0 and "head option pooling 'spans' pools each row's spans, and the task maps none" in done.stderr


def test_a_spans_head_reading_a_task_without_spans_is_refused_before_training(tmp_path: Path, colours: dict, helpers):
    """evaluate_with, a teacher and --head run one task's head on another task's rows: a spans head needs their spans
    (an audit: evaluate_with trained every step, then lost the run at the final evaluation)."""
    plain = {"define": {**colours["tasks"][0]["define"], "name": "plain", "inputs": {}}}
    scored = {**colours, "tasks": [colours["tasks"][0], {**plain, "evaluate_with": "colours"}]}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(scored), encoding="utf-8")
    env = helpers.subprocess_env()
    for command in (("check", str(config)), ("train", str(config), "--output-dir", str(tmp_path / "ev"))):
        done = subprocess.run(helpers.mt_command(*command), capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "the head 'user:colours' cannot score task 'user:plain': that head pools 2 spans of each row, and task 'user:plain' " \
               "maps no spans" in done.stderr
    assert not (tmp_path / "ev").exists()
    teacher = tmp_path / "teacher"
    Trainer({**colours, "schedule": {"max_steps": 2, "warmup_steps": 0}}, output_dir=teacher).train()
    student = {**colours, "tasks": [{**plain, "define": {**plain["define"], "name": "colours"}}], "distill": {"teacher": str(teacher)}}
    config.write_text(yaml.safe_dump(student), encoding="utf-8")
    done = subprocess.run(helpers.mt_command("check", str(config)), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and "that head pools 2 spans of each row, and task 'user:colours' maps no spans" in done.stderr
    zero_shot = subprocess.run(helpers.mt_command("evaluate", str(teacher), "--tasks", "colours", "--input",
                                                  colours["tasks"][0]["define"]["files"]["validation"], "--head", "colours"),
                               capture_output=True, text=True, env=env, timeout=300)
    assert zero_shot.returncode == 0, zero_shot.stderr  # the same task's rows: its spans are there


def test_rows_with_other_numbers_of_spans_than_a_reading_head_pools_are_refused_before_training(tmp_path: Path, colours: dict, helpers):
    """An evaluate_with task (cls rows of 3 spans) scored by a head pooling 2: refused when the data loads, not after
    training (an audit: the run trained, then lost its model at the final evaluation)."""
    import json as _json

    files = colours["tasks"][0]["define"]["files"]
    three = {}
    for split, path in files.items():
        rows = [_json.loads(line) for line in Path(path).read_text().splitlines()]
        three[split] = tmp_path / f"{split}3.jsonl"
        three[split].write_text("".join(_json.dumps({**r, "marked": [*r["marked"], [0, 0]]}) + "\n" for r in rows))
    scored = {"define": {**colours["tasks"][0]["define"], "name": "three", "files": {k: str(v) for k, v in three.items()}},
              "evaluate_with": "colours"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**colours, "tasks": [colours["tasks"][0], scored]}), encoding="utf-8")
    env = helpers.subprocess_env()
    for command in (("check", str(config)), ("train", str(config), "--output-dir", str(tmp_path / "ev"))):
        done = subprocess.run(helpers.mt_command(*command), capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert "task 'user:three', validation split: rows have 3 span(s), and the head of 'user:colours', which scores them, pools 2" \
            in done.stderr
    assert not (tmp_path / "ev" / "model").exists() and not list((tmp_path / "ev").glob("checkpoints/step-*"))


def test_scoring_rows_with_another_tasks_spans_head_checks_their_count_first(tmp_path: Path, colours: dict, helpers):
    """mt evaluate / predict --head: a spans head of 2 given rows of 3 spans is one line naming both, before any batch."""
    import json as _json

    files = colours["tasks"][0]["define"]["files"]
    three = tmp_path / "val3.jsonl"
    three.write_text("".join(_json.dumps({**_json.loads(line), "marked": [*_json.loads(line)["marked"], [0, 0]]}) + "\n"
                             for line in Path(files["validation"]).read_text().splitlines()))
    other = {"define": {**colours["tasks"][0]["define"], "name": "three", "files": {"train": str(three), "validation": str(three)}},
             "head": "mlp", "head_options": {"pooling": "cls"}}
    run = tmp_path / "run"
    Trainer({**colours, "tasks": [colours["tasks"][0], other], "schedule": {"max_steps": 2, "warmup_steps": 0}}, output_dir=run).train()
    env = helpers.subprocess_env()
    for command in (("evaluate", str(run), "--tasks", "three", "--head", "colours"),
                    ("predict", str(run), "--task", "three", "--head", "colours", "--input", str(three), "--output", str(tmp_path / "p.jsonl"))):
        done = subprocess.run(helpers.mt_command(*command), capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert "rows have 3 span(s), and the head of 'user:colours' pools 2; give each row 2" in done.stderr
