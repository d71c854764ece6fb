"""``optimizer.layer_decay``: layer-wise learning-rate decay (LLRD) over any ``AutoModel`` encoder.

Layer ``k`` (0-based) of ``L`` trains at ``lr * decay ** (L - 1 - k)``, the embeddings at
``lr * decay ** L``, what follows the layer stack at ``lr``; heads keep ``head_lr``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from mtcore.errors import ConfigError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec
from mtcore.train.config import OptimizerConfig, ScheduleConfig
from mtcore.train.optim import build_optimizer, build_scheduler

HEADS = {"demo:pair": HeadSpec("classification", 3, kind="pair_classification", options={"pooling": "mean", "dropout": 0.0})}
LAYERS = 3
#: Where each architecture keeps its layers: the tests' own oracle (mtcore finds them by size).
STACK = {"bert": "encoder.layer.", "distilbert": "transformer.layer.", "modernbert": "layers."}
CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def deep_encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny 3-layer encoders (hidden 32) of three architectures."""
    from mtcore.testing import build_tiny_encoder

    root = tmp_path_factory.mktemp("deep-encoders")
    return {arch: build_tiny_encoder(root / arch, arch, hidden_size=32, num_layers=LAYERS, num_heads=2) for arch in STACK}


@pytest.fixture(scope="session")
def word_encoder3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 3-layer BERT whose vocabulary holds the synthetic tasks' words."""
    from mtcore.testing import build_tiny_encoder

    words = ("the a one some this that my your his her it is was has on in at good great nice bad awful poor "
             "red blue green apple pear plum peach stone chair brick sock").split()
    return build_tiny_encoder(tmp_path_factory.mktemp("word-encoder3"), "bert", words=words, hidden_size=32,
                              num_layers=LAYERS, num_heads=2)


def _expected_power(arch: str, names: list[str]) -> dict[str, int]:
    """Each encoder parameter's power of the decay, from its name: the independent oracle."""
    powers, seen_stack = {}, False
    for name in names:
        match = re.match(re.escape(STACK[arch]) + r"(\d+)\.", name)
        if match:
            seen_stack = True
            powers[name] = LAYERS - 1 - int(match.group(1))
        else:
            powers[name] = 0 if seen_stack else LAYERS
    return powers


