"""``mt average``: one model whose weights are the mean of several of one shape (a soup of seeds or checkpoints)."""

from __future__ import annotations

import torch
from inference.support import NLI, SENTIMENT, make_model

from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict


def _saved(tiny_encoders, tmp_path, name, *tasks, seed, noise=0.0):
    model = make_model(tiny_encoders["bert"], *tasks, seed=seed)
    with torch.no_grad():  # an encoder fine-tuned otherwise
        for parameter in model.encoder.parameters():
            parameter.add_(noise * torch.randn_like(parameter))
    return model, model.save_pretrained(tmp_path / name)


def test_the_average_is_the_mean_of_every_weight_and_predicts(cli, tiny_encoders, tmp_path):
    models, dirs = zip(*(_saved(tiny_encoders, tmp_path, f"m{i}", SENTIMENT, NLI, seed=i, noise=0.01 * i) for i in range(3)))
    result = cli("average", *dirs, "--output", tmp_path / "soup")
    assert result.exit_code == 0, result.output
    assert f"averaged 3 models into {tmp_path / 'soup'}" in result.stderr
    soup = MultitaskModel.from_pretrained(tmp_path / "soup")
    states = [m.state_dict() for m in models]
    for key, value in soup.state_dict().items():
        expected = sum(s[key].float() for s in states) / 3 if value.is_floating_point() else states[0][key]
        torch.testing.assert_close(value, expected.to(value.dtype), rtol=0, atol=1e-6)
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0] if k.startswith("encoder."))
    assert predict(soup, "demo:sentiment", [{"review": "good movie"}]).labels[0] in SENTIMENT.label_values


def test_models_that_have_no_average_are_refused_in_one_line(cli, tiny_encoders, tmp_path):
    _, a = _saved(tiny_encoders, tmp_path, "a", SENTIMENT, NLI, seed=1)
    _, b = _saved(tiny_encoders, tmp_path, "b", SENTIMENT, seed=2)
    _, c = _saved(tiny_encoders, tmp_path, "c", SENTIMENT, NLI.replace(head_options={"pooling": "cls"}), seed=3)
    cases = [
        ((a,), "averaging needs two models or more, got 1"),
        ((a, b), f"{b}: has the tasks demo:sentiment, and {a} demo:sentiment, demo:nli; average models of the same tasks"),
        ((a, c), f"{c}: task 'demo:nli' has head option pooling 'cls', and {a} 'pooler'"),
        ((a, tmp_path / "nowhere"), f"{tmp_path / 'nowhere'}"),
    ]
    for paths, message in cases:
        result = cli("average", *paths, "-o", tmp_path / "out")
        assert result.exit_code == 2, (paths, result.output)
        assert result.stderr.startswith(f"error: {message}"), result.stderr
        assert not (tmp_path / "out").exists()
    _, d = _saved(tiny_encoders, tmp_path, "d", NLI, SENTIMENT, seed=4)  # the same tasks in another order average
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    full = cli("average", a, d, "-o", tmp_path / "full")
    assert full.exit_code == 2 and (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert "holds no saved model to replace" in full.stderr and "--overwrite" not in full.stderr
    for out in (a, a / "soup", tmp_path):  # the model itself, a folder inside it, a folder holding it
        into_input = cli("average", a, d, "-o", out, "--overwrite")
        assert into_input.exit_code == 2 and "is, holds or is inside one of the models being averaged" in into_input.stderr
    assert not (a / "soup").exists()
    for twice in ((a, d, a), (a, tmp_path / "a" / ".." / "a")):
        result = cli("average", *twice, "-o", tmp_path / "out")
        assert result.exit_code == 2 and "again (the same model would count twice); give each model once" in result.stderr


def test_the_same_tasks_in_another_order_average_and_a_missing_tensor_is_named_on_its_side(cli, tiny_encoders, tmp_path):
    ab, a = _saved(tiny_encoders, tmp_path, "a", SENTIMENT, NLI, seed=1)
    ba, b = _saved(tiny_encoders, tmp_path, "b", NLI, SENTIMENT, seed=2)
    result = cli("average", a, b, "-o", tmp_path / "soup")
    assert result.exit_code == 0, result.output
    soup = MultitaskModel.from_pretrained(tmp_path / "soup").state_dict()
    key = next(k for k in soup if k.startswith("heads.demo:nli"))
    torch.testing.assert_close(soup[key], (ab.state_dict()[key] + ba.state_dict()[key]) / 2, rtol=0, atol=1e-6)
    assert "score it with: mt evaluate" in result.stderr and "--input FILE" in result.stderr  # demo: tasks: no plugin has their data
    wider = MultitaskModel(tiny_encoders["bert"], [SENTIMENT, NLI], task_layers=1)
    c = wider.save_pretrained(tmp_path / "c")
    missing = cli("average", a, c, "-o", tmp_path / "soup2")
    assert missing.exit_code == 2 and missing.stderr.startswith(f"error: {a}: has no tensor task_layers."), missing.stderr
    assert f", which {c} has" in missing.stderr


def test_a_seeds_folder_averages_its_seed_runs(cli, tiny_encoders, tmp_path):
    folder = tmp_path / "five"
    models = [_saved(tiny_encoders, folder / f"seed-{seed}", "model", SENTIMENT, seed=seed)[0] for seed in (1, 2)]
    (folder / "seeds.json").write_text("{}")
    result = cli("average", folder, "-o", tmp_path / "soup")
    assert result.exit_code == 0, result.output
    assert f"averaged 2 models into {tmp_path / 'soup'}" in result.stderr
    soup = MultitaskModel.from_pretrained(tmp_path / "soup").state_dict()
    key = next(k for k in soup if k.startswith("heads."))
    torch.testing.assert_close(soup[key], (models[0].state_dict()[key] + models[1].state_dict()[key]) / 2, rtol=0, atol=1e-6)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "seeds.json").write_text("{}")
    empty = cli("average", tmp_path / "empty", folder, "-o", tmp_path / "soup2")
    assert empty.exit_code == 2 and "a --seeds folder without a finished run" in empty.stderr


