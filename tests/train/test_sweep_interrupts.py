"""A sweep (--seeds, --grid) stopped by Ctrl-C as one of its runs finished went on with the next runs and exited 0;
a second --seeds command into a seeds folder replaced its seeds.json, and mt average / compare then mixed the runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app


def _config(tmp_path: Path, make_config) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": None},
                                               logging={"every": 1, "progress": "none", "plot": True})))
    return path


def _ctrl_c_in_the_first_plot(monkeypatch, at: int = 1) -> None:
    import mtcore.train.plots as plots

    original, calls = plots.plot_curves, []

    def interrupted(*args, **kwargs):  # Ctrl-C after model/ and summary.json, while curves.png is drawn
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_curves", interrupted)


def _stopped_in_the_first_plot(monkeypatch, config: Path, *sweep: str) -> str:
    """``mt train CONFIG *sweep`` with a Ctrl-C in the first run's plot: exit 130, its last line."""
    _ctrl_c_in_the_first_plot(monkeypatch)
    stopped = CliRunner().invoke(app, ["train", str(config), *sweep])
    assert stopped.exit_code == 130, stopped.output
    return stopped.stderr.strip().splitlines()[-1]


def test_ctrl_c_as_a_seed_run_finishes_stops_the_sweep_and_a_second_seeds_command_is_refused(tmp_path, make_config, monkeypatch):
    config, out = _config(tmp_path, make_config), tmp_path / "seeds"
    line = _stopped_in_the_first_plot(monkeypatch, config, "--seeds", "2", "--output-dir", str(out))
    assert line.startswith("error: interrupted after the run of seed 3 finished (step 2); the next runs were not started; continue "
                           f"with mt train {config} --seeds 2 --output-dir {out} --resume"), line
    assert (out / "seed-3" / "summary.json").is_file() and not (out / "seed-4").exists()
    assert CliRunner().invoke(app, ["train", str(config), "--seeds", "2", "--output-dir", str(out), "--resume"]).exit_code == 0
    assert json.loads((out / "seeds.json").read_text())["seeds"] == [3, 4]
    more = CliRunner().invoke(app, ["train", str(config), "--seeds", "7,8", "--output-dir", str(out)])
    assert more.exit_code == 2 and more.stderr.strip().splitlines()[-1] == (
        f"error: --output-dir {out} holds the runs of seeds 3, 4 (seeds.json), which --seeds leaves out (3, 4); to add seeds, "
        "give them all: --seeds 3,4,7,8 --resume (the same config); or choose another --output-dir"), more.output
    assert not (out / "seed-7").exists()
    shutil.copytree(out / "seed-3", out / "seed-9")  # a stray seed folder (copied in by hand) is not one of the sweep's runs
    averaged = CliRunner().invoke(app, ["average", str(out), "--output", str(tmp_path / "soup")])
    assert averaged.exit_code == 0 and "averaged 2 models" in averaged.stderr, averaged.output


def test_ctrl_c_as_a_grid_run_finishes_stops_the_grid(tmp_path, make_config, monkeypatch):
    config, out = _config(tmp_path, make_config), tmp_path / "grid"
    line = _stopped_in_the_first_plot(monkeypatch, config, "--grid", "optimizer.lr=1e-3,2e-3", "--output-dir", str(out))
    assert line.startswith("error: interrupted after the run of grid run optimizer.lr=1e-3 finished (step 2)") and "--resume" in line, line
    assert not (out / "optimizer.lr=2e-3").exists()


def test_ctrl_c_while_the_next_seed_run_is_built_gives_the_resume_command(tmp_path, make_config, monkeypatch):
    import mtcore.train.trainer as trainer

    config, out = _config(tmp_path, make_config), tmp_path / "seeds"
    original, built = trainer.Trainer.__init__, []

    def build(self, *args, **kwargs):
        built.append(1)
        if len(built) == 2:
            raise KeyboardInterrupt
        original(self, *args, **kwargs)

    monkeypatch.setattr(trainer.Trainer, "__init__", build)
    stopped = CliRunner().invoke(app, ["train", str(config), "--seeds", "2", "--output-dir", str(out)])
    assert stopped.exit_code == 130, stopped.output
    line = stopped.stderr.strip().splitlines()[-1]
    assert line == (f"error: interrupted at step 0 of seed 4; no checkpoint yet, so it starts over; continue with mt train {config} "
                    f"--seeds 2 --output-dir {out} --resume"), line


