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
        ((a, c), f"{c}: task 'demo:nli' has head_options {{'pooling': 'cls'}}, and {a} {{'pooling': 'pooler'}}"),
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
    assert empty.exit_code == 2 and "a --seeds folder without a finished seed run" in empty.stderr
