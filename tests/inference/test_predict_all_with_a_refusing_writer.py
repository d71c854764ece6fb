"""``mt predict RUN --task all --split test --format rsg`` of a model trained on RSG tasks beside others: the rsg writer
refuses the other tasks, and the RSG submission files are written anyway, one ``warning:`` line naming the tasks left
out and how to predict them. A task named with ``--task`` that the writer refuses stays an error."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """A run of TERRa beside a sentiment task (mokoron), tiny BERT, two steps."""
    from mtcore.testing import smoke_train

    output = tmp_path_factory.mktemp("mixed") / "run"
    return smoke_train(["rsg:terra", "sentiment:mokoron"], output_dir=output, steps=2, batch_size=4, evaluate=False).output_dir


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:") and "left out" in line]


def test_task_all_writes_the_files_the_writer_takes_and_names_the_others(cli, mixed_run, tmp_path):
    out = tmp_path / "submission"
    result = cli("predict", mixed_run, "--task", "all", "--split", "test", "--format", "rsg", "--output", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["LiDiRus.jsonl", "TERRa.jsonl"]  # no file of sentiment:mokoron
    assert all(json.loads(line)["label"] in ("entailment", "not_entailment")
               for line in (out / "TERRa.jsonl").read_text(encoding="utf-8").splitlines())
    (line,) = _warnings(result.stderr)
    assert line.startswith("warning: --format rsg left out sentiment:mokoron, which its writer refuses (the 'rsg' writer only "
                           "writes Russian SuperGLUE tasks"), line
    assert line.endswith("; predict it with --task sentiment:mokoron --split test --format jsonl --output <another folder>"), line
    assert "wrote" in result.stderr and "of sentiment:mokoron" not in result.stderr
    jsonl = tmp_path / "others"  # what the warning says to run gives the task left out
    rest = cli("predict", mixed_run, "--task", "sentiment:mokoron", "--split", "test", "--format", "jsonl", "--output", jsonl)
    assert rest.exit_code == 0, rest.output
    assert sorted(p.name for p in jsonl.parent.iterdir() if p.name.startswith("others")) == ["others"]


def test_a_task_named_with_task_that_the_writer_refuses_stays_an_error(cli, mixed_run, tmp_path):
    out = tmp_path / "sub"
    for task in ("rsg:terra,sentiment:mokoron", "sentiment:mokoron"):
        result = cli("predict", mixed_run, "--task", task, "--split", "test", "--format", "rsg", "--output", out)
        assert result.exit_code == 2, result.output
        assert "the 'rsg' writer only writes Russian SuperGLUE tasks" in result.stderr and not _warnings(result.stderr)
        assert not out.exists()


def test_task_all_when_the_writer_refuses_every_task_is_an_error(cli, tmp_path):
    from mtcore.testing import smoke_train

    run = smoke_train(["sentiment:mokoron"], output_dir=tmp_path / "run", steps=1, batch_size=4, evaluate=False).output_dir
    out = tmp_path / "sub"
    result = cli("predict", run, "--task", "all", "--split", "test", "--format", "rsg", "--output", out)
    assert result.exit_code == 2, result.output
    assert "the 'rsg' writer only writes Russian SuperGLUE tasks" in result.stderr and "not 'sentiment:mokoron'" in result.stderr
    assert not _warnings(result.stderr) and not out.exists()