def test_ctrl_c_in_the_bookkeeping_between_runs_and_a_ctrl_c_noted_before_the_sweep(tmp_path, make_config, monkeypatch):
    """A Ctrl-C while the finished seed's memory was freed said only "error: interrupted"; a Ctrl-C noted in an earlier
    run of the process (its plot) stopped a later sweep after its first seed."""
    import mtcore.train.seeds as seeds
    from mtcore.train.preemption import note_late_interrupt

    config, out = _config(tmp_path, make_config), tmp_path / "seeds"
    original = seeds._free_memory

    def interrupted() -> None:
        monkeypatch.setattr(seeds, "_free_memory", original)
        raise KeyboardInterrupt

    monkeypatch.setattr(seeds, "_free_memory", interrupted)
    note_late_interrupt()  # as if an earlier run of this process had been stopped while it drew its curves
    stopped = CliRunner().invoke(app, ["train", str(config), "--seeds", "2", "--output-dir", str(out)])
    assert stopped.exit_code == 130, stopped.output
    assert stopped.stderr.strip().splitlines()[-1].startswith("error: interrupted after the run of seed 3 finished (step 2); the next "
                                                              "runs were not started; continue with"), stopped.output
    note_late_interrupt()
    assert CliRunner().invoke(app, ["train", str(config), "--seeds", "2", "--output-dir", str(out), "--resume"]).exit_code == 0
    assert json.loads((out / "seeds.json").read_text())["status"] == "completed"


def test_a_run_interrupted_while_it_is_rebuilt_on_resume_names_its_latest_checkpoint(tmp_path):
    from mtcore.train.sweep_checks import between_runs

    run = tmp_path / "seed-4"
    for step in (1, 3):
        (run / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
        (run / "checkpoints" / f"step-{step:06d}" / "state.json").write_text("{}")
    stop = between_runs(run, seed=4)
    assert (stop.step, stop.checkpoint, stop.seed) == (3, run / "checkpoints" / "step-000003", 4)
    assert between_runs(tmp_path / "seed-5", seed=5).checkpoint is None


def test_a_grid_with_seeds_refuses_a_combination_of_other_seeds_before_anything_trains(tmp_path, make_config):
    config, out = _config(tmp_path, make_config), tmp_path / "grid"
    (out / "optimizer.lr=1e-3").mkdir(parents=True)
    (out / "optimizer.lr=1e-3" / "seeds.json").write_text(json.dumps({"seeds": [3, 4]}))
    refused = CliRunner().invoke(app, ["train", str(config), "--grid", "optimizer.lr=5e-4,1e-3", "--seeds", "1", "--output-dir", str(out),
                                       "--resume"])
    assert refused.exit_code == 2 and not (out / "optimizer.lr=5e-4").exists(), refused.output
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: --output-dir {out}: its run optimizer.lr=1e-3 holds the runs of seeds 3, 4 (seeds.json), which --seeds leaves "
        "out (4); to add seeds, give them all: --seeds 3,4 --resume (the same config); or choose another --output-dir")


def test_a_ctrl_c_in_the_last_plot_of_a_tpe_search_with_more_trials_than_combinations_leaves_it_complete(tmp_path, make_config,
                                                                                                        monkeypatch):
    """Its trials counted the asked number, not the grid's 2 combinations: exit 130, "the next runs were not started"."""
    pytest.importorskip("optuna")
    config, out = _config(tmp_path, make_config), tmp_path / "tpe"
    _ctrl_c_in_the_first_plot(monkeypatch, at=2)
    done = CliRunner().invoke(app, ["train", str(config), "--grid", "optimizer.lr=1e-3,2e-3", "--trials", "3", "--search", "tpe",
                                    "--output-dir", str(out)])
    assert done.exit_code == 0, done.output
    assert len(json.loads((out / "grid.json").read_text())["runs"]) == 2
