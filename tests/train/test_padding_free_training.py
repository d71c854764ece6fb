"""Training with ``batching.padding_free: true`` gives the padded run's weights (learning: test_learnability.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from mtcore import Trainer

NO_DROPOUT = {"encoder_kwargs": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}


def test_padding_free_training_gives_the_padded_runs_weights(tmp_path: Path, make_config, helpers):
    weights = {}
    for padding_free in (False, True):
        config = make_config(batching={"batch_size": 8, "padding_free": padding_free, "group_by_length": False})
        config["encoder"]["options"] = NO_DROPOUT
        for task in config["tasks"]:
            task["head_options"] = {"dropout": 0.0}
        run = tmp_path / f"run-{padding_free}"
        Trainer(config, output_dir=run).train()
        weights[padding_free] = helpers.load_weights(run / "model")
        _evaluate_equals_the_record(run)  # `mt evaluate RUN` (padded batches) scores what the run recorded
    assert weights[False].keys() == weights[True].keys()
    moved = 0
    for name, tensor in weights[False].items():
        if name.endswith("mc.safetensors:scorer.bias"):
            # a bias shared by every choice cannot change a softmax over choices: its gradient is
            # float noise (~1e-9) in both runs, which Adam scales up to steps of size lr
            continue
        assert torch.allclose(tensor, weights[True][name], atol=1e-6), name
    # and training did change the encoder (the comparison is not between two untouched models)
    from safetensors.torch import load_file

    start = load_file(str(next((Path(config["encoder"]["path"])).glob("*.safetensors"))))
    for name, tensor in start.items():
        key = f"encoder/model.safetensors:{name}"
        if key in weights[True] and not torch.equal(tensor, weights[True][key]):
            moved += 1
    assert moved > 0


def _evaluate_equals_the_record(run: Path) -> None:
    import json
    import math

    from mtcore.predict.evaluate import evaluate_path

    recorded = json.loads((run / "summary.json").read_text(encoding="utf-8"))["final"]
    report = evaluate_path(run)
    assert set(report.metrics) == set(recorded["metrics"]) and len(report.tasks) == 3
    for key, value in recorded["metrics"].items():
        assert math.isclose(report.metrics[key], value, rel_tol=1e-6, abs_tol=1e-7), key
    assert math.isclose(report.aggregate, recorded["aggregate"], rel_tol=1e-9)


def test_padding_free_token_budget_counts_real_tokens_in_the_engine(tmp_path: Path, make_config):
    budget = 96
    config = make_config(batching={"batch_size": 8, "padding_free": True, "max_tokens": budget, "group_by_length": False})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    summary = trainer.train()
    assert 0 < summary["tokens_seen"] <= 6 * budget
    batches = [b for _, b in zip(range(40), trainer.engine.sampler)]
    assert batches and max(b.size for b in batches) > 1
    for batch in batches:
        assert batch.num_tokens == batch.data["token_index"].numel()
        assert batch.num_tokens <= budget or batch.size == 1
    # padded slots would have broken the budget: the batches hold real tokens up to it, not rows x longest
    assert any(batch.data["input_ids"].numel() > budget for batch in batches)


def test_max_rows_caps_the_rows_of_token_budget_batches_in_the_engine(tmp_path: Path, make_config):
    config = make_config(batching={"padding_free": True, "max_tokens": 4096, "max_rows": 3}, schedule={"max_steps": 2})
    trainer = Trainer(config, output_dir=tmp_path / "run")
    trainer.train()
    sizes = [b.size for _, b in zip(range(40), trainer.engine.sampler)]
    assert max(sizes) == 3  # a 4096-token budget would otherwise take a whole small task in one batch