def test_a_greedy_soup_keeps_a_model_only_when_the_soup_scores_no_worse_with_it(tiny_encoders, tmp_path):
    """Scored by closeness of one head weight to a target: the best model alone first, then each one that helps."""
    from mtcore.model.averaging import greedy_soup

    target = torch.zeros(2, 32)
    weights = {"best": 0.1, "helps": -0.12, "hurts": 5.0, "ties": 0.1}  # a head's weight filled with each value
    models = {}
    for i, (name, value) in enumerate(weights.items()):
        model = make_model(tiny_encoders["bert"], SENTIMENT, seed=i)
        with torch.no_grad():
            model.heads["demo:sentiment"].classifier.weight.fill_(value)
        models[name] = model

    def weight(model):
        return model.heads["demo:sentiment"].classifier.weight.detach()

    def score(path, model):
        return -float((weight(model if model is not None else models[path]) - target).abs().mean())

    loads = []
    soup = greedy_soup(["hurts", "ties", "helps", "best"], lambda path: loads.append(path) or models[path], score)
    # 'ties' and 'best' score alike (ties keep the order given), a soup as good is kept, 'helps' brings it closer
    assert soup.kept == ["ties", "best", "helps"]
    assert [(path, kept) for path, _, kept in soup.soup_scores] == [("best", True), ("helps", True), ("hurts", False)]
    assert soup.soup_scores[1][1] > soup.scores["ties"] > soup.soup_scores[2][1]
    expected = torch.full((2, 32), (0.1 + 0.1 - 0.12) / 3)  # the mean of the three kept (the first is the soup itself now)
    torch.testing.assert_close(weight(soup.model), expected)
    assert soup.scores["hurts"] < soup.scores["helps"]
    assert loads[:4] == ["hurts", "ties", "helps", "best"] and loads[4] == "ties"  # every model checked and scored, then the soup


