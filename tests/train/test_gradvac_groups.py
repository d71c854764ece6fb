"""``gradvac`` with ``loss.options.groups``: a run keeps one set of target cosines per encoder layer (or parameter),
saves them in its checkpoints and resumes bit-identically; Aligned-MTL's ``scale`` reaches the strategy from a config."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("groups", ["layers", "parameters"])
def test_a_run_keeps_targets_per_group_and_resumes_exactly(groups, tmp_path, make_config, helpers):
    from mtcore import Trainer
    from mtcore.train.state_files import load_state

    config = make_config(loss={"strategy": "gradvac", "options": {"groups": groups}}, checkpoint={"every": 2, "keep_last": 100},
                         schedule={"max_steps": 4, "warmup_steps": 1}, logging={"every": 1, "progress": "none", "plot": False})
    full = tmp_path / "full"
    Trainer(config, output_dir=full).train()
    steps = sorted(p.name for p in (full / "checkpoints").glob("step-*"))
    targets = load_state(full / "checkpoints" / steps[0] / "trainer")["strategy"]["targets"]
    layers = helpers.load_weights(full / "model")
    depth = len({k.split(".layer.")[1].split(".")[0] for k in layers if ".layer." in k})
    tasks = len(config["tasks"])
    assert targets.ndim == 3 and targets.shape[1:] == (tasks, tasks)
    trained = [k for k in layers if k.startswith("encoder/") and ":pooler." not in k]  # no head reads the pooler: frozen
    assert targets.shape[0] == (depth + 1 if groups == "layers" else len(trained))  # layers: the embeddings, each layer
    assert torch.count_nonzero(targets) > 0 and len({tuple(t.flatten().tolist()) for t in targets}) > 1
    resumed = tmp_path / "resumed"
    helpers.stopped_copy(full, resumed, steps[0], step=2)
    Trainer(config, output_dir=resumed, resume=True).train()
    a, b = helpers.load_weights(full / "model"), helpers.load_weights(resumed / "model")
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []


def test_grouped_gradvac_differs_from_the_whole_encoder_and_aligned_scale_is_read(tmp_path, make_config, helpers):
    from mtcore import Trainer

    def train(name: str, loss: dict) -> dict:
        config = make_config(loss=loss, checkpoint={"every": None, "at_end": False}, evaluation={"every": None, "at_end": False},
                             schedule={"max_steps": 3, "warmup_steps": 1})
        Trainer(config, output_dir=tmp_path / name).train()
        return helpers.load_weights(tmp_path / name / "model")

    whole, layers = train("whole", {"strategy": "gradvac"}), train("layers", {"strategy": "gradvac", "options": {"groups": "layers"}})
    assert any(not torch.equal(whole[k], layers[k]) for k in whole if k.startswith("encoder/"))
    low, rmse = train("min", {"strategy": "aligned_mtl"}), train("rmse", {"strategy": "aligned_mtl", "options": {"scale": "rmse"}})
    assert any(not torch.equal(low[k], rmse[k]) for k in low if k.startswith("encoder/"))
