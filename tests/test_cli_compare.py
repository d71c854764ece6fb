"""``mt compare``: finished runs and --seeds folders side by side, read from what the runs wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtcore.cli.app import app

TASKS = ["rsg:terra", "rsg:parus"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two 4-step runs (different learning rates, evaluated at steps 2 and 4) and a 2-seed folder."""
    from mtcore.testing import smoke_train

    root = tmp_path_factory.mktemp("compare")
    made = {}
    for name, lr in (("slow", "1e-4"), ("fast", "5e-3")):
        made[name] = smoke_train(TASKS, output_dir=root / name, steps=4, batch_size=4,
                                 overrides=[f"optimizer.lr={lr}", "evaluation.every=2"]).output_dir
    config = yaml_config(made["slow"], root / "seeds.yaml")
    seeds = CliRunner().invoke(app, ["train", str(config), "--output-dir", str(root / "seeds"), "--seeds", "2"])
    assert seeds.exit_code == 0, seeds.stderr
    made["seeds"] = root / "seeds"
    return made


def yaml_config(run: Path, target: Path) -> Path:
    target.write_text((run / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return target


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))


def test_runs_side_by_side_show_each_tasks_main_metric_and_the_aggregate(runs):
    result = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(runs["fast"]), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["run"] for row in rows] == [str(runs["slow"]), str(runs["fast"])]
    for row, name in zip(rows, ("slow", "fast")):
        summary = _summary(runs[name])
        assert row["status"] == "completed" and row["steps"] == summary["steps"] == 4
        assert row["aggregate"] == pytest.approx(summary["final"]["aggregate"])
        for task in TASKS:
            info = summary["tasks"][task]
            assert row["metrics"][task] == info["main_metric"]
            assert row["tasks"][task] == pytest.approx(info["final"][info["main_metric"]])
    table = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(runs["fast"])])
    assert table.exit_code == 0 and all(task in table.stdout for task in TASKS)
    assert f"{rows[1]['aggregate']:.4f}" in table.stdout


def test_best_and_another_metric(runs):
    result = CliRunner().invoke(app, ["compare", str(runs["fast"]), "--best", "--metric", "loss", "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    summary = _summary(runs["fast"])
    assert row["aggregate"] == pytest.approx(summary["best"]["aggregate"])
    assert row["tasks"] == pytest.approx({task: summary["tasks"][task]["best"]["loss"] for task in TASKS})


def test_a_seeds_folder_shows_the_mean_and_spread_over_its_seeds(runs):
    result = CliRunner().invoke(app, ["compare", str(runs["seeds"]), "--json"])
    assert result.exit_code == 0, result.stderr
    [row] = json.loads(result.stdout)
    spread = json.loads((runs["seeds"] / "seeds.json").read_text(encoding="utf-8"))["final"]
    assert row["kind"] == "2 seeds" and row["aggregate"] == pytest.approx(spread["aggregate"]["mean"])
    for task in TASKS:
        stats = spread[f"{task}/{row['metrics'][task]}"]
        assert row["tasks"][task] == pytest.approx(stats["mean"]) and row["std"][task] == pytest.approx(stats["std"])
    table = CliRunner().invoke(app, ["compare", str(runs["seeds"]), str(runs["slow"])])
    assert table.exit_code == 0 and f"{row['aggregate']:.4f} ± {row['std']['aggregate']:.4f}" in table.stdout


def test_a_folder_that_is_not_a_finished_run_is_one_line(runs, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "metrics.jsonl").write_text((runs["slow"] / "metrics.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    for path, expected in ((tmp_path / "nothing", "give a run directory or the output folder of mt train --seeds"),
                           (unfinished, "still running or was interrupted (mt train --resume finishes it)")):
        result = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(path)])
        line = result.stderr.strip()
        assert result.exit_code == 2 and len(line.splitlines()) == 1 and str(path) in line and expected in line, line
