"""``mt export`` audit fixes: tasks whose ids make the same folder name each get their own; the README and
``mtcore_export.json`` say how mtcore cut the rows (the task's truncation, the length it used); a model saved from Python
with preprocessing that has no importable name exports (it reads no rows) and names the step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from inference.support import make_model

from mtcore.task import Task


def test_task_ids_one_folder_name_apart_export_into_folders_of_their_own(cli, tiny_encoders, tmp_path):
    spaced = Task(name="a b", kind="text_classification", labels=("x", "y", "z"), plugin="demo", head_options={"pooling": "pooler"})
    dashed = Task(name="a-b", kind="multi_label", labels=("p", "q"), plugin="demo", head_options={"pooling": "pooler"})
    model_dir = make_model(tiny_encoders["bert"], spaced, dashed).save_pretrained(tmp_path / "model")
    out = tmp_path / "exported"
    result = cli("export", model_dir, out, "--task", "all")
    assert result.exit_code == 0, result.output
    listed = json.loads((out / "mtcore_export.json").read_text(encoding="utf-8"))["tasks"]
    assert listed == {"demo:a b": "demo_a-b", "demo:a-b": "demo_a-b-2"}, listed
    for task, folder in listed.items():
        config = json.loads((out / folder / "config.json").read_text(encoding="utf-8"))
        kind = json.loads((out / folder / "mtcore_export.json").read_text(encoding="utf-8"))["kind"]
        assert (kind, len(config["id2label"])) == (("text_classification", 3) if task == "demo:a b" else ("multi_label", 2))


def test_the_readme_cuts_pairs_as_the_task_did_at_the_length_it_used(cli, tiny_encoders, tmp_path):
    from transformers import pipeline

    pair = Task(name="pair", kind="pair_classification", labels=("pos", "neg", "neu"), inputs={"text": "text", "text_pair": "other"},
                plugin="demo", max_length=16, truncation="only_second", head_options={"pooling": "pooler"})
    model_dir = make_model(tiny_encoders["bert"], pair).save_pretrained(tmp_path / "model")
    result = cli("export", model_dir, tmp_path / "out", "--task", "demo:pair")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "out" / "mtcore_export.json").read_text(encoding="utf-8"))
    assert info["truncation"] == "only_second" and info["max_length"] == 16
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "truncation='only_second', max_length=16" in readme, readme
    row = {"text": "good movie", "other": "bad movie " * 20}  # the second text is cut
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(row) + "\n", encoding="utf-8")
    predicted = cli("predict", model_dir, "--task", "demo:pair", "--input", rows)
    assert predicted.exit_code == 0, predicted.output
    ours = json.loads(predicted.stdout)["probabilities"]
    scores = pipeline("text-classification", model=str(tmp_path / "out"), device="cpu")(
        {"text": row["text"], "text_pair": row["other"]}, top_k=None, truncation="only_second", max_length=16)  # as the README says
    np.testing.assert_allclose([{s["label"]: s["score"] for s in scores}[label] for label in pair.labels], ours, atol=1e-5)
    # a max_length above the encoder's positions: the README gives the length the rows were cut at
    long = Task(name="long", kind="text_classification", labels=("a", "b"), plugin="demo", max_length=100_000,
                head_options={"pooling": "pooler"})
    long_dir = make_model(tiny_encoders["bert"], long).save_pretrained(tmp_path / "long-model")
    assert cli("export", long_dir, tmp_path / "long", "--task", "demo:long").exit_code == 0
    used = json.loads((tmp_path / "long" / "mtcore_export.json").read_text(encoding="utf-8"))["max_length"]
    from transformers import AutoConfig

    assert used <= AutoConfig.from_pretrained(tmp_path / "long").max_position_embeddings < 100_000


def shout(row):
    """Upper-case the text."""
    return {**row, "text": row["text"].upper()}


def test_a_model_with_preprocessing_saved_without_a_name_exports_and_names_the_step(cli, tiny_encoders, tmp_path, monkeypatch):
    task = Task(name="loud", kind="text_classification", labels=("a", "b"), plugin="demo", preprocess=("mt_russian_superglue.preprocess:preprocess_parus", shout),
                head_options={"pooling": "pooler"})
    monkeypatch.setattr(shout, "__module__", "__main__")  # as a function of a notebook or script: no importable name
    model_dir = make_model(tiny_encoders["bert"], task).save_pretrained(tmp_path / "model")
    assert json.loads((model_dir / "mtcore.json").read_text(encoding="utf-8"))["tasks"]["demo:loud"]["preprocess_not_saved"]
    result = cli("export", model_dir, tmp_path / "out")
    assert result.exit_code == 0, result.output
    steps = json.loads((tmp_path / "out" / "mtcore_export.json").read_text(encoding="utf-8"))["inputs"]["preprocess"]
    assert len(steps) == 2 and steps[0].startswith("mt_russian_superglue.preprocess:preprocess_parus: ") and steps[1].startswith(  # the named one is kept
        "__main__:shout: a function the model could not save by name"), steps
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "good", "label": "a"}) + "\n", encoding="utf-8")
    scored = cli("evaluate", model_dir, "--input", rows)
    assert scored.exit_code == 2 and "register the task (its id) in a plugin that has them" in scored.stderr, scored.output


def test_a_readme_of_an_only_second_pair_cuts_a_row_whose_first_text_is_too_long_as_mtcore_did(cli, tiny_encoders, tmp_path):
    """mtcore cuts such a row longest_first; the README's call with truncation='only_second' raised for it."""
    from transformers import pipeline

    pair = Task(name="pair", kind="pair_classification", labels=("pos", "neg"), inputs={"text": "text", "text_pair": "other"},
                plugin="demo", max_length=16, truncation="only_second", head_options={"pooling": "pooler"})
    model_dir = make_model(tiny_encoders["bert"], pair).save_pretrained(tmp_path / "model")
    assert cli("export", model_dir, tmp_path / "out").exit_code == 0
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    row = {"text": "good movie " * 20, "other": "bad"}  # the first text alone is longer than 16 tokens
    scope = {}
    exec(code.replace('row = {"text": "...", "text_pair": "..."}', f"row = {{'text': {row['text']!r}, 'text_pair': {row['other']!r}}}"), scope)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(row) + "\n", encoding="utf-8")
    ours = json.loads(cli("predict", model_dir, "--task", "demo:pair", "--input", rows).stdout)["probabilities"]
    np.testing.assert_allclose([{s["label"]: s["score"] for s in scope["scores"]}[label] for label in pair.labels], ours, atol=1e-5)
    classify = pipeline("text-classification", model=str(tmp_path / "out"), device="cpu")
    with pytest.raises(Exception):  # what the README called alone before
        classify({"text": row["text"], "text_pair": row["other"]}, top_k=None, truncation="only_second", max_length=16)


