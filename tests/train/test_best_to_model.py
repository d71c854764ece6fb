"""``checkpoint.best_to_model``: ``model/`` written from the best checkpoint's weights, and refused where it cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from clitools import run_mt

from mtcore import Trainer


def _model_state(model_dir: Path) -> dict[str, torch.Tensor]:
    from mtcore.model import MultitaskModel

    return MultitaskModel.from_pretrained(model_dir).state_dict()


def test_the_best_checkpoint_becomes_the_model_and_the_summary_says_which_step(tmp_path: Path, make_config, capsys):
    from safetensors.torch import load_file

    # early stopping with patience 1 ends right after the first evaluation that is no better: the best step is not the last
    config = make_config(schedule={"max_steps": 40, "warmup_steps": 0}, optimizer={"lr": 3e-3},
                         evaluation={"every": 2, "at_end": True, "early_stopping_patience": 1},
                         checkpoint={"every": None, "keep_last": 1, "best_to_model": True}, logging={"every": 2, "progress": "plain", "plot": False})
    run = tmp_path / "run"
    summary = Trainer(config, output_dir=run).train()
    assert summary["status"] == "early_stopped"
    best, final = summary["best"]["step"], summary["steps"]
    assert best is not None and best < final
    assert summary["model"] == {"step": best, "weights": "best"}
    assert json.loads((run / "summary.json").read_text())["model"] == {"step": best, "weights": "best"}
    assert summary["final"]["step"] == final  # the final metrics are still those of the final weights
    out = capsys.readouterr().out
    assert f"checkpoint.best_to_model: model/ holds the weights of the best checkpoint, step {best}" in out

    saved = _model_state(run / "model")
    best_weights = load_file(str(run / "checkpoints" / f"step-{best:06d}" / "model.safetensors"))
    final_weights = load_file(str(run / "checkpoints" / f"step-{final:06d}" / "model.safetensors"))  # still kept (keep_last 1)
    assert len(best_weights) > 10 and all(torch.equal(saved[name], best_weights[name]) for name in best_weights)
    assert any(not torch.equal(saved[name], final_weights[name]) for name in final_weights)


def test_without_it_the_model_is_the_final_weights(tmp_path: Path, make_config):
    summary = Trainer(make_config(evaluation={"every": 2, "at_end": True}), output_dir=tmp_path / "run").train()
    assert summary["model"] == {"step": 6, "weights": "final"}


@pytest.mark.parametrize(("sections", "message"), [
    ({"evaluation": {"every": None, "at_end": True}},
     "error: config key 'checkpoint.best_to_model' needs 'evaluation.every' (evaluate every N steps)"),
    ({"evaluation": {"every": 2}, "checkpoint": {"keep_best": False}},
     "error: config key 'checkpoint.best_to_model' needs 'checkpoint.keep_best: true'"),
], ids=["no-evaluation", "best-not-kept"])
def test_it_is_refused_in_one_line_where_it_cannot_work(tmp_path: Path, make_config, sections, message):
    config = make_config(**sections)
    config["checkpoint"] = {**config.get("checkpoint", {}), "best_to_model": True}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_mt("train", str(path), "--output-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / "run").exists()


def test_without_a_display_the_line_about_models_weights_goes_to_stderr(capsys):
    """With logging.progress: none, nothing said that model/ holds the best step's weights, not the final ones."""
    from types import SimpleNamespace

    from mtcore.train.events import say
    from mtcore.train.progress import Progress

    say(SimpleNamespace(is_main=True), Progress("none", 4), "checkpoint.best_to_model: model/ holds the weights of step 2")
    say(SimpleNamespace(is_main=False), Progress("none", 4), "said once, by the main process")
    captured = capsys.readouterr()
    assert captured.err == "checkpoint.best_to_model: model/ holds the weights of step 2\n" and captured.out == ""
