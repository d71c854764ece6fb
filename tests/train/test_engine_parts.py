"""Smaller engine behaviours: optimiser groups, schedules, precision, early stopping, OOM, the seed's loop."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import torch

import mtcore
from mtcore import Trainer
from mtcore.errors import ConfigError
from mtcore.train.config import OptimizerConfig, ScheduleConfig


def test_trainer_is_exported_lazily():
    from mtcore.train.trainer import Trainer as Direct

    assert mtcore.Trainer is Direct


def test_optimizer_groups_head_lr_and_no_decay(tmp_path: Path, make_config):
    config = make_config(optimizer={"lr": 1e-3, "head_lr": 5e-3, "weight_decay": 0.1}, loss={"strategy": "uncertainty"},
                         schedule={"max_steps": 1}, checkpoint={"every": None})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    groups = {g["name"]: g for g in trainer.engine.optimizer.param_groups}
    assert set(groups) == {"encoder", "encoder_no_decay", "heads", "heads_no_decay", "loss_strategy"}
    assert groups["encoder"]["initial_lr"] == 1e-3 and groups["heads"]["initial_lr"] == 5e-3
    assert groups["encoder"]["weight_decay"] == 0.1 and groups["encoder_no_decay"]["weight_decay"] == 0.0
    model = trainer.model
    no_decay = {id(p) for p in groups["encoder_no_decay"]["params"]}
    for name, p in model.encoder.named_parameters():
        if p.requires_grad and (name.endswith("bias") or "LayerNorm" in name):
            assert id(p) in no_decay, name
    # no head pools with the encoder's pooler: it is frozen (no gradient would reach it anyway)
    assert not any(p.requires_grad for p in model.encoder.pooler.parameters())
    assert groups["loss_strategy"]["params"][0] is trainer.engine.strategy.log_variances
    assert not model.training and not any(m.training for m in model.modules())  # as a loaded model: no dropout


def test_schedules_and_warmup():
    from mtcore.train.optim import build_scheduler, warmup_steps

    assert warmup_steps(ScheduleConfig(max_steps=100, warmup_ratio=0.1), 100) == 10
    assert warmup_steps(ScheduleConfig(max_steps=100, warmup_steps=7), 100) == 7
    param = torch.nn.Parameter(torch.zeros(1))
    for name, expected_mid in (("linear", 0.5), ("cosine", 0.5), ("constant", 1.0)):
        optimizer = torch.optim.AdamW([param], lr=1.0)
        scheduler = build_scheduler(optimizer, ScheduleConfig(name=name, max_steps=20, warmup_steps=10), 20)
        lrs = []
        for _ in range(20):
            lrs.append(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
        assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5)  # warmup, also for 'constant'
        assert lrs[15] == pytest.approx(expected_mid, abs=1e-6)


def test_precision_resolution(monkeypatch):
    from mtcore.train.precision import resolve_precision

    assert resolve_precision("auto", cuda=False) == "no"
    assert resolve_precision("fp32", cuda=True) == "no"
    with pytest.raises(ConfigError, match="'fp16' needs a CUDA GPU"):
        resolve_precision("fp16", cuda=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", cuda=True) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", cuda=True) == "fp16"
    with pytest.raises(ConfigError, match="no bf16 support"):
        resolve_precision("bf16", cuda=True)


def test_fused_adamw_only_on_cuda():
    from mtcore.train.optim import build_optimizer

    model = torch.nn.Module()
    model.encoder = torch.nn.Linear(2, 2)
    model.heads = torch.nn.ModuleDict({"t": torch.nn.Linear(2, 1)})
    cpu = build_optimizer(model, OptimizerConfig(), torch.device("cpu"))
    assert not cpu.defaults.get("fused")


def test_early_stopping(tmp_path: Path, make_config, helpers):
    config = make_config(optimizer={"lr": 1e-12, "head_lr": 1e-12}, schedule={"max_steps": 40},
                         evaluation={"every": 2, "early_stopping_patience": 2}, checkpoint={"every": None})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["status"] == "early_stopped"
    assert summary["steps"] == 6  # best at step 2, then two evaluations without improvement
    assert [e["step"] for e in helpers.read_events(tmp_path / "run") if e["event"] == "eval"] == [2, 4, 6]


def test_an_early_stopped_run_logs_its_last_steps_losses(tmp_path: Path, make_config, helpers):
    """Stopped at step 6 with logging.every 7, the run wrote no train event at all (no loss in the log, trackers, curves)."""
    config = make_config(optimizer={"lr": 1e-12, "head_lr": 1e-12}, schedule={"max_steps": 40}, logging={"every": 7, "progress": "none"},
                         evaluation={"every": 2, "early_stopping_patience": 2}, checkpoint={"every": None})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["status"] == "early_stopped" and summary["steps"] == 6
    trained = [e for e in helpers.read_events(tmp_path / "run") if e["event"] == "train"]
    assert {e["step"] for e in trained} == {6} and trained and all(e["loss"] > 0 and e["lr"] >= 0 for e in trained)
    assert sum(e["batches"] for e in trained) == 6  # every step's batch: one a step (sampler mode single)


def test_out_of_memory_message(tmp_path: Path, make_config, monkeypatch):
    from mtcore.model.multitask_model import MultitaskModel
    from mtcore.train.monitor import OutOfMemory

    def boom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(MultitaskModel, "forward", boom)
    with pytest.raises(OutOfMemory) as info:
        Trainer(make_config(checkpoint={"every": None}), output_dir=tmp_path / "run").train()
    message = str(info.value)
    assert "out of memory at step 1" in message and "batch of 8 examples" in message
    assert "batching.batch_size" in message and "batching.max_tokens" in message and "gradient_checkpointing" in message


def test_progress_rich_and_plain(capsys):
    from mtcore.train.progress import Progress, choose_mode

    assert choose_mode("auto", is_main=False) == "none"
    assert choose_mode("auto", is_main=True) == "plain"  # pytest's stdout is not a terminal
    rows = {"rsg:terra": {"loss": 0.5, "examples_per_s": 10.0, "tokens_per_s": 900.0, "batches": 2}}
    plain = Progress("plain", 10)
    plain.update(2, rows)
    plain.close()
    assert "step 2/10: rsg:terra loss 0.5000" in capsys.readouterr().out
    rich = Progress("rich", 10)
    rich.update(3, rows)
    rich.message("eval step 3: aggregate 0.5")
    rich.close()
    out = capsys.readouterr().out
    assert "rsg:terra" in out and "step 3/10" in out


def test_seed_plain_loop_on_our_objects(small_encoder: Path):
    """The seed README's loop, unchanged but for the imports, runs on mtcore's objects."""
    from torch.optim import AdamW
    from transformers import AutoTokenizer, get_scheduler

    from mtcore import MultitaskBatchSampler, MultitaskModel
    from mtcore.data import load_task_data
    from mtcore.plugins import get_task

    tokenizer = AutoTokenizer.from_pretrained(small_encoder)
    tasks = [get_task("rsg:terra"), get_task("rsg:parus")]
    data = {t.id: load_task_data(t, tokenizer, source="sample", max_length=64) for t in tasks}
    train_sampler = MultitaskBatchSampler(data, "train", batch_size=12)
    model = MultitaskModel(str(small_encoder), {t.id: t for t in tasks})
    optimizer = AdamW(model.parameters(), lr=5e-5)
    num_training_steps = 1 * len(train_sampler)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)
    device = torch.device("cpu")
    model.to(device)
    model.train()
    seen = set()
    for batch in train_sampler:
        batch.data.to(device)
        outputs = model.forward(batch.name, **batch.data)
        loss = outputs.loss
        print(f"Training loss: {loss} on task {batch.name}")
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        seen.add(batch.name)
    assert seen == {"rsg:terra", "rsg:parus"} and torch.isfinite(loss)


def test_quickstart_example_runs(tmp_path: Path, helpers):
    result = subprocess.run(helpers.mt_command("train", str(helpers.repo / "examples" / "quickstart.yaml"), "--output-dir", str(tmp_path / "qs")),
                            capture_output=True, text=True, env=helpers.subprocess_env(), timeout=600, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RANDOM-INIT DEMO ENCODER" in result.stdout
    summary = __import__("json").loads((tmp_path / "qs" / "summary.json").read_text())
    assert set(summary["tasks"]) == {"rsg:terra", "rsg:parus", "nli:xnli-ru", "sentiment:mokoron"}
    assert (tmp_path / "qs" / "tiny-encoder-bert" / "README.txt").read_text().startswith("RANDOM-INIT DEMO ENCODER")
    assert (tmp_path / "qs" / "curves.png").is_file() and (tmp_path / "qs" / "model" / "mtcore.json").is_file()


@pytest.mark.parametrize("arch", ["roberta", "distilbert"])
def test_any_local_encoder_directory(tmp_path: Path, make_config, arch):
    """Encoders without segment embeddings (roberta, distilbert) train through the same config."""
    from mtcore.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / arch, arch, hidden_size=32, num_layers=1, num_heads=2)
    summary = Trainer(make_config(encoder={"path": str(encoder)}, schedule={"max_steps": 3}, checkpoint={"every": None, "at_end": False}),
                      output_dir=tmp_path / "run").train()
    assert summary["steps"] == 3 and summary["final"]["metrics"]["user:pair/accuracy"] >= 0.0
    assert not list((tmp_path / "run" / "checkpoints").glob("step-*"))  # checkpoint.at_end: false


def test_tensorboard_tracker_gets_train_and_eval_scalars(tmp_path: Path, make_config):
    pytest.importorskip("tensorboard")  # in the dev extra, so CI runs this
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = make_config(logging={"every": 1, "progress": "none", "plot": False, "trackers": ["tensorboard"], "project": "tb"},
                         schedule={"max_steps": 4, "warmup_steps": 1}, evaluation={"every": 2}, checkpoint={"every": None})
    Trainer(config, output_dir=tmp_path / "run").train()
    scalars: dict[str, list] = {}
    for path in (tmp_path / "run" / "tb").rglob("events.out.tfevents*"):
        events = EventAccumulator(str(path))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars[tag] = [(e.step, e.value) for e in events.Scalars(tag)]
    assert [step for step, _ in scalars["train/lr"]] == [1, 2, 3, 4]
    assert [step for step, _ in scalars["eval/aggregate"]] == [2, 4]
    assert all(0.0 <= value <= 1.0 for _, value in scalars["eval/aggregate"])
    task_losses = [tag for tag in scalars if tag.startswith("train/") and tag.endswith("/loss")]
    assert task_losses and all(value > 0 for tag in task_losses for _, value in scalars[tag])


def test_a_tracker_that_is_not_installed_is_a_one_line_config_error(tmp_path: Path, make_config, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    config = make_config(logging={"every": 1, "progress": "none", "plot": False, "trackers": ["wandb"]})
    with pytest.raises(ConfigError, match=r"^config key 'logging.trackers.0': 'wandb' is not installed \(pip install \"mtcore\[wandb\]\"\)"):
        Trainer(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_out_of_memory_while_evaluating_names_the_evaluation(tmp_path: Path, make_config, monkeypatch, helpers):
    from mtcore.train import evaluation
    from mtcore.train.monitor import OutOfMemory

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(evaluation, "predict_task", boom)
    config = make_config(evaluation={"every": 2}, checkpoint={"every": None}, batching={"batch_size": 8, "eval_batch_size": 4})
    with pytest.raises(OutOfMemory) as info:
        Trainer(config, output_dir=tmp_path / "run").train()
    message = str(info.value)
    assert "while evaluating task 'user:" in message and "split 'validation'" in message and "batches of 4" in message
    assert "batching.eval_batch_size" in message and "\n" not in message
    errors = [e for e in helpers.read_events(tmp_path / "run") if e["event"] == "error"]
    assert errors and errors[-1]["message"] == message and errors[-1]["step"] == 2


@pytest.mark.parametrize("padding_free,fp32_residual", [(False, True), (True, True), (True, False)])
def test_bf16_autocast_trains_on_cpu_with_float32_master_weights(tmp_path: Path, make_config, helpers, padding_free, fp32_residual):
    config = make_config(precision="bf16", schedule={"max_steps": 4, "warmup_steps": 0}, checkpoint={"every": None},
                         batching={"batch_size": 8, "padding_free": padding_free})
    if not fp32_residual:
        config["encoder"]["options"] = {"fp32_residual": False}
    trainer = Trainer(config, output_dir=tmp_path / "run")
    summary = trainer.train()
    assert summary["steps"] == 4 and trainer.engine.accelerator.mixed_precision == "bf16"
    norms = {type(m).__name__ for m in trainer.engine.model.modules() if isinstance(m, torch.nn.LayerNorm)}
    assert norms == ({"LayerNorm"} if fp32_residual else {"ComputeDtypeLayerNorm"})
    losses = [e for e in helpers.read_events(tmp_path / "run") if e["event"] == "train"]
    assert len({e["task"] for e in losses}) == 3 and all(math.isfinite(e["loss"]) for e in losses)
    saved = helpers.load_weights(tmp_path / "run" / "model")
    assert {t.dtype for t in saved.values() if t.is_floating_point()} == {torch.float32}
    assert all(math.isfinite(v) for k, v in summary["final"]["metrics"].items())


def test_cuda_kernel_choice_leaves_cudnn_out_of_attention(monkeypatch):
    from mtcore.train.cuda import configure_cuda_kernels

    calls = []
    monkeypatch.setattr(torch.backends.cuda, "enable_cudnn_sdp", lambda on: calls.append(on))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    configure_cuda_kernels()
    assert calls == []  # no GPU: nothing changes
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    configure_cuda_kernels()
    assert calls == [False]


def test_time_spent_evaluating_is_left_out_of_the_training_rates(monkeypatch):
    """ex/s after an evaluation counts training time only (evaluation took 9 of the 10 seconds here)."""
    import torch

    from mtcore.train import monitor

    clock = iter([100.0, 110.0, 110.0])  # reset, flush, reset again
    monkeypatch.setattr(monitor.time, "perf_counter", lambda: next(clock))
    meter = monitor.LossMeter(["a"], torch.device("cpu"))
    meter.add("a", torch.tensor(0.5), examples=20, tokens=200)
    meter.exclude(9.0)
    rows, totals = meter.flush()
    assert totals["examples_per_s"] == 20.0 and rows["a"]["tokens_per_s"] == 200.0 and totals["seconds"] == 1.0


def test_annealed_sampling_spans_the_epochs_max_steps_covers(tmp_path: Path, make_config):
    """With schedule.max_steps the run's length is not schedule.epochs: annealing used 1 epoch (alpha stuck at 1)."""
    from mtcore.train.steps import epochs_covering

    config = make_config(sampler={"name": "annealed"}, schedule={"max_steps": 40, "epochs": None, "warmup_steps": 0},
                         checkpoint={"every": None}, evaluation={"at_end": False}, batching={"batch_size": 8})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    assert trainer.train()["steps"] == 40
    sampler = trainer.engine.sampler
    per_epoch = sampler.steps_in_epoch(0)
    assert per_epoch < 40  # the run covers several epochs
    assert sampler.num_epochs == epochs_covering(sampler, 40) > 1
    assert sampler.sampler.options["num_epochs"] == sampler.num_epochs


