"""Config mistakes and tricky overrides through the real ``mt`` command (docs/cli.md "Training").

A mistake is one ``error:`` line naming the key and the fix, exit code 2, nothing written; a
valid override is typed like the schema, as the run's resolved ``config.yaml`` shows.
(Cases already covered through the CLI elsewhere, e.g. ``optimizer.lrr=1`` in test_config.py and
test_cli_check.py, are not repeated.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from clitools import MT, clean_env, run_mt
from mtcore.cli.app import app

BASE = "encoder: {tiny: bert}\ntasks:\n  - {id: rsg:terra, source: sample}\n  - {id: rsg:parus, source: sample, max_length: 64}\n"


def _mt(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, [line for line in result.stderr.splitlines() if line.strip()]


# (case, config file text or None for BASE, overrides, the error line after "error: ")
MISTAKES = [
    ("top-level key typo", None, ["optimiser.lr=1e-4"], "config key 'optimiser' is not allowed (did you mean 'optimizer'?)"),
    ("text for a number", None, ["optimizer.lr=fast"],
     "config key 'optimizer.lr': input should be a valid number, unable to parse string as a number (got 'fast')"),
    ("fraction for a step count", None, ["schedule.max_steps=2.5"], "config key 'schedule.max_steps': input should be a valid "
                                                                    "integer, got a number with a fractional part (got 2.5)"),
    ("unknown task", None, ["tasks.0.id=rsg:tera"], "config key 'tasks.0.id': unknown task 'rsg:tera' (did you mean 'rsg:terra'"),
    ("unknown sampler", None, ["sampler.name=temprature"], "config key 'sampler.name': 'temprature' is not one of"),
    ("unknown head", None, ["tasks.1.head=multiple_choise"], "config key 'tasks.1.head': 'multiple_choise' is not one of"),
    ("unknown metric", None, ["tasks.0.metrics=[acuracy]"], "config key 'tasks.0.metrics': 'acuracy' is not one of"),
    ("another name of a split", None, ["evaluation.split=dev"],  # not similar as text: dev is what files call validation
     "config key 'evaluation.split': 'dev' is not one of 'train', 'validation', 'test' (did you mean 'validation'?)"),
    ("unknown tracker", None, ["logging.trackers=[tensorbord]"],
     "config key 'logging.trackers.0': 'tensorbord' is not one of 'tensorboard', 'wandb' (did you mean 'tensorboard'?)"),
    ("task index out of range", None, ["tasks.5.max_length=64"],
     "override 'tasks.5.max_length=64': no list item '5' at 'tasks.5' (it has 2 items: rsg:terra, rsg:parus); use one of them "
     "or its index, or add the task to 'tasks' first"),
    ("per-task key of a task not in the config", None, ["tasks.rsg:danetqa.batch_size=8"],
     "override 'tasks.rsg:danetqa.batch_size=8': no list item 'rsg:danetqa' at 'tasks.rsg:danetqa'"),
    ("index past a list the file does not hold", None, ["optimizer.betas.2=0.5"],
     "override 'optimizer.betas.2=0.5': no list item '2' at 'optimizer.betas.2' (it has 2 items)"),
    ("index into an unset list", None, ["tasks.0.metrics.0=accuracy"],
     "override 'tasks.0.metrics.0=accuracy': 'tasks.0.metrics' is not set, so it has no item '0'; give the whole list "
     "(tasks.0.metrics=[...])"),
    ("a key below a value", None, ["optimizer.lr.max=1"],
     "override 'optimizer.lr.max=1': 'optimizer.lr' is a value, not a section; set it as optimizer.lr=VALUE"),
    ("two dots", None, ["optimizer..lr=1"], "override 'optimizer..lr=1': the key 'optimizer..lr' has an empty part"),
    ("value that is not YAML", None, ["tasks.0.metrics=[accuracy"],
     "override 'tasks.0.metrics=[accuracy': the value is not valid YAML (expected ',' or ']', but got '<stream end>' at character 10)"),
    ("YAML syntax error", "encoder: {tiny: bert\ntasks: [rsg:terra]\n", [], "line 2: invalid YAML (expected ',' or '}', but got ':')"),
    ("YAML tab indent", "encoder:\n\ttiny: bert\ntasks: [rsg:terra]\n", [], "line 2: invalid YAML (found character '\\t'"),
    ("duplicate key", BASE + "schedule:\n  max_steps: 2\n  max_steps: 3\n", [],
     "line 7: invalid YAML (key 'max_steps' is given twice (first on line 6); keep one)"),
    ("empty file", "", [], "is empty; it needs at least 'encoder' and 'tasks'"),
    ("comments only", "# encoder: {tiny: bert}\n", [], "is empty; it needs at least 'encoder' and 'tasks'"),
    ("a list", "- encoder\n- tasks\n", [], "must hold a mapping of keys (encoder, tasks, ...), not a list"),
    ("tasks is a number", "encoder: {tiny: bert}\ntasks: 5\n", [], "config key 'tasks': input should be a valid list (got 5)"),
    ("null for a number", None, ["optimizer.lr=null"],
     "config key 'optimizer.lr' is empty (null); give a number, or leave the key out for the default (5e-05)"),
    ("empty override value", None, ["batching.batch_size="],
     "config key 'batching.batch_size' is empty (null); give a whole number, or leave the key out for the default (16)"),
    ("empty section in the file", BASE + "optimizer:\n", [],
     "config key 'optimizer' is empty (null); give its keys, or leave the section out for its defaults"),
    ("negative learning rate", None, ["optimizer.lr=-1e-4"], "config key 'optimizer.lr': input should be greater than 0 (got '-1e-4')"),
    ("zero learning rate", None, ["optimizer.lr=0"], "config key 'optimizer.lr': input should be greater than 0 (got 0)"),
    ("infinite learning rate", None, ["optimizer.lr=.inf"], "config key 'optimizer.lr': input should be a finite number (got inf)"),
    ("overflowing learning rate", None, ["optimizer.lr=1e400"], "config key 'optimizer.lr': input should be a finite number"),
    ("zero steps", None, ["schedule.max_steps=0"], "config key 'schedule.max_steps': input should be greater than or equal to 1 (got 0)"),
    ("negative steps", None, ["schedule.max_steps=-3"], "config key 'schedule.max_steps': input should be greater than or equal to 1"),
    ("zero epochs", None, ["schedule.epochs=0"], "config key 'schedule.epochs': input should be greater than 0 (got 0)"),
    ("warmup ratio above 1", None, ["schedule.warmup_ratio=1.5"], "config key 'schedule.warmup_ratio': input should be less than 1 (got 1.5)"),
    ("Adam beta above 1", None, ["optimizer.betas=[0.9, 1.5]"], "config key 'optimizer.betas.1': input should be less than 1 (got 1.5)"),
    ("evaluation split typo", None, ["evaluation.split=valdation"],
     "config key 'evaluation.split': 'valdation' is not one of 'train', 'validation', 'test' (did you mean 'validation'?)"),
    ("a date where text goes", BASE + "logging: {project: 2024-01-01}\n", [],
     "config key 'logging.project': input should be a valid string (got the date 2024-01-01); YAML reads 2024-01-01 as a date: "
     "quote it ('2024-01-01')"),
    ("a short task name two tasks share", "encoder: {tiny: bert}\ntasks: [rsg:terra, {define: {name: terra, kind: text_classification, "
     "labels: [a, b], files: {train: t.jsonl}}}]\n", ["tasks.terra.max_length=32"],
     "override 'tasks.terra.max_length=32': 'terra' names more than one task of the config (rsg:terra, user:terra); use the full id"),
]


@pytest.mark.parametrize(("text", "overrides", "expected"), [case[1:] for case in MISTAKES], ids=[case[0] for case in MISTAKES])
def test_a_config_mistake_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, text, overrides, expected):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(BASE if text is None else text, encoding="utf-8")
    code, lines = _mt("check", str(config), *overrides, "--no-data")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


@pytest.mark.parametrize("override", ["optimizer.lr=.inf", "optimizer.betas=[0.9, 1.5]", "tasks.rsg:danetqa.batch_size=8"])
def test_mt_train_refuses_before_writing_the_run(tmp_path, monkeypatch, override):
    """An infinite learning rate trained to a NaN loss (exit 1, the run folder left behind); a beta above 1
    was torch's 'unexpected ValueError' (exit 1) when the optimizer was built."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(BASE + "schedule: {max_steps: 2}\n", encoding="utf-8")
    code, lines = _mt("train", "c.yaml", override, "--output-dir", "run")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


