"""``encoder.task_layers`` in training: exact resume, starting a run from a model with task layers, export, ``mt check``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from mtcore import Trainer
from mtcore.cli.app import app
from mtcore.errors import ConfigError

FROZEN = {"lr": 1e-12, "head_lr": 1e-12, "weight_decay": 0.0}  # one step that moves nothing measurably


@pytest.fixture(scope="module")
def split_run(tmp_path_factory, shared_make_config) -> Path:
    """A 6-step run of the three synthetic tasks with the last of two layers task-specific."""
    run = tmp_path_factory.mktemp("task-layers") / "run"
    config = shared_make_config(encoder={**shared_make_config()["encoder"], "task_layers": 1}, checkpoint={"every": 2, "keep_last": 3})
    config["tasks"][0]["define"]["head_options"] = {"pooling": "pooler"}  # exportable as a plain classifier
    Trainer(config, output_dir=run).train()
    return run


def test_every_task_saves_its_own_trained_top_layer(split_run, helpers):
    weights = helpers.load_weights(split_run / "model")
    files = sorted({key.split(":")[0] for key in weights if key.startswith("task_layers/")})
    assert files == ["task_layers/user--mc.safetensors", "task_layers/user--pair.safetensors", "task_layers/user--sent.safetensors"]
    sent, pair = ({k.split(":")[1]: v for k, v in weights.items() if k.startswith(f"task_layers/user--{t}")} for t in ("sent", "pair"))
    assert any(not torch.equal(sent[k], pair[k]) for k in sent)  # each trained on its own task's batches
    template = {k.split(":")[1].removeprefix("encoder.layer.1."): v for k, v in weights.items()
                if k.startswith("encoder/") and ".layer.1." in k}
    assert template and any(not torch.equal(sent["0." + k], v) for k, v in template.items())


def test_a_crashed_run_resumes_to_the_same_weights(split_run, tmp_path, shared_make_config, helpers):
    from mtcore.train.monitor import NonFiniteLossError

    def config(**debug):
        made = shared_make_config(encoder={**shared_make_config()["encoder"], "task_layers": 1}, checkpoint={"every": 2, "keep_last": 3},
                                  debug=debug)
        made["tasks"][0]["define"]["head_options"] = {"pooling": "pooler"}
        return made

    with pytest.raises(NonFiniteLossError):
        Trainer(config(inject_nan_at_step=5), output_dir=tmp_path / "crashed").train()
    Trainer(config(inject_nan_at_step=5), output_dir=tmp_path / "crashed", resume=True, overrides=["debug.inject_nan_at_step=null"]).train()
    straight, resumed = helpers.load_weights(split_run / "model"), helpers.load_weights(tmp_path / "crashed" / "model")
    assert straight.keys() == resumed.keys() and any(k.startswith("task_layers/") for k in straight)
    assert [k for k in straight if not torch.equal(straight[k], resumed[k])] == []


def test_a_next_run_starts_each_task_from_its_own_top_layers(split_run, tmp_path, make_config, helpers):
    trained = helpers.load_weights(split_run / "model")
    config = make_config(encoder={"path": str(split_run / "model"), "load_heads": True, "task_layers": 1}, optimizer=FROZEN,
                         schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
    config["tasks"][0]["define"]["head_options"] = {"pooling": "pooler"}
    Trainer(config, output_dir=tmp_path / "next").train()
    started = helpers.load_weights(tmp_path / "next" / "model")
    assert started.keys() == trained.keys()
    assert all(torch.allclose(trained[k], started[k], atol=1e-6) for k in trained)
    start = next(e for e in helpers.read_events(tmp_path / "next") if e["event"] == "start")
    assert any("encoder.task_layers: the trained top layers of user:sent, user:pair, user:mc loaded" in n for n in start["notes"])


def test_a_run_without_task_layers_cannot_start_from_a_model_with_them(split_run, tmp_path, make_config):
    config = make_config(encoder={"path": str(split_run / "model")})
    with pytest.raises(ConfigError, match=r"^config key 'encoder.task_layers': .* has 1 task-specific top layers and this run 0; "
                                          r"set encoder.task_layers: 1, or start from one task's model \(mt export"):
        Trainer(config, output_dir=tmp_path / "run").train()
    assert not (tmp_path / "run").exists()
    written = tmp_path / "c.yaml"  # mt check says so too (it said "config ok": the count was compared once the model was built)
    written.write_text(yaml.safe_dump(config), encoding="utf-8")
    checked = CliRunner().invoke(app, ["check", str(written), "--no-data"])
    assert checked.exit_code == 2 and "has 1 task-specific top layers and this run 0" in checked.stderr, checked.output


def test_export_writes_the_tasks_plain_model_with_its_own_top_layer(split_run, tmp_path, helpers):
    from transformers import AutoModelForSequenceClassification

    from mtcore.model import MultitaskModel

    done = subprocess.run(helpers.mt_command("export", str(split_run), str(tmp_path / "sent"), "--task", "user:sent"),
                          capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "sent").eval()
    model = MultitaskModel.from_pretrained(split_run / "model")
    batch = {"input_ids": torch.tensor([[2, 10, 11, 12, 3], [2, 13, 14, 3, 0]]), "attention_mask": torch.tensor([[1] * 5, [1, 1, 1, 1, 0]])}
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).logits, model("user:sent", **batch).logits, rtol=0, atol=1e-5)
        other = model.task_layers.copies["user:pair"][0].state_dict()
        exported = {k.removeprefix("bert.encoder.layer.1."): v for k, v in plain.state_dict().items() if k.startswith("bert.encoder.layer.1.")}
        assert any(not torch.equal(exported[k], other[k]) for k in other)

    refused = subprocess.run(helpers.mt_command("export", str(split_run), str(tmp_path / "enc"), "--encoder-only"),
                             capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "the encoder's last 1 layers are task-specific (encoder.task_layers)" in refused.stderr
    assert not (tmp_path / "enc").exists()
    cls_head = subprocess.run(helpers.mt_command("export", str(split_run), str(tmp_path / "pair"), "--task", "user:pair"),
                              capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert cls_head.returncode == 1 and "user:pair" in cls_head.stderr, cls_head.stderr
    assert "--encoder-only" not in cls_head.stderr  # the way this model refuses (above)


@pytest.mark.parametrize("key, value, said", [
    ("task_layers", 2, "config key 'encoder.task_layers'=2 but the encoder has 2 layers: at least one must stay shared; give at most 1"),
    # mt check said "config ok" for freeze_layers=5 on a 2-layer encoder, which mt train refused
    ("freeze_layers", 5, "error: config key 'encoder.freeze_layers': 5, but encoder BertModel has 2 layers (encoder.layer); give at "
                         "most 2 (or encoder.freeze_encoder: true for all)"),
])
def test_mt_check_refuses_more_layers_than_the_encoder_has(tmp_path, make_config, helpers, key, value, said):
    config = make_config(encoder={**make_config()["encoder"], key: value})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(helpers.mt_command("check", str(path)), capture_output=True, text=True, env=helpers.subprocess_env(), timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert said in done.stderr


def test_compiled_and_padding_free_runs_with_task_layers_equal_the_eager_padded_one(tmp_path, make_config, helpers, one_torch_thread):
    """The copies run inside the compiled encoder (whole: one graph per task) or are compiled themselves (regional),
    and the packed path runs them like the padded one."""
    weights = {}
    for how in ("padded", "packed", "whole", "regional"):
        config = make_config(compile={"enabled": how in ("whole", "regional"), "backend": "eager", "regional": how == "regional"},
                             schedule={"max_steps": 4, "warmup_steps": 0}, checkpoint={"every": None, "at_end": False},
                             evaluation={"at_end": False}, batching={"batch_size": 8, "padding_free": how != "padded", "group_by_length": False})
        config["encoder"]["task_layers"] = 1
        config["encoder"]["options"] = {"encoder_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}
        trainer = Trainer(config, output_dir=tmp_path / how)
        assert trainer.train()["steps"] == 4
        copies = [layer for own in trainer.model.task_layers.copies.values() for layer in own]
        assert all((layer._compiled_call_impl is not None) == (how == "regional") for layer in copies)
        weights[how] = helpers.load_weights(tmp_path / how / "model")
    assert any(name.startswith("task_layers/") for name in weights["padded"])
    for how in ("packed", "whole", "regional"):
        assert weights[how].keys() == weights["padded"].keys()
        far = [name for name in weights["padded"] if not torch.allclose(weights["padded"][name], weights[how][name], atol=1e-5)]
        assert far == [], how

