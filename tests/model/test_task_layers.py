"""``task_layers``: every task's own copy of the encoder's last layers (partial sharing), in the model itself."""

from __future__ import annotations

import json
import re

import pytest
import torch

from mtcore.errors import ConfigError, ModelFileError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec

from .conftest import random_batch

HEADS = {
    "demo:a": HeadSpec("classification", 3, kind="pair_classification", labels=("x", "y", "z"), options={"dropout": 0.0}),
    "demo:b": HeadSpec("classification", 3, kind="pair_classification", labels=("x", "y", "z"), options={"dropout": 0.0}),
}


@pytest.fixture(scope="module")
def encoder3(tmp_path_factory) -> str:
    from mtcore.testing import build_tiny_encoder

    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc3"), "bert", hidden_size=32, num_layers=3, num_heads=2))


def _model(encoder: str, **options) -> MultitaskModel:
    torch.manual_seed(0)
    return MultitaskModel(encoder, HEADS, **options)


def _stack(model: MultitaskModel):
    return model.encoder.encoder.layer  # BERT's list of layers: the tests' own oracle


def test_before_training_the_copies_compute_what_the_shared_encoder_computes(encoder3):
    batch = random_batch("pair_classification")
    plain, split = _model(encoder3), _model(encoder3, task_layers=2)
    for task in HEADS:
        torch.testing.assert_close(split(task, **batch).logits, plain(task, **batch).logits, rtol=0, atol=0)
    assert list(split.task_layers.copies) == list(HEADS) and all(len(own) == 2 for own in split.task_layers.copies.values())


def test_a_tasks_loss_trains_its_own_top_layers_only_and_the_encoder_keeps_its_templates(encoder3):
    model = _model(encoder3, task_layers=1).train()
    templates = list(_stack(model))
    model("demo:a", **random_batch("pair_classification")).loss.backward()
    own, other = model.task_layers.copies["demo:a"], model.task_layers.copies["demo:b"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in own.parameters())
    assert all(p.grad is None for p in other.parameters())
    assert all(p.grad is None and not p.requires_grad for p in templates[-1].parameters())  # the template never runs
    assert all(p.grad is not None for p in templates[0].parameters())  # shared layers train
    assert list(_stack(model)) == templates  # put back after the forward pass


def test_the_templates_are_put_back_when_the_forward_pass_fails(encoder3):
    model = _model(encoder3, task_layers=1)
    templates = list(_stack(model))
    with pytest.raises(Exception):
        model("demo:a", input_ids=torch.full((2, 5), 10_000), attention_mask=torch.ones(2, 5, dtype=torch.long))  # ids out of range
    assert list(_stack(model)) == templates


def test_tasks_diverge_after_steps_on_one_and_save_load_keeps_each_tasks_layers(encoder3, tmp_path):
    model = _model(encoder3, task_layers=2).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    for seed in range(3):
        optimizer.zero_grad()
        model("demo:a", **random_batch("pair_classification", seed=seed)).loss.backward()
        optimizer.step()
    model.eval()
    batch = random_batch("pair_classification", seed=9)
    before = {task: model(task, **batch).logits for task in HEADS}
    a, b = (model.task_layers.copies[t].state_dict() for t in HEADS)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    model.save_pretrained(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / "mtcore.json").read_text())
    assert manifest["encoder"]["task_layers"]["count"] == 2
    assert manifest["format_version"] == 2  # an mtcore that reads only version 1 would drop the copies: it refuses
    assert manifest["encoder"]["task_layers"]["layers"] == ["encoder.layer.1", "encoder.layer.2"]
    assert {info["task_layers_file"] for info in manifest["tasks"].values()} == {"task_layers/demo--a.safetensors", "task_layers/demo--b.safetensors"}
    loaded = MultitaskModel.from_pretrained(tmp_path / "saved")
    assert loaded.task_layers is not None and loaded.task_layers.count == 2
    for task in HEADS:
        torch.testing.assert_close(loaded(task, **batch).logits, before[task], rtol=0, atol=0)
    # the saved encoder/ is the shared part with the pretrained top layers: a plain AutoModel folder
    original = MultitaskModel(encoder3, HEADS).encoder.state_dict()
    saved_encoder = loaded.encoder.state_dict()
    assert all(torch.equal(saved_encoder[k], original[k]) for k in original if k.startswith("encoder.layer.2."))


