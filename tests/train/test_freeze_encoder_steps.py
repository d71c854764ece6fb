"""``encoder.freeze_encoder_steps``: the heads train alone for the first N steps, then the whole model (LP-FT)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mtcore import Trainer


def _encoder_at(checkpoint: Path) -> dict[str, torch.Tensor]:
    return {k.removeprefix("encoder."): v for k, v in load_file(str(checkpoint / "model.safetensors")).items() if k.startswith("encoder.")}


@pytest.mark.parametrize("strategy", ["single", "pcgrad"])  # pcgrad sets the encoder's gradients itself
def test_the_encoder_stays_as_loaded_while_the_heads_train_then_follows_its_own_schedule(tmp_path: Path, make_config, helpers,
                                                                                          small_encoder, strategy):
    config = make_config(encoder={"path": str(small_encoder), "freeze_encoder_steps": 4}, loss={"strategy": strategy},
                         schedule={"max_steps": 8, "warmup_ratio": 0.25}, checkpoint={"every": 4, "keep_last": 2},
                         logging={"every": 1, "progress": "none", "plot": False})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    loaded = load_file(str(small_encoder / "model.safetensors"))
    step4, step8 = (_encoder_at(tmp_path / "run" / "checkpoints" / f"step-00000{n}") for n in (4, 8))
    assert step4.keys() == loaded.keys() and all(torch.equal(step4[k], loaded[k]) for k in loaded)
    assert sum(not torch.equal(step8[k], loaded[k]) for k in loaded) > len(loaded) // 2
    # the logged rate is the encoder's: 0 while frozen, then the run's schedule over the 4 steps left (warmup 25%: 1 step)
    lrs = {e["step"]: round(e["lr"] / 1e-3, 6) for e in helpers.read_events(tmp_path / "run") if e["event"] == "train"}
    assert list(lrs.values()) == [0, 0, 0, 0, 0, 1, round(2 / 3, 6), round(1 / 3, 6)]
    groups = {g["name"]: g for g in trainer.engine.optimizer.param_groups}
    heads_rates = [trainer.engine.scheduler.lr_lambdas[list(groups).index("heads")](s) for s in range(8)]
    assert heads_rates == pytest.approx([0, 0.5, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])  # the run's schedule (warmup: 2 steps)


def test_freezing_the_encoder_for_the_whole_run_or_longer_is_refused_in_one_line(tmp_path: Path, make_config, small_encoder):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    config = make_config(encoder={"path": str(small_encoder), "freeze_encoder_steps": 6}, schedule={"max_steps": 6})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    for command in (["check", str(path)], ["train", str(path), "--output-dir", str(tmp_path / "run")]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr.strip() == ("error: config key 'encoder.freeze_encoder_steps': 6, but the run has 6 step(s), so the "
                                         "encoder would never train; give fewer, or encoder.freeze_encoder: true to train the heads alone")
    assert not (tmp_path / "run").exists()
    both = CliRunner().invoke(app, ["check", str(path), "encoder.freeze_encoder=true", "--no-data"])
    assert both.exit_code == 2 and "encoder.freeze_encoder already freezes the encoder for the whole run" in both.stderr
    assert CliRunner().invoke(app, ["check", str(path), "encoder.freeze_encoder_steps=5"]).exit_code == 0
    # with schedule.max_steps the count needs no data: a --grid refuses such a value before any combination trains
    grid = CliRunner().invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "grid"), "--grid", "encoder.freeze_encoder_steps=2,9"])
    assert grid.exit_code == 2 and "--grid encoder.freeze_encoder_steps=9: config key 'encoder.freeze_encoder_steps': 9" in grid.stderr
    assert not (tmp_path / "grid").exists()
    no_data = CliRunner().invoke(app, ["check", str(path), "--no-data"])
    assert no_data.exit_code == 2 and "but the run has 6 step(s)" in no_data.stderr


def test_a_single_step_left_to_a_warmup_is_refused_and_polynomial_ends_where_the_runs_does(tmp_path: Path, make_config, small_encoder):
    """All but one step frozen with a warmup: the encoder's one step had rate 0, so it never trained, silently (a
    regression audit); polynomial's floor (lr_end) was divided by 1.0 instead of the optimizer's rate."""
    from mtcore.errors import ConfigError
    from mtcore.train.config import ScheduleConfig, TrainConfig
    from mtcore.train.optim import build_scheduler
    from mtcore.train.steps import check_frozen_steps

    config = TrainConfig.model_validate(make_config(encoder={"path": str(small_encoder), "freeze_encoder_steps": 7},
                                                    schedule={"max_steps": 8, "warmup_ratio": 0.25}))
    with pytest.raises(ConfigError, match=r"7, but the run has 8 step\(s\), so the encoder would never train \(its warmup starts "):
        check_frozen_steps(config, 8)
    check_frozen_steps(config.model_copy(update={"schedule": ScheduleConfig(max_steps=8, epochs=None)}), 8)  # no warmup: 1 step
    check_frozen_steps(config, 9)
    encoder, heads = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"name": "encoder", "params": [encoder]}, {"name": "heads", "params": [heads]}], lr=1e-3)
    polynomial = ScheduleConfig(name="polynomial", max_steps=8, epochs=None)
    scheduler = build_scheduler(optimizer, polynomial, 8, 4)
    plain = build_scheduler(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3), polynomial, 4)
    assert [scheduler.lr_lambdas[0](s) for s in range(4, 8)] == [plain.lr_lambdas[0](s) for s in range(4)]


@pytest.mark.parametrize("strategy", ["pcgrad", "nash_mtl", "imtl", "db_mtl", "gradnorm"])
def test_a_gradient_combiner_on_a_frozen_encoder_is_refused(tmp_path: Path, make_config, strategy):
    """It trained exactly as 'sum' and logged a weight of 0 for every task, saying nothing (a migration audit)."""
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(make_config(encoder={**make_config()["encoder"], "freeze_encoder": True}, loss={"strategy": strategy})))
    result = CliRunner().invoke(app, ["check", str(path), "--no-data"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: config key 'loss.strategy': {strategy!r} combines the tasks' gradients on the shared "
                                     "encoder, and encoder.freeze_encoder: true leave nothing shared to combine (it would train as "
                                     "'sum' does); use loss.strategy: sum (or weighted, uncertainty), or share the encoder")
    assert CliRunner().invoke(app, ["check", str(path), "--no-data", "loss.strategy=sum"]).exit_code == 0
    # per-task LoRA adapters on a frozen encoder: nothing shared either (pcgrad's weights were bit-identical to sum's)
    per_task = ["encoder.freeze_encoder=false", "encoder.options.lora={r: 4, per_task: true}"]
    lora = CliRunner().invoke(app, ["check", str(path), "--no-data", *per_task])
    assert lora.exit_code == 2 and "and per-task LoRA adapters (encoder.options.lora.per_task) leave nothing shared" in lora.stderr
    assert CliRunner().invoke(app, ["check", str(path), "--no-data", "encoder.freeze_encoder=false", "encoder.options.lora={r: 4}"]).exit_code == 0


@pytest.mark.parametrize("strategy", ["single", "sum"])
def test_the_backward_pass_skips_the_frozen_encoder(tmp_path: Path, make_config, small_encoder, monkeypatch, strategy):
    """While the heads train alone the encoder runs without gradients (no backward through it: the frozen phase costs
    about a forward); from step N + 1 its gradients are computed again."""
    import mtcore.train.loop as loop

    reached: list[int] = []
    real = loop.train_loop

    def counting(engine):  # a gradient reaching the word embeddings: a backward pass went through the whole encoder
        first = next(engine.unwrapped.encoder.parameters())
        first.register_hook(lambda grad: reached.append(engine.state.step + 1))
        return real(engine)

    monkeypatch.setattr(loop, "train_loop", counting)
    config = make_config(encoder={"path": str(small_encoder), "freeze_encoder_steps": 3}, loss={"strategy": strategy},
                         schedule={"max_steps": 5, "warmup_steps": 0}, checkpoint={"every": None})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    assert reached and min(reached) == 4 and max(reached) == 5
    assert trainer.engine.unwrapped.encoder_without_grad is False
