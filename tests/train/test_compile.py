"""``compile:`` in the training config: the encoder is compiled in place and the run saves normally."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtcore import Trainer
from mtcore.errors import ConfigError
from mtcore.model.heads.base import HeadSpec
from mtcore.train.config_io import load_config


def test_compile_shorthand_and_defaults():
    base = {"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra"]}
    assert load_config(base).compile.enabled is False
    on = load_config({**base, "compile": True}).compile
    assert on.enabled is True and on.dynamic is True and on.regional is True
    with pytest.raises(ConfigError):
        load_config({**base, "compile": {"enabled": True, "speed": "max"}})
    # the shorthand, then a key of the section: from the command line or on top of a config file's `compile: true`
    both = load_config(base, ["compile=true", "compile.regional=false"]).compile
    assert both.enabled is True and both.regional is False
    assert load_config({**base, "compile": True}, ["compile.dynamic=false"]).compile.model_dump() == {
        "enabled": True, "dynamic": False, "mode": None, "backend": "inductor", "regional": True}


def test_compiled_run_trains_saves_and_reloads(tmp_path: Path, make_config, helpers):
    from mtcore.model import MultitaskModel

    # the 'eager' backend runs TorchDynamo's capture (dynamic shapes, guards) without a C++ compiler
    config = make_config(compile={"enabled": True, "backend": "eager"}, schedule={"max_steps": 4, "warmup_steps": 0},
                         checkpoint={"every": None, "at_end": False})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    summary = trainer.train()
    assert summary["steps"] == 4
    layers = trainer.model.encoder.encoder.layer  # regional compilation (the default): each layer
    assert len(layers) > 1 and all(layer._compiled_call_impl is not None for layer in layers)
    saved = helpers.load_weights(tmp_path / "run" / "model")
    assert saved and not any("_orig_mod" in name for name in saved)
    loaded = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    data = trainer.engine.eval_data["user:sent"]
    batch = data.collator([data.splits["validation"][i] for i in range(4)])
    with torch.no_grad():
        assert torch.allclose(loaded("user:sent", **batch).logits, trainer.model.eval()("user:sent", **batch).logits, atol=1e-5)


def test_compiled_padding_free_run_equals_the_eager_one(tmp_path: Path, make_config, helpers):
    """Dynamo captures the packed path (varying token counts, the packing passed to attention) without
    changing it, whether it compiles the whole encoder or each layer (``regional``)."""
    weights = {}
    for how in ("eager", "whole", "regional"):
        config = make_config(compile={"enabled": how != "eager", "backend": "eager", "regional": how == "regional"},
                             schedule={"max_steps": 4, "warmup_steps": 0},
                             checkpoint={"every": None, "at_end": False}, evaluation={"at_end": False},
                             batching={"batch_size": 8, "padding_free": True, "group_by_length": False})
        config["encoder"]["options"] = {"encoder_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}
        trainer = Trainer(config, output_dir=tmp_path / f"run-{how}")
        assert trainer.train()["steps"] == 4
        encoder = trainer.model.encoder
        compiled_layers = [m for m in encoder.encoder.layer if m._compiled_call_impl is not None]
        assert (encoder._compiled_call_impl is not None) == (how == "whole")
        assert len(compiled_layers) == (len(encoder.encoder.layer) if how == "regional" else 0) and len(encoder.encoder.layer) > 1
        weights[how] = helpers.load_weights(tmp_path / f"run-{how}" / "model")
    encoder_weights = [name for name in weights["eager"] if name.startswith("encoder/")]
    assert encoder_weights
    for how in ("whole", "regional"):
        assert weights[how].keys() == weights["eager"].keys()
        for name in encoder_weights:
            assert torch.allclose(weights["eager"][name], weights[how][name], atol=1e-5), (how, name)


def test_regional_compilation_finds_the_repeated_layers(tmp_path: Path):
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder
    from mtcore.train.compile import repeated_layers

    for arch, path in (("bert", "encoder.layer"), ("distilbert", "transformer.layer")):
        model = MultitaskModel(build_tiny_encoder(tmp_path / arch, arch), {"demo:x": HeadSpec("classification", 2, kind="text_classification")})
        layers = repeated_layers(model.encoder)
        assert layers == list(model.encoder.get_submodule(path)) and len(layers) > 1, arch
    assert repeated_layers(torch.nn.Linear(2, 2)) == []
    parallel = torch.nn.Module()  # XLM-style: one list of attention blocks, one of feed-forward blocks
    parallel.attentions = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(3))
    parallel.ffns = torch.nn.ModuleList(torch.nn.Sequential(torch.nn.Linear(2, 2)) for _ in range(3))
    assert repeated_layers(parallel) == [*parallel.attentions, *parallel.ffns]


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding-free"])
def test_one_graph_for_every_batch_shape(small_encoder: Path, padding_free):
    """dynamic=True: twelve batches of different row counts and lengths reuse one compiled graph."""
    import random

    from mtcore.data.collate import Collator
    from mtcore.model import MultitaskModel
    from mtcore.model.heads.base import HeadSpec
    from mtcore.train.compile import compile_encoder

    torch._dynamo.reset()
    model = MultitaskModel(small_encoder, {"demo:a": HeadSpec("classification", 2, kind="text_classification")},
                           padding_free=padding_free).train()
    compiled = []

    def counting_backend(graph, example_inputs):
        compiled.append(graph)
        return graph.forward

    compile_encoder(model, dynamic=True, backend=counting_backend)
    collator = Collator(0, "text_classification", padding_free=padding_free)
    rng = random.Random(0)
    shapes = set()
    for _ in range(12):
        rows = [{"input_ids": [2] + [rng.randint(5, 40) for _ in range(rng.randint(1, 30))] + [3], "labels": rng.randint(0, 1)}
                for _ in range(rng.randint(2, 9))]
        batch = collator(rows)
        shapes.add(tuple(batch["input_ids"].shape))
        model("demo:a", **batch).loss.backward()
    assert len(shapes) >= 8 and len(compiled) == 1


def test_a_compiled_run_with_per_task_lora_equals_the_eager_one(tmp_path: Path, make_config, helpers):
    """Each task's adapters are switched in before its forward pass: the compiled encoder follows the switch (a gap:
    torch.compile with per-task LoRA was untested)."""
    pytest.importorskip("peft")
    weights = {}
    for how in ("eager", "regional"):
        config = make_config(compile={"enabled": how != "eager", "backend": "eager", "regional": True},
                             schedule={"max_steps": 4, "warmup_steps": 0}, optimizer={"lr": 5e-3},
                             checkpoint={"every": None, "at_end": False}, evaluation={"at_end": False})
        config["encoder"]["options"] = {"lora": {"r": 4, "per_task": True},
                                        "encoder_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}
        assert Trainer(config, output_dir=tmp_path / f"run-{how}").train()["steps"] == 4
        weights[how] = helpers.load_weights(tmp_path / f"run-{how}" / "model")
    adapters = [name for name in weights["eager"] if name.startswith("lora/")]
    assert len({name.split(":")[0] for name in adapters}) == 3 and weights["regional"].keys() == weights["eager"].keys()
    assert any(weights["eager"][name].abs().max() > 0 for name in adapters if "lora_B" in name)
    for name in adapters:
        assert torch.allclose(weights["eager"][name], weights["regional"][name], atol=1e-5), name
