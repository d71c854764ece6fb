"""The engine end to end: every sampler and loss strategy, run artefacts, NaN and evaluation behaviour."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from mtcore import Trainer
from mtcore.train.monitor import NonFiniteLossError

SAMPLERS = ["proportional", "temperature", "uniform", "round_robin", "annealed", "fixed"]
STRATEGIES = ["sum", "weighted", "uncertainty", "pcgrad", "rlw", "dwa"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_trains(tmp_path: Path, make_config, helpers, sampler):
    config = make_config(sampler={"name": sampler}, schedule={"max_steps": 6, "epochs": 2}, checkpoint={"every": None})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 6
    trained = {e["task"] for e in helpers.read_events(tmp_path / "run") if e["event"] == "train"}
    assert trained <= {"user:sent", "user:pair", "user:mc"} and trained
    assert set(summary["tasks"]) == {"user:sent", "user:pair", "user:mc"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_loss_strategy_trains_every_task_each_step(tmp_path: Path, make_config, helpers, strategy):
    config = make_config(loss={"strategy": strategy, "weights": {"sent": 2.0}} if strategy == "weighted" else {"strategy": strategy},
                         schedule={"max_steps": 4, "warmup_steps": 0}, logging={"every": 1, "progress": "none", "plot": False},
                         checkpoint={"every": None})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    events = helpers.read_events(tmp_path / "run")
    per_step = {}
    for e in events:
        if e["event"] == "train":
            per_step.setdefault(e["step"], set()).add(e["task"])
    assert per_step == {s: {"user:sent", "user:pair", "user:mc"} for s in range(1, 5)}
    assert summary["steps"] == 4
    if strategy in ("uncertainty", "rlw", "dwa"):
        weights = [e for e in events if e["event"] == "loss_weights"]
        assert weights and set(weights[-1]["weights"]) == {"user:sent", "user:pair", "user:mc"}
        if strategy != "dwa":  # dwa's weights stay 1 for its first two windows of 100 steps
            assert any(abs(w - 1.0) > 1e-6 for w in weights[-1]["weights"].values())  # trained, or drawn


def test_run_directory_artefacts(tmp_path: Path, make_config, helpers):
    from mtcore.model import MultitaskModel

    config = make_config(schedule={"max_steps": 9, "warmup_steps": 1}, evaluation={"every": 3, "at_end": True},
                         checkpoint={"every": 2, "keep_last": 2, "keep_best": True}, logging={"every": 3, "progress": "plain", "plot": True})
    run = tmp_path / "run"
    trainer = Trainer(config, output_dir=run)
    summary = trainer.train()
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "model/mtcore.json"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["schedule"]["max_steps"] == 9
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["steps"] == summary["steps"] == 9
    events = helpers.read_events(run)
    assert {e["event"] for e in events} >= {"start", "train", "eval"}
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6, 9]
    assert set(evals[0]["metrics"]) >= {"user:sent/accuracy", "user:sent/f1_macro", "user:pair/accuracy", "user:mc/accuracy"}
    # checkpoints: the last two and the best one, all complete
    steps = sorted(int(p.name.split("-")[1]) for p in (run / "checkpoints").glob("step-*"))
    best = summary["best"]["step"]
    assert steps[-2:] == [8, 9] and set(steps) == {8, 9} | {best}
    assert summary["best"]["checkpoint"].endswith(f"step-{best:06d}")
    expected = ["model.safetensors", "optimizer.json", "optimizer.safetensors", "rng-0.json", "rng-0.safetensors", "sampler.json",
                "state.json", "trainer.json", "trainer.safetensors"]
    assert all(sorted(f.name for f in p.iterdir()) == expected for p in (run / "checkpoints").glob("step-*"))
    # no pickle anywhere: the optimizer state is safetensors + JSON and reads back with its AdamW moments
    from mtcore.train.state_files import load_state

    optimizer_state = load_state(run / "checkpoints" / "step-000009" / "optimizer")
    first = next(iter(optimizer_state["state"].values()))
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(first) and isinstance(first["exp_avg"], torch.Tensor)
    assert all(isinstance(key, int) for key in optimizer_state["state"])
    # the final model reloads and predicts like the trained one
    loaded = MultitaskModel.from_pretrained(run / "model")
    live = trainer.model.eval()
    batch = trainer.engine.eval_data["user:pair"].collator([trainer.engine.eval_data["user:pair"].splits["validation"][i] for i in range(4)])
    with torch.no_grad():
        assert torch.equal(loaded("user:pair", **batch).logits, live("user:pair", **batch).logits)
    assert (run / "curves.png").stat().st_size > 1000


def test_evaluation_is_deterministic_and_needs_no_dropout(tmp_path: Path, make_config):
    from mtcore.train.evaluation import evaluate

    trainer = Trainer(make_config(schedule={"max_steps": 2}, checkpoint={"every": None}), output_dir=tmp_path / "run")
    trainer.train()
    engine = trainer.engine
    engine.model.train()  # evaluation must switch dropout off itself

    def run():
        return evaluate(engine.model, engine.eval_data, engine.tasks, engine.accelerator, split="validation", batch_size=5,
                        metric_fn=lambda name: engine.metric_fns[name])

    first, second = run(), run()
    assert first == second and engine.model.training
    # another batch size, same predictions: nothing random, no dependence on batching
    assert {k: v for k, v in first.items() if not k.endswith("/loss")} == \
        {k: v for k, v in engine.state.last_metrics.items() if not k.endswith("/loss")}


def test_nan_loss_stops_with_task_and_step(tmp_path: Path, make_config, helpers, monkeypatch):
    config = make_config(schedule={"max_steps": 20}, checkpoint={"every": 3, "keep_last": 5}, logging={"every": 4, "progress": "none", "plot": False})
    monkeypatch.setenv("MT_INJECT_NAN_AT_STEP", "7")
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(config, output_dir=run).train()
    message = str(info.value)
    assert "became NaN or infinite at step 7" in message and "task 'user:" in message
    assert "step-000006" in message  # the last good checkpoint, written before the NaN
    steps = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert steps == ["step-000003", "step-000006"]
    assert not (run / "model").exists()
    errors = [e for e in helpers.read_events(run) if e["event"] == "error"]
    assert errors and "step 7" in errors[0]["message"]


def test_nan_through_the_cli_exits_1_with_one_line(tmp_path: Path, make_config, helpers):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 8}, checkpoint={"every": 4})))
    result = subprocess.run(helpers.mt_command("train", str(config), "--output-dir", str(tmp_path / "run"), "debug.inject_nan_at_step=6"),
                            capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "at step 6" in lines[0] and "step-000004" in lines[0]


def test_existing_run_is_not_overwritten(tmp_path: Path, make_config):
    from mtcore.errors import ConfigError

    config = make_config(schedule={"max_steps": 2}, checkpoint={"every": None})
    Trainer(config, output_dir=tmp_path / "run").train()
    with pytest.raises(ConfigError, match=r"already holds a finished run \(its summary.json\): --resume keeps it as it is"):
        Trainer(config, output_dir=tmp_path / "run").train()
    (tmp_path / "run" / "summary.json").rename(tmp_path / "summary.json")  # as if it had stopped: --resume would continue it
    with pytest.raises(ConfigError, match="already holds a run; add --resume to continue it"):
        Trainer(config, output_dir=tmp_path / "run").train()
    (tmp_path / "summary.json").rename(tmp_path / "run" / "summary.json")
    with pytest.raises(ConfigError, match="config key 'optimizer.lr' changed"):
        Trainer(make_config(schedule={"max_steps": 2}, checkpoint={"every": None}, optimizer={"lr": 0.5}),
                output_dir=tmp_path / "run", resume=True).train()


def test_a_model_folder_mtcore_did_not_write_is_refused_before_training_not_after(tmp_path: Path, make_config):
    """Your own model/ in the output folder counted as a run ("add --resume"); --resume then trained every step and
    failed at the end, writing model/, leaving checkpoints in your folder."""
    from mtcore.errors import ConfigError

    config = make_config(schedule={"max_steps": 2}, checkpoint={"every": None})
    (tmp_path / "proj" / "model").mkdir(parents=True)
    (tmp_path / "proj" / "model" / "weights.bin").write_bytes(b"mine")
    for resume in (False, True):
        with pytest.raises(ConfigError, match=r"proj holds a model/ folder that mtcore did not write \(no mtcore.json\), where "
                                              r"the run writes its model at the end .*: move it away, or choose another --output-dir"):
            Trainer(config, output_dir=tmp_path / "proj", resume=resume).train()
        assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "proj").rglob("*")) == ["proj/model", "proj/model/weights.bin"]
    (tmp_path / "proj" / "model" / "weights.bin").unlink()  # an empty model/ is no one's: the run uses it
    Trainer(config, output_dir=tmp_path / "proj").train()
    assert (tmp_path / "proj" / "model" / "mtcore.json").is_file()


def test_ctrl_c_while_a_checkpoint_is_written_leaves_no_half_written_checkpoint(tmp_path: Path, make_config, monkeypatch):
    """Ctrl-C in the middle of writing checkpoints/step-N left checkpoints/.tmp-step-N until a --resume cleaned it."""
    from mtcore.train.preemption import TrainingInterrupted

    def interrupted(directory, **parts):
        (directory / "model.safetensors").write_bytes(b"half")  # part of it written, as when the signal comes
        raise KeyboardInterrupt

    config = make_config(schedule={"max_steps": 4, "warmup_steps": 0}, checkpoint={"every": 2}, evaluation={"at_end": False})
    monkeypatch.setattr("mtcore.train.events.write_checkpoint_files", interrupted)
    with pytest.raises(TrainingInterrupted):
        Trainer(config, output_dir=tmp_path / "run").train()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == []


def test_a_run_that_failed_while_starting_can_be_started_again(tmp_path: Path, make_config):
    from mtcore.errors import DataError

    config = make_config(schedule={"max_steps": 2}, checkpoint={"every": None})
    broken = {**config, "tasks": [{**config["tasks"][0], "data_dir": str(tmp_path / "missing")}, *config["tasks"][1:]]}
    with pytest.raises(DataError):
        Trainer(broken, output_dir=tmp_path / "run").train()
    assert not (tmp_path / "run").exists()  # the directory it made is removed again: nothing half-written
    # a directory holding only a config (left by an earlier failed start) is reused
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("# resolved config of this run; left behind\n")
    with pytest.raises(DataError):
        Trainer(broken, output_dir=tmp_path / "run").train()
    assert (tmp_path / "run").is_dir()  # a directory it did not make is left alone
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 2


def test_flex_packed_attention_on_a_cpu_is_refused_before_anything_is_written(tmp_path: Path, make_config):
    from mtcore.errors import ConfigError

    config = make_config(schedule={"max_steps": 2}, batching={"batch_size": 4, "padding_free": True}, compile=True)
    config["encoder"]["options"] = {"packed_attention": "flex", "encoder_kwargs": {"attention_probs_dropout_prob": 0.0}}
    with pytest.raises(ConfigError, match=r"'encoder.options.packed_attention': flex trains on a CUDA GPU only \(this run is on cpu"):
        Trainer(config, output_dir=tmp_path / "run").train()
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(__import__("importlib").util.find_spec("flash_attn") is not None, reason="flash-attn is installed here")
def test_mt_train_with_flash_attention_kernels_that_are_not_installed_is_one_line_and_writes_nothing(tmp_path: Path, make_config, helpers):
    def run_mt(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(helpers.mt_command(*args), capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)

    config = make_config(precision="bf16", schedule={"max_steps": 2}, checkpoint={"every": None})
    path = tmp_path / "config.yaml"
    expected = {  # BERT's attention dropout 0.1 first, then with none
        "0.1": "error: flash_attention FA4 has no attention dropout, and this encoder's is 0.1; set encoder.options.encoder_kwargs."
               "attention_probs_dropout_prob: 0 (or its attention_dropout) or leave flash_attention out",
        "0.0": "error: flash_attention FA4: its kernels did not load (ModuleNotFoundError: No module named 'flash_attn'); "
               "pip install flash-attn-4 (Hopper or Blackwell GPU), or leave flash_attention out"}
    for dropout, line in expected.items():
        config["encoder"]["options"] = {"flash_attention": "fa4", "encoder_kwargs": {"attention_probs_dropout_prob": float(dropout)}}
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = run_mt("train", str(path), "--output-dir", str(tmp_path / "run"))
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("accumulation", [1, 4, 5])
def test_an_epoch_with_gradient_accumulation_trains_every_batch(tmp_path: Path, make_config, accumulation):
    """18 batches at 4 or 5 a step: a last, shorter step takes the 2 or 3 left over (they were never trained)."""
    config = make_config(schedule={"epochs": 1, "warmup_steps": 0}, optimizer={"lr": 1e-3, "gradient_accumulation_steps": accumulation},
                         batching={"batch_size": 8, "group_by_length": False}, checkpoint={"every": None},
                         sampler={"name": "round_robin"})  # one epoch: each task's 6 batches, once
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["examples_seen"] == 3 * 48  # every row of the three tasks, once
    assert summary["steps"] == -(-18 // accumulation)


def test_ctrl_c_after_the_run_finished_keeps_it_finished(tmp_path: Path, make_config, monkeypatch):
    """Ctrl-C while curves.png was drawn (model/ and summary.json written) called the run interrupted, exit 130, with a
    --resume line that then had nothing to do."""
    import json

    def plot(*args, **kwargs):
        raise KeyboardInterrupt

    config = make_config(schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": None},
                         logging={"every": 1, "progress": "none", "plot": True})
    monkeypatch.setattr("mtcore.train.plots.plot_curves", plot)
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 2 and (tmp_path / "run" / "summary.json").is_file()
    events = [json.loads(line)["event"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "interrupted" not in events


def test_curves_of_many_tasks_leave_the_legends_out_without_a_bare_warning(tmp_path, recwarn):
    """48 tasks: ~150 legend entries covered the evaluation plot and ran off the figure, and matplotlib's "Tight layout
    not applied" came out as a bare warning line (a scale audit)."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from mtcore.train import plots

    events = [{"event": "train", "step": s, "task": f"user:t{t}", "loss": 1.0 / s} for s in (1, 2) for t in range(48)]
    events += [{"event": "eval", "step": 2, "aggregate": 0.5, "metrics": {f"user:t{t}/{m}": 0.5 for t in range(48) for m in ("accuracy", "f1")}}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    titles = []
    real = plots._lines
    plots_lines = lambda ax, series, *args: (real(ax, series, *args), titles.append((ax.get_title(), ax.get_legend())))  # noqa: E731
    import unittest.mock

    with unittest.mock.patch.object(plots, "_lines", plots_lines):
        assert plots.plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png") is None
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert titles == [("training loss per task (48 lines: no legend; the values are in metrics.jsonl)", None),
                      ("evaluation (97 lines: no legend; the values are in metrics.jsonl)", None)]
    assert not [w for w in recwarn if "layout" in str(w.message)]
    plt.close("all")
