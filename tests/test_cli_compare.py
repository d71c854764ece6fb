"""``mt compare``: finished runs and --seeds folders side by side, read from what the runs wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    for path, expected in ((tmp_path / "nothing", "no such file or folder; give a run directory (holding summary.json) or the "
                            "output folder of mt train --seeds"),
                           (unfinished, f"still running or was interrupted (mt train --resume finishes it: mt train "
                            f"{unfinished / 'config.yaml'} --output-dir {unfinished} --resume)")):
        result = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(path)])
        line = result.stderr.strip()
        assert result.exit_code == 2 and len(line.splitlines()) == 1 and str(path) in line and expected in line, line


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["compare", *args])
    line = result.stderr.strip()
    assert result.exit_code == 2 and len(line.splitlines()) == 1 and line.startswith("error: "), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return line


def test_a_metric_no_run_recorded_is_one_line_with_did_you_mean(runs):
    for args in ([str(runs["slow"])], [str(runs["seeds"])], [str(runs["slow"]), "--best"]):
        line = _one_line_error([*args, "--metric", "acuracy"])
        assert "--metric 'acuracy'" in line and "did you mean 'accuracy'?" in line and "recorded: accuracy" in line, line


def test_paths_that_are_not_runs_name_what_to_give_instead(runs, tmp_path):
    slow = runs["slow"]
    checkpoint = sorted((slow / "checkpoints").iterdir())[-1]
    expected = {
        str(slow.parent / (slow.name[:-1])): f"no such file or folder (did you mean {str(slow)!r}?)",
        str(slow / "summary.json"): f"is a file; give the folder that holds it: mt compare {slow}",
        str(slow / "model"): f"is inside the run {slow}; give the run directory: mt compare {slow}",
        str(checkpoint): f"is inside the run {slow}; give the run directory: mt compare {slow}",
        str(slow.parent): f"is a folder of runs, not a run; give the runs themselves: mt compare {runs['fast']}",
    }
    for path, fragment in expected.items():
        line = _one_line_error([path])
        assert path in line and fragment in line, line


def _unfinished_run(runs, folder: Path, last_event: dict) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text((runs["slow"] / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    lines = (runs["slow"] / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[:2] + [json.dumps(last_event)]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_failed_a_preempted_and_an_unfinished_seeds_folder_each_say_what_happened(runs, tmp_path):
    failed = _unfinished_run(runs, tmp_path / "failed", {"event": "error", "step": 3, "message": "loss of task 'rsg:terra' became "
                             "NaN or infinite at step 3; training stopped and the last good checkpoint is X (lower optimizer.lr)"})
    line = _one_line_error([str(runs["slow"]), str(failed)])
    assert "stopped on an error at step 3: loss of task 'rsg:terra' became NaN or infinite at step 3 (" in line, line
    preempted = _unfinished_run(runs, tmp_path / "preempted", {"event": "preempted", "step": 2, "signal": "SIGUSR1"})
    line = _one_line_error([str(preempted)])
    assert (f"preempted at step 2 (SIGUSR1); continue with mt train {preempted / 'config.yaml'} --output-dir {preempted} "
            "--resume") in line, line
    spaced = _unfinished_run(runs, tmp_path / "int sp", {"event": "interrupted", "step": 2})  # the command pastes into a shell
    line = _one_line_error([str(spaced)])
    assert f"mt train '{spaced / 'config.yaml'}' --output-dir '{spaced}' --resume" in line, line
    seeds = tmp_path / "seeds"
    _unfinished_run(runs, seeds.mkdir() or seeds / "seed-42", {"event": "preempted", "step": 1, "signal": "SIGTERM"})
    line = _one_line_error([str(seeds)])
    assert "the output folder of mt train --seeds whose seeds have not all finished (no seeds.json yet; seed-42)" in line, line


def test_a_preempted_run_of_two_processes_is_continued_under_a_launch_of_two(runs, tmp_path):
    """The hint was a one-process `mt train ... --resume`, which a checkpoint of 2 processes refuses."""
    run = _unfinished_run(runs, tmp_path / "ddp", {"event": "preempted", "step": 2, "signal": "SIGTERM"})
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    start = json.loads(lines[0])
    assert start["event"] == "start"
    (run / "metrics.jsonl").write_text("\n".join([json.dumps({**start, "processes": 2}), *lines[1:]]) + "\n", encoding="utf-8")
    line = _one_line_error([str(run)])
    assert (f"continue with torchrun --nproc_per_node 2 -m mtcore.cli.app train {run / 'config.yaml'} --output-dir {run} "
            "--resume") in line, line


def test_a_seeds_folder_moved_or_recorded_with_relative_paths_keeps_each_tasks_main_metric(runs, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(runs["seeds"], moved)
    spread = json.loads((moved / "seeds.json").read_text(encoding="utf-8"))
    spread["runs"] = {seed: f"elsewhere/seed-{seed}" for seed in spread["runs"]}  # as --seeds -o elsewhere, run from another folder
    (moved / "seeds.json").write_text(json.dumps(spread), encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(moved), "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    for task in TASKS:
        assert row["metrics"][task] == _summary(runs["slow"])["tasks"][task]["main_metric"]
        assert row["tasks"][task] == pytest.approx(spread["final"][f"{task}/{row['metrics'][task]}"]["mean"])
    for seed in spread["seeds"]:
        shutil.rmtree(moved / f"seed-{seed}")
    line = _one_line_error([str(moved)])
    assert "each task's main metric is unknown; give --metric NAME (recorded: accuracy" in line, line
    assert CliRunner().invoke(app, ["compare", str(moved), "--metric", "accuracy"]).exit_code == 0


def test_runs_of_different_tasks_get_a_warning_that_their_aggregates_differ(runs, tmp_path):
    other = tmp_path / "one-task"
    other.mkdir()
    summary = _summary(runs["slow"])
    summary["tasks"] = {TASKS[0]: summary["tasks"][TASKS[0]]}
    (other / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(runs["fast"]), str(other)])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().startswith("warning: the runs trained different sets of tasks, so their aggregates")
    same = CliRunner().invoke(app, ["compare", str(runs["fast"]), str(runs["slow"])])
    assert same.exit_code == 0 and "warning" not in same.stderr


def test_runs_of_one_folder_are_shown_by_their_whole_names_in_it(runs, tmp_path):
    """Grid runs' long names were cut ('loss.strategy=u…'), the one part telling them apart."""
    import shutil

    grid = tmp_path / "a-grid-folder-with-a-long-name"
    names = [f"optimizer.lr={lr},sampler.name=temperature,loss.strategy=uncertainty,batching.batch_size=16" for lr in ("1e-4", "5e-4")]
    for name, run in zip(names, ("slow", "fast")):
        shutil.copytree(runs[run], grid / name)
    result = CliRunner().invoke(app, ["compare", *(str(grid / name) for name in names)])
    assert result.exit_code == 0, result.stderr
    shown: list[str] = []  # the run column's cells, a long name folded over lines joined again
    for line in result.stdout.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            if cells[1]:  # a row's first line (its status)
                shown.append(cells[0])
            else:
                shown[-1] += cells[0]
    assert shown == names, result.stdout
    assert f"runs in {grid}" in result.stdout