def test_mt_debug_shows_the_traceback_of_a_config_mistake(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(BASE, encoding="utf-8")
    quiet = run_mt("check", str(config), "optimizer.lr=null", "--no-data")
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = run_mt("check", str(config), "optimizer.lr=null", "--no-data", env={"MT_DEBUG": "1"})
    assert loud.returncode == 2 and "Traceback" in loud.stderr and "ConfigError: config key 'optimizer.lr' is empty" in loud.stderr


def _write_reviews(folder: Path) -> None:
    folder.mkdir(parents=True)
    for split, n in (("train", 12), ("val", 6)):
        rows = [{"text": ("good" if i % 2 else "bad") + f" review {i}", "label": ["neg", "pos"][i % 2]} for i in range(n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_tricky_overrides_are_typed_like_the_schema_in_the_saved_config(tmp_path):
    """Run from another folder than the config's; every override lands in run/config.yaml as the schema types it."""
    conf, work = tmp_path / "conf", tmp_path / "work"
    conf.mkdir()
    _write_reviews(work / "data")
    (conf / "c.yaml").write_text(
        "encoder: {tiny: bert}\n"
        "tasks:\n  - {id: rsg:terra, source: sample}\n"
        "  - define: {name: reviews, kind: text_classification, labels: [neg, pos], files: {train: train.jsonl, validation: val.jsonl}}\n"
        "schedule: {max_steps: 1}\nbatching: {batch_size: 4}\nevaluation: {every: 5, at_end: false}\n"
        "checkpoint: {every: null, at_end: false}\nlogging: {plot: false}\ncompile: false\n", encoding="utf-8")
    overrides = [
        'logging.project="x=y z"',                                      # quoted, with '=' and a space
        "output_dir=2024-01-01",                                        # text key: not YAML's date
        "encoder.revision=1.10",                                        # text key: not YAML's 1.1
        "encoder.options={encoder_kwargs: {hidden_dropout_prob: 0.0}}",  # a nested mapping ...
        "encoder.options.encoder_kwargs.attention_probs_dropout_prob=0",  # ... and a key below it, not in the file
        "encoder.tiny.hidden_size=32",                                  # below the `tiny: bert` shorthand
        "compile.regional=false",                                       # below the `compile: false` shorthand
        "tasks.1.metrics=[accuracy]", "tasks.0.max_length=64", "tasks.terra.batch_size=2",
        "optimizer.lr=1e-4", "optimizer.head_lr=1e-3",                  # head_lr: not in the file
        "optimizer.betas.1=0.98",                                       # an item of the schema's default list
        "evaluation.every=null", "logging.trackers=[]",
        "tasks.reviews.data_dir=data",                                  # from the current folder; the files start there
    ]
    result = subprocess.run([MT, "train", "../conf/c.yaml", *overrides, "--output-dir", "run"], cwd=work, capture_output=True,
                            text=True, env=clean_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((work / "run" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["logging"]["project"] == "x=y z" and saved["output_dir"] == str(work / "run") and saved["encoder"]["revision"] == "1.10"
    assert saved["encoder"]["options"] == {"encoder_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0}}
    assert saved["encoder"]["tiny"] == {"arch": "bert", "hidden_size": 32, "num_layers": 2, "num_heads": 2}
    assert saved["compile"]["enabled"] is False and saved["compile"]["regional"] is False
    terra, reviews = saved["tasks"]
    assert reviews["metrics"] == ["accuracy"] and terra["max_length"] == 64 and terra["batch_size"] == 2
    assert saved["optimizer"]["lr"] == 1e-4 and isinstance(saved["optimizer"]["lr"], float) and saved["optimizer"]["head_lr"] == 1e-3
    assert saved["optimizer"]["betas"] == [0.9, 0.98]
    assert saved["evaluation"]["every"] is None and saved["logging"]["trackers"] == []
    assert reviews["data_dir"] == str(work / "data") and reviews["define"]["files"] == {"train": "train.jsonl", "validation": "val.jsonl"}

    # the run's saved config, edited by hand into an invalid one: --resume says so in one line (was: unexpected ValidationError)
    saved_path = work / "run" / "config.yaml"
    saved_path.write_text(saved_path.read_text(encoding="utf-8").replace("lr: 0.0001", "lr: -1"), encoding="utf-8")
    before = sorted(p.name for p in (work / "run").iterdir())
    resumed = run_mt("train", str(conf / "c.yaml"), *overrides[:-1], f"tasks.reviews.data_dir={work / 'data'}",
                     "--output-dir", str(work / "run"), "--resume")
    lines = [line for line in resumed.stderr.splitlines() if line.strip()]
    assert resumed.returncode == 2 and len(lines) == 1, resumed.stderr
    assert "is not a valid config (config key 'optimizer.lr': input should be greater than 0 (got -1))" in lines[0]
    assert sorted(p.name for p in (work / "run").iterdir()) == before


@pytest.mark.parametrize("tasks", ["rsg:terra", "{id: rsg:terra, source: sample}"])
def test_per_task_overrides_below_the_one_task_shorthand(tmp_path, tasks):
    """``tasks: rsg:terra`` (or one mapping) is a list of one task; its keys were refused ('tasks.0.rsg:terra' is not allowed)."""
    config = tmp_path / "c.yaml"
    config.write_text(f"encoder: {{tiny: bert}}\ntasks: {tasks}\n", encoding="utf-8")
    for override in ("tasks.rsg:terra.batch_size=8", "tasks.terra.batch_size=8", "tasks.0.batch_size=8"):
        code, lines = _mt("check", str(config), override, "--no-data")
        assert code == 0, (override, lines)
    from mtcore.train.config_io import load_config

    assert load_config(config, ["tasks.terra.batch_size=8"]).tasks[0].batch_size == 8


def test_one_inline_task_without_a_list_reads_its_files_from_the_config_folder(tmp_path, monkeypatch):
    """``tasks: {define: ...}``: its relative files were read from the current folder instead of the config's."""
    _write_reviews(tmp_path / "conf" / "data")
    config = tmp_path / "conf" / "c.yaml"
    config.write_text("encoder: {tiny: bert}\nschedule: {max_steps: 2}\ntasks: {define: {name: reviews, kind: text_classification, "
                      "labels: [neg, pos], files: {train: data/train.jsonl, validation: data/val.jsonl}}}\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, lines = _mt("check", str(config))
    assert code == 0, lines
    assert list((tmp_path / "elsewhere").iterdir()) == []