def test_the_epochs_a_very_long_max_steps_covers_are_estimated_past_the_counted_ones():
    """A million steps over a 24-step epoch made mt check and mt train count 41,667 epochs one by one (131 s; 1e20 never
    ended); the first COUNTED_EPOCHS are counted, the rest estimated from their mean."""
    from mtcore.train.steps import COUNTED_EPOCHS, epochs_covering

    class Epochs:
        def __init__(self, lengths):
            self.lengths, self.asked = lengths, []

        def steps_in_epoch(self, epoch):
            self.asked.append(epoch)
            return self.lengths(epoch)

    steady = Epochs(lambda e: 24)
    assert epochs_covering(steady, 24_000_000) == 1_000_000 and len(steady.asked) == COUNTED_EPOCHS
    assert epochs_covering(Epochs(lambda e: 24), 10**20) == -(-10**20 // 24)
    varying = Epochs(lambda e: 10 if e % 2 else 14)  # within the counted epochs: exact
    assert epochs_covering(varying, 14 + 10 + 14 + 1) == 4
    assert epochs_covering(Epochs(lambda e: 10 if e % 2 else 14), 12 * 2 * COUNTED_EPOCHS + 1) == 2 * COUNTED_EPOCHS + 1


def test_the_live_table_says_at_which_step_a_tasks_figures_were_logged():
    """With 48 tasks a task not drawn for a while kept its old loss and rate with nothing marking them as old (a scale
    audit): each row says its step, and is dimmed when older than the table's."""
    from rich.console import Console

    from mtcore.train.progress import Progress

    progress = Progress("none", 30)
    progress.update(2, {"user:t04": {"loss": 1.2299, "examples_per_s": 125.6, "batches": 1}})
    progress.update(30, {"user:t05": {"loss": 0.5, "examples_per_s": 10.0, "batches": 1}})
    table = progress._render()
    console = Console(width=120, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    assert [c.header for c in table.columns][-1] == "at step"
    assert [row.style for row in table.rows] == ["dim", None]
    assert "1.2299" in text and "step 30/30" in text
    lines = [line for line in text.splitlines() if "user:t04" in line or "user:t05" in line]
    assert lines[0].rstrip().rstrip("│").split()[-1] == "2" and lines[1].rstrip().rstrip("│").split()[-1] == "30"