def test_a_metric_spelled_with_its_plugin_in_one_run_is_the_same_column(runs, tmp_path):
    """A run whose config wrote mtcore:accuracy showed '-' under --metric accuracy, and the other run was bold as best."""
    import shutil

    other = tmp_path / "qualified"
    shutil.copytree(runs["fast"], other)
    summary = _summary(other)
    for info in summary["tasks"].values():
        info["final"] = {("mtcore:accuracy" if key == "accuracy" else key): value for key, value in info["final"].items()}
    (other / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    for metric in ("accuracy", "mtcore:accuracy"):
        result = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(other), "--metric", metric, "--json"])
        assert result.exit_code == 0, result.stderr
        rows = json.loads(result.stdout)
        for row, run in zip(rows, (runs["slow"], runs["fast"])):
            assert row["tasks"] == {task: pytest.approx(_summary(run)["tasks"][task]["final"]["accuracy"]) for task in TASKS}


def test_many_tasks_get_a_row_each_instead_of_columns_cut_to_nothing(monkeypatch):
    """20 tasks: every header showed 'user:t…' and, piped (160 columns), every value '0.…'."""
    import io

    from rich.console import Console

    import mtcore.cli.output
    from mtcore.cli.compare import _print_table

    out = io.StringIO()
    monkeypatch.setattr(mtcore.cli.output, "stdout", Console(file=out, width=160, soft_wrap=False, highlight=False))
    tasks = [f"user:task{i:02d}" for i in range(20)]
    rows = [{"run": f"runs/{name}", "kind": "run", "status": "completed", "steps": 25, "aggregate": 0.5 + k / 10, "std": {},
             "tasks": {t: (i + k) / 100 for i, t in enumerate(tasks)}, "metrics": {t: "accuracy" for t in tasks}}
            for k, name in enumerate(("first", "second"))]
    _print_table(rows, "final", None)
    text = out.getvalue()
    assert "…" not in text
    for i, task in enumerate(tasks):
        line = next(line for line in text.splitlines() if f" {task} " in line)
        assert f"{i / 100:.4f}" in line and f"{(i + 1) / 100:.4f}" in line