def test_the_multiple_choice_readme_encodes_a_row_without_text_as_mtcore_did(tiny_encoders, tmp_path):
    """mtcore encodes a text-less row's choices alone; the README's tokenizer(text, choice) built [CLS] [SEP] choice [SEP]."""
    import torch

    from mtcore.export.hf import export_task
    from mtcore.predict.predictor import predict

    task = Task(name="choice", kind="multiple_choice", head_options={"pooling": "pooler"}, plugin="demo", max_length=16,
                truncation="only_second")
    model = make_model(tiny_encoders["bert"], task, seed=1)
    export_task(model, "choice", tmp_path / "mc")
    code = (tmp_path / "mc" / "README.md").read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    rows = [{"text": "", "choices": ["x y", "z"]}, {"text": "good movie " * 10, "choices": ["bad", "good movie indeed"]},
            {"text": "good", "choices": ["bad " * 20, "movie"]}]
    ours = predict(model, "choice", rows, batch_size=1).probabilities
    for row, probs in zip(rows, ours):
        scope = {}
        exec(code.replace('text, choices = "...", ["...", "..."]', f"text, choices = {row['text']!r}, {row['choices']!r}")
             .replace("best = ", "logits = model(**{k: v.unsqueeze(0) for k, v in encoded.items()}).logits\nbest = "), scope)
        np.testing.assert_allclose(torch.softmax(scope["logits"], -1)[0].detach().numpy(), probs, atol=1e-5)