def test_mt_average_greedy_scores_the_runs_and_saves_the_mean_of_those_it_keeps(tmp_path):
    """Three runs of the synthetic tasks (other learning rates); the soup is the mean of the runs the lines say it kept."""
    import re
    import sys
    from pathlib import Path

    from typer.testing import CliRunner

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from conftest import WORDS, write_synthetic  # noqa: E402 - the training tests' synthetic set

    from mtcore import Trainer
    from mtcore.cli.app import app
    from mtcore.predict.evaluate import evaluate_path
    from mtcore.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words=WORDS, hidden_size=32, num_layers=2, num_heads=2)
    tasks = write_synthetic(tmp_path / "data", 32, 16)[:2]
    runs = []
    for lr, steps in ((1e-3, 8), (3e-3, 8), (1e-4, 2)):
        config = {"seed": 3, "cpu": True, "precision": "fp32", "encoder": {"path": str(encoder)}, "tasks": tasks,
                  "optimizer": {"lr": lr}, "schedule": {"max_steps": steps, "warmup_steps": 1}, "batching": {"batch_size": 8},
                  "evaluation": {"every": None, "at_end": True}, "logging": {"progress": "none", "plot": False}}
        runs.append(tmp_path / f"run-{lr}")
        Trainer(config, output_dir=runs[-1]).train()
    result = CliRunner().invoke(app, ["average", *map(str, runs), "--greedy", "--device", "cpu", "-o", str(tmp_path / "soup")])
    assert result.exit_code == 0, result.output
    alone_device = CliRunner().invoke(app, ["average", *map(str, runs), "--device", "cpu", "-o", str(tmp_path / "soup2")])
    assert alone_device.exit_code == 2 and "--device chooses where --greedy scores the models" in alone_device.stderr
    alone = {str(run): evaluate_path(run, device="cpu").aggregate for run in runs}
    best = max(alone, key=alone.get)
    assert f"greedy soup of 3 models, each scored on {runs[0]}'s evaluation data" in result.stderr
    assert f"  best alone: {best} ({alone[best]:.4f})" in result.stderr
    kept = [best] + re.findall(r"  kept: (\S+) \(", result.stderr)
    left = re.findall(r"  left out: (\S+) \(", result.stderr)
    assert sorted(kept + left) == sorted(alone) and f"averaged {len(kept)} of 3 models" in result.stderr
    soup = MultitaskModel.from_pretrained(tmp_path / "soup").state_dict()
    states = [MultitaskModel.from_pretrained(Path(path) / "model").state_dict() for path in kept]
    key = next(k for k in soup if k.startswith("encoder.") and soup[k].is_floating_point())
    torch.testing.assert_close(soup[key], sum(s[key] for s in states) / len(states), rtol=0, atol=1e-6)
    assert evaluate_path(runs[0], device="cpu", model=MultitaskModel.from_pretrained(tmp_path / "soup")).aggregate >= alone[best] - 1e-9
    grid = tmp_path / "grid"  # a --grid folder stands for its runs
    grid.mkdir()
    (grid / "grid.json").write_text("{}")
    for run in runs:
        run.rename(grid / run.name)
    folder = CliRunner().invoke(app, ["average", str(grid), "-o", str(tmp_path / "soup3")])
    assert folder.exit_code == 0 and "averaged 3 models" in folder.stderr, folder.output
    seeded = grid / "lr=x"  # a --grid --seeds folder: a combination holds its seeds' runs
    seeded.mkdir()
    (seeded / "seeds.json").write_text("{}")
    (grid / runs[0].name).rename(seeded / "seed-1")
    nested = CliRunner().invoke(app, ["average", str(grid), "-o", str(tmp_path / "soup4")])
    assert nested.exit_code == 0 and "averaged 3 models" in nested.stderr, nested.output


def test_heads_that_differ_in_training_only_options_average_and_defaults_written_out_are_the_same(cli, tiny_encoders, tmp_path):
    """A sweep over label smoothing or dropout has one shape of weights (an audit: refused as 'not one config')."""
    smoothed = SENTIMENT.replace(head_options={"pooling": "pooler", "label_smoothing": 0.1, "dropout": 0.3})
    written = SENTIMENT.replace(head_options={"pooling": "pooler", "class_weights": None, "dropout": "1e-1"})
    _, a = _saved(tiny_encoders, tmp_path, "a", SENTIMENT, seed=1)
    _, b = _saved(tiny_encoders, tmp_path, "b", smoothed, seed=2)
    _, c = _saved(tiny_encoders, tmp_path, "c", written, seed=3)
    result = cli("average", a, b, c, "-o", tmp_path / "soup")
    assert result.exit_code == 0, result.stderr
    _, d = _saved(tiny_encoders, tmp_path, "d", SENTIMENT.replace(head_options={"pooling": "mean"}), seed=4)
    other = cli("average", a, d, "-o", tmp_path / "soup2")
    assert other.exit_code == 2 and "task 'demo:sentiment' has head option pooling 'mean'" in other.stderr


