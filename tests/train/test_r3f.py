"""``loss.r3f``: noise on the input embeddings and a symmetric divergence of the two outputs added to each task's loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtcore import Trainer
from mtcore.model import MultitaskModel
from mtcore.task import Task
from mtcore.train.regularization import R3F, R3FConfig, noisy_embeddings


def test_the_term_is_the_symmetric_divergence_under_noise(small_encoder: Path):
    task = Task(name="t", kind="text_classification", labels=("a", "b", "c"), plugin="demo")
    model = MultitaskModel(str(small_encoder), [task]).eval()
    torch.manual_seed(0)
    inputs = {"input_ids": torch.randint(5, 30, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long),
              "labels": torch.tensor([0, 1, -100, 2])}
    clean = model(task.id, **inputs)
    embeddings = model.encoder.get_input_embeddings()
    with noisy_embeddings(model.encoder, 0.5, "uniform"):
        noisy = embeddings(inputs["input_ids"])
    plain = embeddings(inputs["input_ids"])
    assert 0 < (noisy - plain).abs().max() <= 0.5 and not embeddings._forward_hooks  # the hook is gone after the block
    tiny = R3F(R3FConfig(noise=1e-6), {task.id: "text_classification"}, model).term(task.id, inputs, clean)
    large = R3F(R3FConfig(noise=0.5, weight=2.0), {task.id: "text_classification"}, model)
    torch.manual_seed(1)
    term = large.term(task.id, inputs, clean)
    torch.manual_seed(1)
    with noisy_embeddings(model.encoder, 0.5, "normal"):
        other = model(task.id, **{k: v for k, v in inputs.items() if k != "labels"}).logits
    p, q = torch.softmax(clean.logits, -1), torch.softmax(other, -1)
    both = ((p * (p.log() - q.log())).sum(-1) + (q * (q.log() - p.log())).sum(-1))[[0, 1, 3]].mean()
    tiny, term, both = (float(value.detach()) for value in (tiny, term, both))
    assert tiny < 1e-6 and term == pytest.approx(2.0 * both, rel=1e-4) and term > 1e-4


def test_training_with_r3f_differs_and_resumes_bit_identically(tmp_path: Path, make_config, helpers):
    plain = make_config(schedule={"max_steps": 6, "warmup_steps": 1})
    smooth = make_config(schedule={"max_steps": 6, "warmup_steps": 1}, loss={"strategy": "single", "r3f": {"weight": 1.0, "noise": 0.1}})
    full, _ = helpers.resume_matches(smooth, tmp_path, "step-000003", step=3)
    a = helpers.load_weights(full / "model")
    Trainer(plain, output_dir=tmp_path / "plain").train()
    c = helpers.load_weights(tmp_path / "plain" / "model")
    assert any(not torch.equal(a[k], c[k]) for k in a)
    losses = {e["task"]: e["loss"] for e in helpers.read_events(full) if e["event"] == "train"}
    assert all(v > 0 for v in losses.values())


@pytest.mark.parametrize("strategy", ["sum", "pcgrad", "famo"])
def test_every_loss_strategy_trains_with_r3f(tmp_path: Path, make_config, strategy):
    config = make_config(loss={"strategy": strategy, "r3f": {"noise": 0.01}}, batching={"batch_size": 8, "padding_free": True})
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 6 and summary["final"]["aggregate"] is not None


def test_the_term_of_a_masked_lm_task_compares_its_masked_tokens(small_encoder: Path):
    """A masked_lm head scores only the masked tokens: both passes give those, one row each."""
    task = Task(name="lm", kind="masked_lm", plugin="demo")
    model = MultitaskModel(str(small_encoder), [task]).eval()
    torch.manual_seed(0)
    labels = torch.full((3, 6), -100)
    labels[0, 1], labels[1, 2], labels[2, 4] = 7, 8, 9
    inputs = {"input_ids": torch.randint(5, 30, (3, 6)), "attention_mask": torch.ones(3, 6, dtype=torch.long), "labels": labels}
    clean = model(task.id, **inputs)
    torch.manual_seed(1)
    term = R3F(R3FConfig(noise=0.5), {task.id: "masked_lm"}, model).term(task.id, inputs, clean)
    torch.manual_seed(1)
    with noisy_embeddings(model.encoder, 0.5, "normal"):
        other = model(task.id, **inputs).logits
    p, q = torch.softmax(clean.logits.float(), -1), torch.softmax(other.float(), -1)
    both = ((p * (p.log() - q.log())).sum(-1) + (q * (q.log() - p.log())).sum(-1)).mean()
    assert clean.logits.shape[0] == 3 and float(term.detach()) == pytest.approx(float(both), rel=1e-4) and float(term.detach()) > 0
