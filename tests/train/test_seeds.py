"""``mt train CONFIG --seeds N``: one ordinary run per seed and the spread of their metrics."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest
import yaml

from mtcore.errors import ConfigError
from mtcore.train.seeds import parse_seeds, seed_spread


def test_parse_seeds_takes_a_count_or_a_list():
    assert parse_seeds("3", first=42) == [42, 43, 44]
    assert parse_seeds("1,7, 42", first=0) == [1, 7, 42]
    assert parse_seeds("5,", first=0) == [5]
    for bad, fragment in (("0", "at least one seed"), ("two", r"a number of seeds \(3\) or a list"), ("1,1", "distinct seeds"),
                          ("", r"a number of seeds \(3\)"), ("2,-3", "seeds are integers from 0 to 2\*\*32 - 1"),
                          ("1,,2", "an empty item in the list"), ("1000000", "at most 100 seeds from one command"),
                          (",".join(map(str, range(101))), "101 seeds; at most 100")):
        with pytest.raises(ConfigError, match=fragment):
            parse_seeds(bad, first=0)


def test_spread_is_mean_sample_std_min_max_per_metric():
    summaries = {1: {"final": {"aggregate": 0.5, "metrics": {"t/accuracy": 0.5, "t/loss": float("nan")}}},
                 2: {"final": {"aggregate": 0.7, "metrics": {"t/accuracy": 0.8}}},
                 3: {"final": {"aggregate": 0.6, "metrics": {"t/accuracy": 0.6}}, "best": {"aggregate": 0.9, "metrics": {}}}}
    spread = seed_spread(summaries)
    accuracy = spread["final"]["t/accuracy"]
    assert accuracy["mean"] == pytest.approx(statistics.fmean([0.5, 0.8, 0.6]))
    assert accuracy["std"] == pytest.approx(statistics.stdev([0.5, 0.8, 0.6]))
    assert (accuracy["min"], accuracy["max"], accuracy["n"]) == (0.5, 0.8, 3)
    assert accuracy["values"] == {"1": 0.5, "2": 0.8, "3": 0.6}
    assert "t/loss" not in spread["final"]  # a NaN is no value
    assert spread["best"]["aggregate"] == {"mean": 0.9, "std": None, "min": 0.9, "max": 0.9, "n": 1, "values": {"3": 0.9}}
    assert "status" not in spread  # only train_seeds knows what was asked for
    assert seed_spread(summaries, requested=[1, 2, 3])["status"] == "completed"
    assert seed_spread(summaries, requested=[1, 2, 3, 4])["status"] == "incomplete"


def test_mt_train_seeds_runs_each_seed_and_writes_the_spread(tmp_path: Path, make_config, helpers, monkeypatch):
    """The ``mt`` commands run in this process (CliRunner: the same commands, their exit codes and output; one
    process's start-up instead of six); ``mt train --seeds`` in a process of its own runs under torchrun in test_ddp."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    for name in [name for name in os.environ if name.startswith("MT_")]:  # as helpers.subprocess_env leaves them out
        monkeypatch.delenv(name)

    def mt(*args: str):
        return CliRunner().invoke(app, list(args))

    config = make_config(schedule={"max_steps": 3, "warmup_steps": 0}, checkpoint={"every": None})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "out"
    done = mt("train", str(path), "--output-dir", str(out), "--seeds", "5,9")
    assert done.exit_code == 0, done.output[-2000:]
    assert "seed 5: final aggregate" in done.stdout and "final metrics over 2 seeds (5, 9)" in done.stdout
    summaries = {seed: json.loads((out / f"seed-{seed}" / "summary.json").read_text()) for seed in (5, 9)}
    assert {seed: yaml.safe_load((out / f"seed-{seed}" / "config.yaml").read_text())["seed"] for seed in (5, 9)} == {5: 5, 9: 9}
    spread = json.loads((out / "seeds.json").read_text())
    finals = [summaries[s]["final"]["aggregate"] for s in (5, 9)]
    assert (spread["seeds"], spread["requested"], spread["status"]) == ([5, 9], [5, 9], "completed")
    assert spread["final"]["aggregate"]["mean"] == pytest.approx(statistics.fmean(finals))
    assert spread["final"]["aggregate"]["std"] == pytest.approx(statistics.stdev(finals))
    weights = [helpers.load_weights(out / f"seed-{s}" / "model") for s in (5, 9)]
    assert any(not (weights[0][k] == weights[1][k]).all() for k in weights[0])  # different seeds, different runs

    stamp = (out / "seed-5" / "summary.json").stat().st_mtime_ns
    again = mt("train", str(path), "--output-dir", str(out), "--seeds", "5,9", "--resume")
    assert again.exit_code == 0, again.output[-2000:]
    assert (out / "seed-5" / "summary.json").stat().st_mtime_ns == stamp  # finished seeds are kept, not retrained
    assert json.loads((out / "seeds.json").read_text()) == spread

    refused = mt("train", str(path), "--output-dir", str(out), "--seeds", "5,9")
    assert refused.exit_code == 2 and "seed 5: " in refused.stderr and "already holds a finished run (its summary.json): --resume keeps it" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # a finished seed is kept only if it was trained with this config
    changed = mt("train", str(path), "--output-dir", str(out), "--seeds", "5,9", "--resume", "optimizer.lr=0.005")
    assert changed.exit_code == 2
    assert "seed 5: cannot resume" in changed.stderr and "config key 'optimizer.lr' changed (0.001 -> 0.005)" in changed.stderr
    assert json.loads((out / "seeds.json").read_text()) == spread
    # a plain run does not go into a multi-seed folder
    plain = mt("train", str(path), "--output-dir", str(out))
    assert plain.exit_code == 2 and "holds runs of several seeds" in plain.stderr
    evaluated = mt("evaluate", str(out))
    assert evaluated.exit_code != 0 and f"pass one of them: {out / 'seed-5'}, {out / 'seed-9'}" in evaluated.stderr

    one = mt("train", str(path), "--output-dir", str(tmp_path / "one"), "--seeds", "1")  # one seed: no spread, not a spread of 0
    assert one.exit_code == 0, one.output[-2000:]
    alone = json.loads((tmp_path / "one" / "seeds.json").read_text())["final"]["aggregate"]
    assert alone["std"] is None and alone["n"] == 1
    shown = next(line for line in one.stdout.splitlines() if "│ aggregate" in line)  # the table row
    assert shown.count(f"{alone['mean']:.4f}") == 3 and " - " in shown  # mean, min, max; no std
    compared = mt("compare", str(tmp_path / "one"), "--json")
    assert compared.exit_code == 0 and json.loads(compared.stdout)[0]["std"]["aggregate"] is None


@pytest.mark.parametrize("bad, fragment", [(3, "must be a list of seeds"), ([], "non-empty list"), ([5, 5], "distinct"),
                                           ([1, -2], "from 0 to 2\\*\\*32 - 1"), ("1,2", "must be a list of seeds")])
def test_train_seeds_checks_its_seeds_before_training(bad, fragment, tmp_path):
    from mtcore.train.seeds import train_seeds

    with pytest.raises(ConfigError, match=fragment):
        train_seeds({"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra"]}, tmp_path / "out", bad)
    assert not (tmp_path / "out").exists()


def test_trainer_takes_one_override_string_and_refuses_other_configs(tmp_path):
    from mtcore import Trainer
    from mtcore.errors import UsageError

    trainer = Trainer({"encoder": {"tiny": "bert"}, "tasks": [{"id": "rsg:terra", "source": "sample"}]}, output_dir=tmp_path / "r",
                      overrides="schedule.max_steps=3")
    assert trainer.config.schedule.max_steps == 3
    with pytest.raises(UsageError, match="call train\\(\\) first"):
        trainer.model
    with pytest.raises(ConfigError, match="config must be a YAML path, a mapping or a TrainConfig, got list"):
        Trainer([1, 2])
