"""LoRA on the shared encoder: only adapters and heads train, the saved model is a plain encoder with
the adapters merged (it predicts what the live model predicts); a killed LoRA run resumes exactly
(tests/train/test_resume.py, variant lora)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

pytest.importorskip("peft")

LORA = {"r": 4, "alpha": 8}


def test_only_the_adapters_and_heads_train_and_the_encoder_weights_stay(make_config, tmp_path, small_encoder):
    from mtcore import Trainer
    from transformers import AutoModel

    config = make_config(encoder={"path": str(small_encoder), "options": {"lora": LORA}}, schedule={"max_steps": 12, "warmup_steps": 1},
                         optimizer={"lr": 5e-3}, checkpoint={"every": None})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    model = trainer.model
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in name or name.startswith("heads.") for name in trainable), trainable
    assert any(".lora_B." in name for name in trainable) and model.lora["target_modules"] == ["query", "value"]
    original = AutoModel.from_pretrained(small_encoder).state_dict()
    live = {k.replace(".base_layer.", "."): v for k, v in model.encoder.state_dict().items() if ".lora_" not in k}
    assert all(torch.equal(live[k].cpu(), original[k]) for k in original if k in live)  # frozen: not one weight moved
    lora_b = [p for name, p in model.encoder.named_parameters() if ".lora_B." in name]
    assert any(p.abs().sum() > 0 for p in lora_b)  # the adapters did train (B starts at zero)

    manifest = json.loads((tmp_path / "run" / "model" / "mtcore.json").read_text(encoding="utf-8"))
    assert manifest["encoder"]["lora"] == {"r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query", "value"], "merged": True}
    saved = AutoModel.from_pretrained(tmp_path / "run" / "model" / "encoder")  # a plain encoder: every weight found by name
    changed = [k for k, v in saved.state_dict().items() if not torch.equal(v, original[k])]
    assert changed and all(".query." in k or ".value." in k for k in changed), changed  # the merged updates, nothing else


def test_the_saved_model_predicts_what_the_live_model_with_adapters_predicts(make_config, tmp_path, small_encoder, small_tasks):
    from mtcore import Trainer
    from mtcore.model import MultitaskModel

    config = make_config(encoder={"path": str(small_encoder), "options": {"lora": {**LORA, "target_modules": ["query", "key", "value", "dense"]}}},
                         schedule={"max_steps": 10, "warmup_steps": 1}, optimizer={"lr": 5e-3}, checkpoint={"every": None})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    loaded = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    assert loaded.lora is None and not any(".lora_" in n for n, _ in loaded.named_parameters())
    task = trainer.model.resolve_task(small_tasks[0]["define"]["name"])
    batch = {"input_ids": torch.tensor([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])}
    trainer.model.eval()
    with torch.no_grad():
        live, merged = trainer.model(task, **batch).logits, loaded(task, **batch).logits
    assert torch.allclose(live.cpu(), merged, atol=1e-5), (live, merged)

    from transformers import AutoModel

    from mtcore.export import export_encoder

    export_encoder(trainer.model, tmp_path / "exported")  # the live model with adapters (as a LoRA checkpoint loads): merged
    plain, info = AutoModel.from_pretrained(tmp_path / "exported", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info  # peft's base_layer / lora_ names were written
    expected = AutoModel.from_pretrained(tmp_path / "run" / "model" / "encoder").state_dict()
    assert all(torch.allclose(v, expected[k], atol=1e-6) for k, v in plain.state_dict().items()), "not the merged weights"


def test_lora_mistakes_are_one_line_before_anything_starts(make_config, tmp_path):
    from mtcore.cli.app import app

    runner = CliRunner()
    cases = [({"rank": 8}, "'encoder.options.lora.rank' is not a LoRA setting (did you mean 'r'?)"),
             ({"r": 0}, "'encoder.options.lora.r': the adapters' rank, an integer >= 1"),
             ({"r": 8, "dropout": 1.5}, "'encoder.options.lora.dropout': a probability in [0, 1)"),
             ({"target_modules": "qeury"}, "has no Linear module 'qeury' (did you mean 'query'?)")]
    for lora, message in cases:
        config = make_config()
        config["encoder"]["options"] = {"lora": lora}
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        commands = [["check", str(path), "--no-data"]]
        if "qeury" in message:  # needs the encoder's modules: mt check reads them (built on the meta device), and mt train
            commands = [["check", str(path)], ["train", str(path), "--output-dir", str(tmp_path / "out")]]
        for command in commands:
            result = runner.invoke(app, command)
            assert result.exit_code == 2 and message in result.output, (lora, command, result.output)
            assert not (tmp_path / "out").exists()
    config = make_config()
    config["encoder"].update(options={"lora": {}}, freeze_layers=1)  # {}: LoRA with the defaults, as mt train reads it
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = runner.invoke(app, ["check", str(path), "--no-data"])
    assert result.exit_code == 2 and "trains adapters on a frozen encoder" in result.output, result.output


def test_without_peft_defaults_the_hint_names_the_attention_projections():
    """peft has no default targets for DistilBERT or ModernBERT: the hint named the first two Linear names (k_lin, lin1)."""
    from transformers import AutoConfig, AutoModel

    from mtcore.errors import ConfigError
    from mtcore.model.lora import lora_targets

    encoder = AutoModel.from_config(AutoConfig.for_model("distilbert", vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32))
    encoder.config.model_type = "distilbert-like"  # whatever peft's table holds for distilbert itself
    with pytest.raises(ConfigError, match=r"peft has no default for a distilbert-like encoder; name its Linear modules to adapt, "
                                          r"e.g. \[q_lin, v_lin\]"):
        lora_targets(encoder, {"target_modules": None})