def test_an_option_written_as_text_at_its_default_averages(cli, tiny_encoders, tmp_path):
    """YAML reads layer_norm_eps: 1e-5 as text; the head made it the default number (a regression audit)."""
    normed = SENTIMENT.replace(head="mlp", head_options={"pooling": "pooler", "layer_norm": True})
    _, a = _saved(tiny_encoders, tmp_path, "a", normed, seed=1)
    _, b = _saved(tiny_encoders, tmp_path, "b", normed.replace(head_options={**normed.head_options, "layer_norm_eps": "1e-5"}), seed=2)
    result = cli("average", a, b, "-o", tmp_path / "soup")
    assert result.exit_code == 0, result.stderr


def test_shared_lora_models_average_what_their_adapters_add(tiny_encoders, capfd):
    """Checkpoints of a shared-LoRA run hold their adapters apart: the average is of the merged weights (W + s·B·A), as
    their model/ folders would give, not of A and B apart."""
    import pytest

    pytest.importorskip("peft")
    from mtcore.model.averaging import average_models
    from mtcore.model.lora import merged_state_dict

    models = {}
    for i in range(2):
        torch.manual_seed(i)
        model = MultitaskModel(str(tiny_encoders["bert"]), [SENTIMENT], lora={"r": 2, "alpha": 4})
        with torch.no_grad():
            for name, parameter in model.encoder.named_parameters():
                if "lora_" in name:
                    parameter.copy_(torch.randn_like(parameter))
        models[f"ckpt{i}"] = model
    merged = [merged_state_dict(m.encoder) for m in models.values()]
    capfd.readouterr()
    soup = average_models(list(models), lambda path: models[path])
    assert "Loading weights" not in capfd.readouterr().err  # transformers' bars of the merged copies: no other command shows them
    assert not soup.lora and not any("lora_" in key for key in soup.state_dict())
    state = soup.encoder.state_dict()
    adapted = [key for key in merged[0] if not torch.equal(merged[0][key], merged[1][key])]
    assert adapted
    for key in adapted:
        torch.testing.assert_close(state[key], (merged[0][key] + merged[1][key]) / 2, rtol=0, atol=1e-6)


def test_options_a_head_resolves_itself_written_out_at_that_value_average(cli, tiny_encoders, tmp_path):
    """span_pooling and num_spans (None: mean and 2), a masked_lm head's layer_norm_eps (None: the encoder's)."""
    from mtcore import Task

    spans = SENTIMENT.replace(inputs={"text": "review", "spans": "marked"}, head_options={"pooling": "spans"})
    written = spans.replace(head_options={"pooling": "spans", "span_pooling": "mean", "num_spans": 2})
    lm = Task(name="lm", kind="masked_lm", plugin="demo")
    eps = lm.replace(head_options={"layer_norm_eps": 1e-12, "activation": "gelu"})  # the tiny BERT's own
    dirs = [make_model(tiny_encoders["bert"], task, lm_task, seed=i).save_pretrained(tmp_path / f"m{i}")
            for i, (task, lm_task) in enumerate([(spans, lm), (written, eps)])]
    result = cli("average", *dirs, "--output", tmp_path / "soup")
    assert result.exit_code == 0, result.output
    other = spans.replace(head_options={"pooling": "spans", "span_pooling": "max"})
    odd = make_model(tiny_encoders["bert"], other, lm, seed=3).save_pretrained(tmp_path / "m3")
    refused = cli("average", dirs[0], odd, "--output", tmp_path / "soup2")
    assert refused.exit_code == 2 and "head option span_pooling 'max'" in refused.stderr


def test_models_of_other_dtypes_are_refused_whatever_the_order(cli, tiny_encoders, tmp_path):
    """A bf16 and a float32 model averaged silently, into the first one's dtype: another model for another order."""
    _, full = _saved(tiny_encoders, tmp_path, "full", SENTIMENT, seed=1)
    half, _ = _saved(tiny_encoders, tmp_path, "half-src", SENTIMENT, seed=2)
    half_dir = half.to(torch.bfloat16).save_pretrained(tmp_path / "half")
    for order in ((full, half_dir), (half_dir, full)):
        result = cli("average", *order, "--output", tmp_path / "soup")
        assert result.exit_code == 2 and not (tmp_path / "soup").exists(), result.output
        line = result.stderr.strip().splitlines()[-1]
        assert "holds its weights in" in line and "bfloat16" in line and "float32" in line and "one dtype" in line, line