def _group_of(groups: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    owner: dict[int, dict[str, Any]] = {}
    for group in groups:
        for param in group["params"]:
            assert id(param) not in owner, "a parameter in two groups"
            owner[id(param)] = group
    return owner


def _power_of_name(group_name: str) -> int:
    """The decay power a group's name stands for (encoder.top / layer{k} / embeddings)."""
    base = group_name.removesuffix("_no_decay")
    if base == "encoder.top":
        return 0
    if base == "encoder.embeddings":
        return LAYERS
    return LAYERS - 1 - int(base.removeprefix("encoder.layer"))


@pytest.mark.parametrize("arch", list(STACK))
def test_each_depth_gets_its_decayed_rate_and_heads_keep_head_lr(arch, deep_encoders):
    model = MultitaskModel(deep_encoders[arch], HEADS)
    config = OptimizerConfig(lr=1e-3, head_lr=1e-2, weight_decay=0.1, layer_decay=0.5)
    groups = build_optimizer(model, config, CPU).param_groups
    owner = _group_of(groups)
    named = list(model.encoder.named_parameters())
    powers = _expected_power(arch, [n for n, _ in named])
    assert set(powers.values()) == set(range(LAYERS + 1))  # every depth is there, embeddings included
    for name, param in named:
        if not param.requires_grad:
            assert id(param) not in owner, name
            continue
        group = owner[id(param)]
        assert group["lr"] == pytest.approx(1e-3 * 0.5 ** powers[name]), name
        assert _power_of_name(group["name"]) == powers[name], (name, group["name"])
        no_decay = name.endswith("bias") or "norm" in name.lower()
        assert group["weight_decay"] == (0.0 if no_decay else 0.1), name
        assert group["name"].endswith("_no_decay") == no_decay, name
    for param in model.heads.parameters():
        assert owner[id(param)]["lr"] == 1e-2 and owner[id(param)]["name"].startswith("heads")
    assert len(owner) == sum(p.requires_grad for p in model.parameters())
    # the top comes first: the run logs param_groups[0]'s rate as its lr
    assert groups[0]["lr"] == 1e-3 and groups[0]["name"].startswith(("encoder.top", f"encoder.layer{LAYERS - 1}"))


def test_decay_one_or_null_is_the_plain_grouping(deep_encoders):
    model = MultitaskModel(deep_encoders["bert"], HEADS)
    for decay in (None, 1.0):
        groups = build_optimizer(model, OptimizerConfig(lr=1e-3, layer_decay=decay), CPU).param_groups
        assert [g["name"] for g in groups] == ["encoder", "encoder_no_decay", "heads", "heads_no_decay"]
        assert {g["lr"] for g in groups} == {1e-3}


def test_the_model_method_takes_layer_decay_too(deep_encoders):
    model = MultitaskModel(deep_encoders["bert"], HEADS)
    groups = {g["name"]: g["lr"] for g in model.parameter_groups(1e-3, head_lr=1e-2, layer_decay=0.5)}
    assert groups["encoder.top"] == 1e-3 and groups["heads"] == 1e-2
    assert groups["encoder.embeddings"] == pytest.approx(1e-3 * 0.5 ** LAYERS)


def test_frozen_layers_keep_their_depth_and_checkpointing_trains(deep_encoders):
    torch.manual_seed(0)
    model = MultitaskModel(deep_encoders["bert"], HEADS, freeze_layers=1, gradient_checkpointing=True,
                           encoder_kwargs={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    optimizer = build_optimizer(model, OptimizerConfig(lr=1e-2, layer_decay=0.5, weight_decay=0.0), CPU)
    names = {g["name"].removesuffix("_no_decay"): g["lr"] for g in optimizer.param_groups}
    assert "encoder.embeddings" not in names and "encoder.layer0" not in names  # frozen: no group
    assert names["encoder.layer1"] == pytest.approx(5e-3) and names["encoder.layer2"] == pytest.approx(1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.tensor([[2, 11, 12, 13, 3, 21, 22, 3], [2, 14, 3, 0, 0, 0, 0, 0]])
    model.train()
    loss = model("demo:pair", input_ids=ids, attention_mask=(ids != 0).long(), labels=torch.tensor([1, 2])).loss
    loss.backward()
    optimizer.step()
    for name, param in model.named_parameters():
        moved = not torch.equal(before[name], param.detach())
        if not param.requires_grad:
            assert not moved, name
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if ".layer.1." in n)
    # the whole encoder frozen: nothing to decay, and no refusal
    frozen = MultitaskModel(deep_encoders["bert"], HEADS, freeze_encoder=True)
    groups = build_optimizer(frozen, OptimizerConfig(layer_decay=0.5), CPU).param_groups
    assert [g["name"] for g in groups] == ["heads", "heads_no_decay"]


def test_an_encoder_without_a_layer_list_is_refused_in_one_line():
    model = torch.nn.Module()
    model.encoder = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4))
    model.heads = torch.nn.ModuleDict({"t": torch.nn.Linear(4, 2)})
    with pytest.raises(ConfigError) as caught:
        build_optimizer(model, OptimizerConfig(layer_decay=0.8), CPU)
    message = str(caught.value)
    assert "\n" not in message and "optimizer.layer_decay" in message and "Sequential" in message
    assert len(build_optimizer(model, OptimizerConfig(layer_decay=1.0), CPU).param_groups) == 4  # 1 is off


@pytest.mark.parametrize("value", ["0", "1.5", "-0.5"])
def test_mt_check_refuses_a_decay_outside_0_1_in_one_line(value, tmp_path):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra"], "schedule": {"max_steps": 2}}))
    result = CliRunner().invoke(app, ["check", str(path), f"optimizer.layer_decay={value}", "--no-data"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "optimizer.layer_decay" in lines[0] and "(0, 1]" in lines[0], lines
    ok = CliRunner().invoke(app, ["check", str(path), "optimizer.layer_decay=0.8", "--no-data"])
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize("schedule", ["linear", "cosine", "polynomial"])
def test_every_schedule_keeps_the_ratios_between_depths(schedule, deep_encoders):
    model = MultitaskModel(deep_encoders["distilbert"], HEADS)
    optimizer = build_optimizer(model, OptimizerConfig(lr=2e-3, head_lr=1e-2, layer_decay=0.7), CPU)
    scheduler = build_scheduler(optimizer, ScheduleConfig(name=schedule, max_steps=20, warmup_steps=4), 20)
    encoder_groups = [g for g in optimizer.param_groups if g["name"].startswith("encoder.")]
    assert len({g["initial_lr"] for g in encoder_groups}) == LAYERS + 1
    checked = 0
    for step in range(1, 20):
        optimizer.step()
        scheduler.step()
        lrs = scheduler.get_last_lr()
        top = lrs[0]
        if step in (2, 5, 9, 14, 18):
            assert top > 0
            for group, lr in zip(optimizer.param_groups, lrs):
                if group["name"].startswith("encoder."):
                    assert lr / top == pytest.approx(0.7 ** _power_of_name(group["name"]), rel=1e-9), (step, group["name"])
                else:
                    assert lr / top == pytest.approx(5.0, rel=1e-9)  # heads: head_lr / lr, undecayed
            checked += 1
    assert checked == 5


# ---- the real command line --------------------------------------------------------------------
def _mt(*args: str) -> Any:
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    return CliRunner().invoke(app, list(args))


def _train(tmp_path: Path, name: str, config: dict[str, Any], *extra: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / name
    result = _mt("train", str(path), "--output-dir", str(run), *extra)
    assert result.exit_code == 0, result.stderr
    return run


def _encoder_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(path)))
    return tensors


def _movement(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor]) -> dict[int, float]:
    """How far the weights of each depth moved: Euclidean norm of the change, per decay power."""
    squares: dict[int, float] = {}
    for name, before in start.items():
        match = re.match(r"encoder\.layer\.(\d+)\.", name)
        power = LAYERS - 1 - int(match.group(1)) if match else LAYERS if name.startswith("embeddings.") else None
        if power is not None:  # the pooler is frozen (no head reads it)
            squares[power] = squares.get(power, 0.0) + float((end[name] - before).pow(2).sum())
    return {power: value ** 0.5 for power, value in squares.items()}


def test_mt_train_with_layer_decay_moves_lower_layers_less(tmp_path, make_config, word_encoder3, helpers):
    from mtcore.train.state_files import load_state

    common = dict(encoder={"path": str(word_encoder3)}, optimizer={"lr": 3e-3, "weight_decay": 0.0},
                  schedule={"max_steps": 8, "warmup_steps": 1}, checkpoint={"every": 8, "keep_last": 1},
                  evaluation={"every": None, "at_end": False})
    plain = _train(tmp_path, "plain", make_config(**{**common, "optimizer": {**common["optimizer"], "layer_decay": 1.0}}))
    decayed = _train(tmp_path, "decayed", make_config(**{**common, "optimizer": {**common["optimizer"], "layer_decay": 0.5}}))
    start = _encoder_weights(word_encoder3)
    moved = {run.name: _movement(start, _encoder_weights(run / "model" / "encoder")) for run in (plain, decayed)}
    assert set(moved["plain"]) == set(range(LAYERS + 1)) and all(v > 0 for v in moved["decayed"].values())
    ratio = {power: moved["decayed"][power] / moved["plain"][power] for power in moved["plain"]}
    # Adam steps scale with the learning rate: 1/8 of it for the embeddings, 1/4 for layer 0, the whole for the top
    assert ratio[LAYERS] < 0.25 and ratio[LAYERS - 1] < 0.4, ratio
    assert ratio[0] > 0.7, ratio
    assert ratio[LAYERS] < ratio[LAYERS - 1] < ratio[1] < ratio[0], ratio
    # the logged lr is optimizer.lr's schedule in both runs (the top group's, not the embeddings')
    def lrs(run: Path) -> list[tuple[int, float]]:
        return [(e["step"], e["lr"]) for e in helpers.read_events(run) if e["event"] == "train"]

    assert lrs(decayed) == lrs(plain) and len(lrs(plain)) >= 3
    # the checkpoint keeps one optimizer group per depth, with its own initial rate
    state = load_state(decayed / "checkpoints" / "step-000008" / "optimizer")
    initial = {g["name"]: g["initial_lr"] for g in state["param_groups"]}
    for name, lr in initial.items():
        expected = 3e-3 * 0.5 ** _power_of_name(name) if name.startswith("encoder.") else 3e-3
        assert lr == pytest.approx(expected), name
    assert {f"encoder.layer{k}" for k in range(LAYERS)} | {"encoder.embeddings"} <= set(initial)


def test_resume_with_layer_decay_is_exact(tmp_path, make_config, word_encoder3, helpers):
    from mtcore.train.state_files import load_state

    config = make_config(encoder={"path": str(word_encoder3),
                                  "options": {"encoder_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}},
                         optimizer={"lr": 2e-3, "layer_decay": 0.6},
                         schedule={"max_steps": 6, "warmup_steps": 2}, checkpoint={"every": 3, "keep_last": 2},
                         evaluation={"every": None, "at_end": False})
    full = _train(tmp_path, "full", config)
    # a second run, then made to look like one that stopped after its step-3 checkpoint
    cut = _train(tmp_path, "cut", config)
    shutil.rmtree(cut / "checkpoints" / "step-000006")
    shutil.rmtree(cut / "model")
    (cut / "summary.json").unlink()
    _train(tmp_path, "cut", config, "--resume")
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["resumed_from"].endswith("step-000003") and summary["steps"] == 6
    state = load_state(cut / "checkpoints" / "step-000006" / "optimizer")
    assert len(state["param_groups"]) > 4 and state["param_groups"][0]["name"].startswith("encoder.layer")
    a, b = helpers.load_weights(full / "model"), helpers.load_weights(cut / "model")
    assert a.keys() == b.keys() and len(a) > 10
    assert [name for name in a if not torch.equal(a[name], b[name])] == []


def test_mt_train_refuses_an_encoder_without_a_layer_list_and_leaves_nothing(tmp_path, make_config, monkeypatch):
    """An encoder with no ``nn.ModuleList`` (as if: every AutoModel here has one) stops the start, exit 2."""
    import mtcore.model.param_groups as param_groups

    monkeypatch.setattr(param_groups, "find_layer_stack", lambda encoder: None)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(optimizer={"layer_decay": 0.8})))
    for command in (["train", str(path), "--output-dir", str(tmp_path / "run")], ["check", str(path)]):  # mt check finds it too
        result = _mt(*command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "optimizer.layer_decay" in lines[0] and "nn.ModuleList" in lines[0], lines
        assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    assert _mt("check", str(path)).exit_code == 0
    assert _mt("train", str(path), "--output-dir", str(tmp_path / "run")).exit_code == 0


def test_a_table_every_layer_reads_decays_with_the_embeddings():
    """DeBERTa's relative-position table (and its norm) sits after the layer list, yet every layer reads it: it was
    filed after the stack, at the full learning rate."""
    from transformers import AutoConfig, AutoModel

    from mtcore.model.param_groups import encoder_depth_groups

    encoder = AutoModel.from_config(AutoConfig.for_model("deberta-v2", vocab_size=100, hidden_size=32, num_hidden_layers=3,
                                                         num_attention_heads=2, intermediate_size=64, relative_attention=True,
                                                         pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm"))
    names = {id(p): n for n, p in encoder.named_parameters()}
    lrs = {names[id(p)]: g["lr"] for g in encoder_depth_groups(encoder, 1e-3, 0.0, 0.5) for p in g["params"]}
    assert lrs["encoder.rel_embeddings.weight"] == lrs["encoder.LayerNorm.weight"] == lrs["embeddings.word_embeddings.weight"] == 1e-3 * 0.5 ** 3
    assert lrs["encoder.layer.2.output.dense.weight"] == 1e-3