def test_a_missing_task_layers_file_and_a_changed_count_are_one_line(encoder3, tmp_path):
    _model(encoder3, task_layers=1).save_pretrained(tmp_path / "saved")
    with pytest.raises(ConfigError, match=r"task_layers=2: the saved model has 1 task-specific top layers"):
        MultitaskModel.from_pretrained(tmp_path / "saved", task_layers=2)
    (tmp_path / "saved" / "task_layers" / "demo--b.safetensors").unlink()
    with pytest.raises(ModelFileError, match=r"demo--b.safetensors: missing"):
        MultitaskModel.from_pretrained(tmp_path / "saved", verify=False)


@pytest.mark.parametrize("count, message", [(3, r"task_layers=3 but the encoder has 3 layers: at least one must stay shared"),
                                            (-1, r"task_layers must be a whole number"), (1.5, r"task_layers must be a whole number")])
def test_impossible_counts_are_one_line(encoder3, count, message):
    with pytest.raises(ConfigError, match=message):
        _model(encoder3, task_layers=count)


def test_lora_and_task_layers_are_refused_together(encoder3):
    pytest.importorskip("peft")
    with pytest.raises(ConfigError, match="leave task_layers out"):
        _model(encoder3, task_layers=1, lora={"r": 2})


def test_a_head_added_later_gets_copies_of_the_pretrained_top_layers(encoder3):
    model = _model(encoder3, task_layers=1)
    with torch.no_grad():
        for p in model.task_layers.copies["demo:a"].parameters():
            p.add_(1.0)
    model.add_head("demo:c", HeadSpec("regression", 1, kind="regression"))
    template = _stack(model)[-1].state_dict()
    copy = model.task_layers.copies["demo:c"][0].state_dict()
    assert all(torch.equal(copy[k], template[k]) for k in template)
    assert all(p.requires_grad for p in model.task_layers.copies["demo:c"].parameters())


def test_frozen_layers_stay_frozen_in_the_copies(encoder3):
    model = _model(encoder3, task_layers=2, freeze_layers=2)
    first, second = model.task_layers.copies["demo:a"]
    assert not any(p.requires_grad for p in first.parameters())  # copies layer 1: frozen by freeze_layers=2
    assert all(p.requires_grad for p in second.parameters())


def test_the_copies_train_at_the_encoders_learning_rate_and_layer_decay_follows_their_depth(encoder3):
    model = _model(encoder3, task_layers=2)
    groups = {g["name"]: g for g in model.parameter_groups(1e-3, head_lr=1e-2, weight_decay=0.01, layer_decay=0.5)}
    assert groups["task_layers.layer2"]["lr"] == pytest.approx(1e-3)
    assert groups["task_layers.layer1"]["lr"] == pytest.approx(5e-4)
    assert groups["encoder.layer0"]["lr"] == pytest.approx(2.5e-4)
    copies = {id(p) for p in model.task_layers.parameters()}
    in_groups = [id(p) for g in groups.values() for p in g["params"]]
    assert len(in_groups) == len(set(in_groups))  # each parameter once
    assert copies <= {id(p) for name, g in groups.items() if name.startswith("task_layers") for p in g["params"]}
    flat = {g["name"]: g["lr"] for g in model.parameter_groups(1e-3, head_lr=1e-2)}
    assert flat["task_layers"] == pytest.approx(1e-3) and flat["heads"] == pytest.approx(1e-2)
    assert not any(re.match(r"encoder\.layer2", name) for name in groups)  # the frozen templates train nowhere


@pytest.mark.parametrize("how", ["constructor", "later"])
def test_packed_batches_through_task_layers_equal_the_padded_ones_however_padding_free_was_enabled(encoder3, how):
    """enable_padding_free() after the task layers existed left their copies on padded attention (each copy had its own
    config): packed sequences attended to each other, logits off by 2e-3, no error (a combinations audit)."""
    from mtcore.model.padding_free import pack_indices

    batch = random_batch("pair_classification")
    batch.pop("labels")
    padded = _model(encoder3, task_layers=1)
    packed = _model(encoder3, task_layers=1, padding_free=how == "constructor")
    if how == "later":
        packed.enable_padding_free()
    for copy_of_layer in packed.task_layers.copies["demo:a"]:
        assert copy_of_layer.attention.self.config._attn_implementation == packed.encoder.config._attn_implementation
    token_index, cu_seqlens = pack_indices(batch["attention_mask"])
    with torch.no_grad():
        want = padded("demo:a", **batch).logits
        got = packed("demo:a", **batch, token_index=token_index, cu_seqlens=cu_seqlens).logits
    assert torch.allclose(want, got, atol=1e-5), (want - got).abs().max()
