"""LoRA adapters of its own for every task (``encoder.options.lora.per_task``): a task's forward pass runs its adapters
alone, only its loss trains them, the frozen encoder stays; the saved model keeps each task's adapters apart (loading,
evaluating and exporting a task give what the live model gives), and a later run starts the matching tasks from them."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("peft")

PER_TASK = {"r": 4, "alpha": 8, "per_task": True}
BATCH = {"input_ids": torch.tensor([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])}


@pytest.fixture(scope="module")
def trained(shared_make_config, tmp_path_factory):
    from mtcore import Trainer

    root = tmp_path_factory.mktemp("per-task-lora")
    config = shared_make_config(schedule={"max_steps": 12, "warmup_steps": 1}, optimizer={"lr": 5e-3}, checkpoint={"every": None})
    config["encoder"]["options"] = {"lora": PER_TASK}
    config["tasks"][0]["head_options"] = {"pooling": "pooler"}  # what a plain BertForSequenceClassification computes: exportable
    trainer = Trainer(config, output_dir=root / "run")
    trainer.train()
    return trainer, root / "run"


def _adapters(model, task_id):
    from mtcore.model.lora import adapter_state

    return adapter_state(model.encoder, task_id)


def test_each_task_trains_adapters_of_its_own_and_the_encoder_stays(trained):
    from transformers import AutoModel

    trainer, run = trained
    model = trainer.model
    tasks = list(model.heads)
    assert len(tasks) == 3 and model.lora["per_task"] is True
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert all(".lora_" in name or name.startswith("heads.") for name in trainable), trainable
    for task_id in tasks:
        state = _adapters(model, task_id)
        assert state and any(value.abs().sum() > 0 for key, value in state.items() if ".lora_B." in key), task_id  # B starts at 0
    first, second = (_adapters(model, t) for t in tasks[:2])
    assert any(not torch.equal(first[k], second[k]) for k in first)  # trained apart
    original = AutoModel.from_pretrained(run / "model" / "encoder").state_dict()  # saved as loaded: the frozen weights
    live = {k.replace(".base_layer.", "."): v for k, v in model.encoder.state_dict().items() if ".lora_" not in k}
    assert all(torch.equal(live[k].cpu(), original[k]) for k in original if k in live)


def test_a_tasks_forward_pass_runs_its_own_adapters_alone(trained):
    trainer, _ = trained
    model = trainer.model.eval()
    first, second = list(model.heads)[:2]
    with torch.no_grad():
        before = model(first, **BATCH).logits.clone()
        for key, parameter in model.encoder.named_parameters():  # another task's adapters changed: no effect on this one
            if f".{second}." in key:
                parameter.add_(1.0)
        after = model(first, **BATCH).logits
        for key, parameter in model.encoder.named_parameters():
            if f".{second}." in key:
                parameter.sub_(1.0)
    assert torch.equal(before, after)


def test_the_saved_model_keeps_each_tasks_adapters_and_predicts_and_exports_what_the_live_model_does(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from mtcore.errors import MtError
    from mtcore.export import export_encoder, export_task
    from mtcore.model import MultitaskModel

    trainer, run = trained
    manifest = json.loads((run / "model" / "mtcore.json").read_text(encoding="utf-8"))
    assert manifest["encoder"]["lora"] == {**PER_TASK, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query", "value"], "merged": False}
    assert all(info["lora_file"].startswith("lora/") for info in manifest["tasks"].values())
    loaded = MultitaskModel.from_pretrained(run / "model")
    live = trainer.model.eval()
    with torch.no_grad():
        for task_id in [t for t in live.heads if live.tasks[t]["kind"] != "multiple_choice"]:
            assert torch.allclose(live(task_id, **BATCH).logits.cpu(), loaded(task_id, **BATCH).logits, atol=1e-6), task_id
    task_id = next(t for t in live.heads if live.tasks[t]["kind"] == "text_classification")
    result = export_task(run / "model", task_id, tmp_path / "exported", tolerance=1e-4)  # checked against the model: within 1e-4
    plain = AutoModelForSequenceClassification.from_pretrained(result.path)
    assert not any(".lora_" in key or "base_layer" in key for key in plain.state_dict())
    other = next(t for t in live.heads if t != task_id)
    ours = plain.base_model.encoder.layer[0].attention.self.query.weight
    with pytest.raises(MtError, match="every task has LoRA adapters of its own"):
        export_encoder(run / "model", tmp_path / "encoder")
    from mtcore.model.lora import merged_state_dict

    theirs = merged_state_dict(loaded.encoder, other)["encoder.layer.0.attention.self.query.weight"]
    assert not torch.allclose(ours, theirs)  # the exported task's adapters, not another's


def test_a_later_run_starts_each_matching_task_from_its_saved_adapters(trained, shared_make_config, tmp_path):
    from mtcore import Trainer

    trainer, run = trained
    config = shared_make_config(schedule={"max_steps": 1, "warmup_steps": 0}, optimizer={"lr": 1e-12}, checkpoint={"every": None})
    config["encoder"] = {"path": str(run / "model"), "load_heads": True, "options": {"lora": PER_TASK}}
    again = Trainer(config, output_dir=tmp_path / "again")
    again.train()
    for task_id in trainer.model.heads:
        mine, theirs = _adapters(again.model, task_id), _adapters(trainer.model, task_id)
        assert all(torch.allclose(mine[k].cpu(), theirs[k].cpu(), atol=1e-6) for k in theirs), task_id

    shared = shared_make_config(schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
    shared["encoder"] = {"path": str(run / "model")}
    events = [json.loads(line) for line in (Trainer(shared, output_dir=tmp_path / "plain").train() and
                                              (tmp_path / "plain" / "metrics.jsonl").read_text(encoding="utf-8").splitlines())]
    assert any("leaves out" in note for e in events if e.get("event") == "start" for note in e.get("notes", [])), events[:2]

    other = shared_make_config(schedule={"max_steps": 1, "warmup_steps": 0}, checkpoint={"every": None})
    other["encoder"] = {"path": str(run / "model"), "options": {"lora": {**PER_TASK, "r": 2}}}  # new adapters of another rank
    Trainer(other, output_dir=tmp_path / "other").train()
    notes = [note for line in (tmp_path / "other" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
             for note in json.loads(line).get("notes", [])]
    assert any("other settings than this run's: every task's adapters start new" in note for note in notes), notes


def test_per_task_must_be_true_or_false():
    from mtcore.errors import ConfigError
    from mtcore.model.lora import lora_settings

    assert lora_settings({"per_task": True})["per_task"] is True and "per_task" not in lora_settings({})
    with pytest.raises(ConfigError, match=r"'encoder.options.lora.per_task': true \(adapters of its own for every task\) or false"):
        lora_settings({"per_task": "yes"})
    with pytest.raises(ConfigError, match=r"did you mean 'per_task'"):
        lora_settings({"per_head": True})


def test_loading_per_task_adapters_without_peft_says_what_to_install(trained, monkeypatch):
    import importlib.util

    from mtcore.errors import ModelFileError
    from mtcore.model import MultitaskModel

    _, run = trained
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else find_spec(name, *a))
    with pytest.raises(ModelFileError, match=r"its tasks have LoRA adapters of their own \(lora/\), which need the peft package: "
                                             r"pip install \"mtcore\[lora\]\""):
        MultitaskModel.from_pretrained(run / "model")


def test_per_task_adapters_train_with_gradient_checkpointing_under_every_task_strategies_as_without(shared_make_config, tmp_path,
                                                                                                  helpers):
    """Each task's backward pass follows its forward pass, so the recomputed forward runs that task's adapters: 'sum' with
    gradient checkpointing trains as without (it was refused); the strategies that keep every task's graph until the end
    are refused with per-task adapters whatever the checkpointing."""
    from mtcore import Trainer
    from mtcore.errors import ConfigError
    from mtcore.train.config import TrainConfig
    from mtcore.train.validate import plan_run

    def losses(checkpointing: bool) -> list[float]:
        config = shared_make_config(loss={"strategy": "sum"}, schedule={"max_steps": 4, "warmup_steps": 0}, checkpoint={"every": None},
                                    logging={"every": 1, "progress": "none", "plot": False},
                                    tasks=[{**t, "head_options": {"dropout": 0.0}} for t in shared_make_config()["tasks"]])
        config["encoder"].update(gradient_checkpointing=checkpointing, options={"lora": PER_TASK, "encoder_kwargs": {
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}})
        run = tmp_path / f"run-{checkpointing}"
        Trainer(config, output_dir=run).train()
        return [e["loss"] for e in helpers.read_events(run) if e["event"] == "train"]  # each task at each step

    plain, recomputed = losses(False), losses(True)
    assert len(plain) == 12 and plain == pytest.approx(recomputed, rel=1e-5, abs=1e-6), (plain, recomputed)
    config = shared_make_config(loss={"strategy": "pcgrad"})
    config["encoder"].update(gradient_checkpointing=True, options={"lora": PER_TASK})
    with pytest.raises(ConfigError, match=r"^config key 'loss.strategy': 'pcgrad' combines the tasks' gradients on the shared encoder, "
                                          r"and per-task LoRA adapters"):
        plan_run(TrainConfig.model_validate(config))