def test_runs_scored_with_other_main_metrics_or_weights_are_not_ranked(runs, tmp_path):
    """Two runs trained alike, one choosing by f1_macro for a task: its accuracy and the other's f1_macro shared a
    column, one of them bold as the better, and so did aggregates weighted differently (a migration audit)."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    other, weighted = tmp_path / "by-f1", tmp_path / "weighted"
    shutil.copytree(runs["fast"], other)
    shutil.copytree(runs["fast"], weighted)
    summary = _summary(other)
    summary["tasks"][TASKS[0]]["main_metric"] = "f1_macro"
    (other / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    import yaml

    config = yaml.safe_load((weighted / "config.yaml").read_text(encoding="utf-8"))
    config["evaluation"]["weights"] = {"rsg:terra": 2.0}
    (weighted / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def compare(*paths: Any) -> subprocess.CompletedProcess:
        env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "220"}
        return subprocess.run([sys.executable, "-m", "mtcore.cli.app", "compare", *map(str, paths)], capture_output=True,
                              text=True, env=env, timeout=120)

    def bold(text: str) -> list[str]:
        return re.findall(r"\x1b\[1m([^\x1b]*)", text)

    mixed = compare(runs["slow"], other)
    assert mixed.returncode == 0, mixed.stderr
    assert "warning: the runs differ in the main metric of rsg:terra, so their aggregates are different means" in mixed.stderr
    final = {name: _summary(run)["tasks"][TASKS[0]]["final"] for name, run in (("slow", runs["slow"]), ("other", other))}
    plain = re.sub(r"\x1b\[[0-9;]*m", "", mixed.stdout)
    assert f"{final['slow']['accuracy']:.4f} accuracy" in plain and f"{final['other']['f1_macro']:.4f} f1_macro" in plain
    assert not any(f"{value:.4f}" in cell for cell in bold(mixed.stdout) for value in (final["slow"]["accuracy"], final["other"]["f1_macro"]))
    assert not any(f"{_summary(run)['final']['aggregate']:.4f}" in cell for cell in bold(mixed.stdout) for run in (runs["slow"], other))
    reweighted = compare(runs["slow"], weighted)
    assert reweighted.returncode == 0 and "warning: the runs differ in evaluation.weights, so their aggregates" in reweighted.stderr
    alike = compare(runs["slow"], runs["fast"])
    assert alike.returncode == 0 and "warning" not in alike.stderr and bold(alike.stdout)
    diagnosed = {}  # a diagnostic set (weight 0 unless weighed) counted in one run's aggregate only (a regression audit)
    for name, weights in (("counted", {"rsg:lidirus": 1}), ("default", {}), ("zero", {"lidirus": 0})):
        diagnosed[name] = tmp_path / name
        shutil.copytree(runs["fast"], diagnosed[name])
        config = yaml.safe_load((diagnosed[name] / "config.yaml").read_text(encoding="utf-8"))
        config["tasks"].append({"id": "rsg:lidirus", "evaluate_with": "rsg:terra"})
        config["evaluation"]["weights"] = weights
        (diagnosed[name] / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    counted = compare(diagnosed["counted"], diagnosed["default"])
    assert counted.returncode == 0 and "warning: the runs differ in evaluation.weights" in counted.stderr
    same = compare(diagnosed["zero"], diagnosed["default"])
    assert same.returncode == 0 and "warning" not in same.stderr
    for name, weights in (("inline-counted", {"diag": 1}), ("inline-default", {})):  # a task the config defines
        diagnosed[name] = tmp_path / name
        shutil.copytree(runs["fast"], diagnosed[name])
        config = yaml.safe_load((diagnosed[name] / "config.yaml").read_text(encoding="utf-8"))
        config["tasks"].append({"define": {"name": "diag", "kind": "pair_classification"}, "evaluate_with": "rsg:terra"})
        config["evaluation"]["weights"] = weights
        (diagnosed[name] / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    inline = compare(diagnosed["inline-counted"], diagnosed["inline-default"])
    assert inline.returncode == 0 and "warning: the runs differ in evaluation.weights" in inline.stderr
    # --metric shows one metric everywhere, but each aggregate is still its run's mean of its main metrics (a regression audit)
    shown = compare(runs["slow"], other, "--metric", "accuracy")
    assert "warning: the runs differ in the main metric of rsg:terra" in shown.stderr and "each run's metric" not in shown.stderr
    assert not any(f"{_summary(run)['final']['aggregate']:.4f}" in cell for cell in bold(shown.stdout) for run in (runs["slow"], other))
    # the same weights written otherwise (a bare name for its task, a trained task's default 1) are the same mean
    for written in ({"terra": 2.0}, {"rsg:terra": 2.0, "rsg:parus": 1}):
        same = tmp_path / f"same-{len(written)}"
        shutil.copytree(weighted, same)
        config["evaluation"]["weights"] = written
        (same / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        again = compare(weighted, same)
        assert again.returncode == 0 and "warning" not in again.stderr, (written, again.stderr)


def _with_seed_values(runs, folder: Path, columns: dict[str, list[float]]) -> Path:
    """A copy of the --seeds folder whose seeds.json says the given values of its seeds (their mean and spread with them)."""
    import shutil
    import statistics

    shutil.copytree(runs["seeds"], folder)
    spread = json.loads((folder / "seeds.json").read_text(encoding="utf-8"))
    for key, values in columns.items():
        spread["final"][key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values),
                                "values": {str(seed): value for seed, value in enumerate(values)}}
    (folder / "seeds.json").write_text(json.dumps(spread), encoding="utf-8")
    return folder


def test_seeds_folders_are_tested_against_the_first_by_permuting_their_seeds(runs, tmp_path):
    import itertools

    metric = _summary(runs["slow"])["tasks"]["rsg:terra"]["main_metric"]
    terra, lower, overlapping = f"rsg:terra/{metric}", [0.1, 0.2, 0.3, 0.4], [0.15, 0.28, 0.33, 0.5]
    first = _with_seed_values(runs, tmp_path / "first", {"aggregate": lower, terra: lower})
    other = _with_seed_values(runs, tmp_path / "other", {"aggregate": [0.5, 0.6, 0.7, 0.8], terra: overlapping})
    result = CliRunner().invoke(app, ["compare", str(first), str(runs["slow"]), str(other), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert "p_values" not in rows[0] and "p_values" not in rows[1]  # the baseline itself, and a single run
    assert rows[2]["baseline"] == str(first)
    # every one of the 70 ways of dealing 8 values into two groups of 4: only the real one and its mirror are as far apart
    assert rows[2]["p_values"]["aggregate"] == pytest.approx(2 / 70)
    pooled, observed = lower + overlapping, abs(sum(lower) - sum(overlapping)) / 4
    far = sum(abs(sum(pooled[i] for i in c) - sum(pooled[i] for i in range(8) if i not in c)) / 4 >= observed - 1e-12
              for c in itertools.combinations(range(8), 4))
    assert rows[2]["p_values"]["rsg:terra"] == pytest.approx(far / 70) and far / 70 > 0.2
    assert rows[2]["seed_values"]["rsg:terra"] == overlapping
    assert "rsg:parus" in rows[2]["p_values"]  # the copies' two real seeds each: tested too (it cannot be below 1/3)
    table = CliRunner().invoke(app, ["compare", str(first), str(other)])
    assert table.exit_code == 0, table.output
    assert "permutation test of the seed means against first" in table.stdout
    assert f"other: aggregate p={2 / 70:.3f}, rsg:terra p={far / 70:.3f}" in table.stdout


def test_a_seeds_folder_alone_or_beside_runs_is_tested_against_nothing(runs):
    result = CliRunner().invoke(app, ["compare", str(runs["seeds"]), str(runs["slow"])])
    assert result.exit_code == 0 and "permutation test" not in result.stdout


def test_runs_trained_with_other_versions_say_which_in_differs(runs, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(runs["slow"], other)
    lines = (other / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    start = json.loads(lines[0])
    assert start["event"] == "start" and start["versions"]["transformers"]
    start["versions"] = {**start["versions"], "transformers": "9.9.9", "plugins": {**start["versions"]["plugins"], "mt-nli": "0.0.1"}}
    (other / "metrics.jsonl").write_text("\n".join([json.dumps(start), *lines[1:]]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[1]["differs"] == {"versions.transformers": "9.9.9", "versions.plugins.mt-nli": "0.0.1"}
    table = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(other)], env={"COLUMNS": "200"})
    assert "versions.transformers=9.9.9" in table.stdout
    same = CliRunner().invoke(app, ["compare", str(runs["slow"]), str(runs["seeds"]), "--json"])
    assert not any(key.startswith("versions.") for key in json.loads(same.stdout)[1]["differs"])  # one machine, one environment
