"""mt evaluate / mt predict on runs whose tasks are not all readable now: a task registered from Python in the training
session, a task without the split asked for; and --input reports the file it scored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from clitools import clean_env

ROWS = [("you are great", "ok"), ("thanks a lot", "ok"), ("you idiot", "toxic"), ("shut up fool", "toxic")] * 3
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", ROWS), ("dev.jsonl", ROWS[:6])):
        (folder / name).write_text("".join(json.dumps({"comment_text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
    return folder


TRAIN_WITH_A_REGISTERED_TASK = """
import sys
from mtcore import Trainer
from mtcore.plugins import register_task
from mtcore.task import Source, Task

data, run = sys.argv[1], sys.argv[2]
register_task(Task(name="mycomments", kind="text_classification", labels=("ok", "toxic"), inputs={"text": "comment_text"},
                   sources={"local": Source.local("jsonl", {"train": "train.jsonl", "validation": "dev.jsonl"})}))
Trainer({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "logging": {"progress": "none", "plot": False},
         "tasks": [{"id": "user:mycomments", "source": "local", "data_dir": data}, {"id": "rsg:terra", "source": "sample"}][:int(sys.argv[3])]},
        output_dir=run).train()
"""


def test_a_run_of_a_task_registered_from_python_is_scored_and_predicted_from_its_saved_task(tmp_path: Path, cli):
    data, run = _files(tmp_path / "data"), tmp_path / "run"
    trained = subprocess.run([sys.executable, "-c", TRAIN_WITH_A_REGISTERED_TASK, str(data), str(run), "2"], capture_output=True,
                             text=True, env=clean_env(**ENV), timeout=300)
    assert trained.returncode == 0, trained.stderr

    every = cli("evaluate", run, "--json")  # this process has no user:mycomments: the other task is scored
    assert every.exit_code == 0, every.stderr
    assert list(json.loads(every.stdout)["tasks"]) == ["rsg:terra"]
    assert "config names task 'user:mycomments', which no installed plugin registers" in every.stderr
    assert "left out" in every.stderr and "config key" not in every.stderr

    scored = cli("evaluate", run, "--tasks", "user:mycomments", "--input", data / "dev.jsonl", "--json")
    assert scored.exit_code == 0, scored.stderr
    report = json.loads(scored.stdout)
    assert report["input"] == str(data / "dev.jsonl") and report["tasks"]["user:mycomments"]["rows"] == 6
    assert report["tasks"]["user:mycomments"]["source"] == "--input" and "user:mycomments/accuracy" in report["metrics"]

    predicted = cli("predict", run, "--task", "user:mycomments", "-i", data / "dev.jsonl")
    assert predicted.exit_code == 0, predicted.stderr
    assert [json.loads(line)["label"] in ("ok", "toxic") for line in predicted.stdout.splitlines()] == [True] * 6


def test_a_run_of_registered_tasks_alone_says_to_register_them_again_not_to_evaluate_the_run_it_was_given(tmp_path: Path, cli):
    data, run = _files(tmp_path / "data"), tmp_path / "run"
    trained = subprocess.run([sys.executable, "-c", TRAIN_WITH_A_REGISTERED_TASK, str(data), str(run), "1"], capture_output=True,
                             text=True, env=clean_env(**ENV), timeout=300)
    assert trained.returncode == 0, trained.stderr
    result = cli("evaluate", run)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: no task of the model can be scored here: nothing installed reads the data of user:mycomments; "
                           "register its user: tasks from Python again, as the run did when it trained"), line
    assert "evaluate the run directory" not in result.stderr


def test_every_task_of_a_run_is_scored_on_a_split_those_that_lack_it_are_named(tmp_path: Path, cli):
    from mtcore import Trainer

    data = _files(tmp_path / "data")
    define = {"name": "comments", "kind": "text_classification", "labels": ["ok", "toxic"], "inputs": {"text": "comment_text"},
              "files": {"train": str(data / "train.jsonl"), "validation": str(data / "dev.jsonl")}}
    config = {"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "logging": {"progress": "none", "plot": False},
              "tasks": [{"define": define}, {"id": "rsg:terra", "source": "sample"}]}
    Trainer(config, output_dir=tmp_path / "run").train()
    result = cli("evaluate", tmp_path / "run", "--split", "test", "--json")
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout)["tasks"]) == ["rsg:terra"]
    assert "note: left out: task 'user:comments'" in result.stderr and "has no 'test' split" in result.stderr
    named = cli("evaluate", tmp_path / "run", "--split", "test", "--tasks", "user:comments")
    assert named.exit_code == 1 and "has no 'test' split" in named.stderr and len(named.stderr.strip().splitlines()) == 1
    (tmp_path / "only.yaml").write_text(yaml.safe_dump({**config, "tasks": [{"define": define}]}))
    Trainer(yaml.safe_load((tmp_path / "only.yaml").read_text()), output_dir=tmp_path / "alone").train()
    nothing = cli("evaluate", tmp_path / "alone", "--split", "test")
    assert nothing.exit_code == 1 and "no task of" in nothing.stderr and "has a 'test' split" in nothing.stderr


def test_a_conll_file_scores_a_token_task_whose_own_files_are_json_lines_as_the_same_rows_do(tmp_path: Path, cli):
    from mtcore import Trainer

    sentences = [(["Anna", "lives", "in", "Paris"], ["B-PER", "O", "O", "B-LOC"]), (["Bob", "left"], ["B-PER", "O"])] * 4
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.jsonl", "dev.jsonl"):
        (data / name).write_text("".join(json.dumps({"words": w, "tags": t}) + "\n" for w, t in sentences), encoding="utf-8")
    (tmp_path / "dev.conll").write_text("".join("".join(f"{w} {t}\n" for w, t in zip(*s)) + "\n" for s in sentences), encoding="utf-8")
    define = {"name": "ner", "kind": "token_classification", "labels": ["O", "B-PER", "B-LOC"], "inputs": {"tokens": "words", "label": "tags"},
              "files": {"train": str(data / "train.jsonl"), "validation": str(data / "dev.jsonl")}}
    Trainer({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "logging": {"progress": "none", "plot": False},
             "tasks": [{"define": define}]}, output_dir=tmp_path / "run").train()
    rows = cli("evaluate", tmp_path / "run", "--input", data / "dev.jsonl", "--json")
    conll = cli("evaluate", tmp_path / "run", "--input", tmp_path / "dev.conll", "--input-format", "conll", "--json")
    assert rows.exit_code == 0 and conll.exit_code == 0, (rows.stderr, conll.stderr)
    assert json.loads(conll.stdout)["metrics"] == json.loads(rows.stdout)["metrics"]
    assert "user:ner/token_accuracy" in json.loads(conll.stdout)["metrics"]


def test_evaluate_model_scores_a_model_in_memory_as_mt_evaluate_scores_it_saved(tmp_path: Path, cli):
    from mtcore import Trainer
    from mtcore.data import load_task_data
    from mtcore.model import MultitaskModel
    from mtcore.plugins import get_task
    from mtcore.predict import evaluate_model

    config = {"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 3}, "logging": {"progress": "none", "plot": False},
              "tasks": [{"id": "nli:nli", "source": "sample"}]}
    Trainer(config, output_dir=tmp_path / "run").train()
    model = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    model.train()
    task = get_task("nli:nli")
    xnli = get_task("nli:xnli-ru")
    data = {t.id: load_task_data(t, model.tokenizer, source="sample", splits=("validation",), encoder_config=model.encoder.config)
            for t in (task, xnli)}
    result = evaluate_model(model, data, heads={"nli:xnli-ru": "nli:nli"}, weights={"nli:xnli-ru": 0})
    assert model.training  # left as it was
    saved = json.loads(cli("evaluate", tmp_path / "run", "--tasks", "nli:nli,nli:xnli-ru", "--head", "nli:nli", "--json").stdout)
    for key in ("nli:nli/accuracy", "nli:nli/loss", "nli:xnli-ru/accuracy", "nli:xnli-ru/loss"):
        assert abs(result["metrics"][key] - saved["metrics"][key]) < 1e-6, key
    assert result["aggregate"] == result["metrics"]["nli:nli/accuracy"]  # xnli-ru at weight 0
    # data of a task whose labels are in another order than its head's: refused, as predict() refuses it (it scored them
    # as the wrong labels)
    import pytest

    from mtcore.errors import ConfigError

    reordered = task.replace(labels=tuple(reversed(task.labels)))
    other = {task.id: load_task_data(reordered, model.tokenizer, source="sample", splits=("validation",),
                                     encoder_config=model.encoder.config)}
    with pytest.raises(ConfigError, match=r"^task 'nli:nli' has the labels .* now, and its head was trained with .*the labels must "
                                          r"be the same, in the same order"):
        evaluate_model(model, other)
