"""The ``class_weights`` head option: the weighted cross-entropy of PyTorch, over labelled items only, given as a list
or, in a config, as ``{label: weight}``; refused in one line when it cannot be right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from mtcore.errors import ConfigError
from mtcore.model.heads.classification import ClassificationHead, MLPHead
from mtcore.model.heads.token_classification import TokenClassificationHead

H = 8


def _states(batch: int = 5, length: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, length, H, generator=generator), torch.ones(batch, length, dtype=torch.long)


@pytest.mark.parametrize("head_class", [ClassificationHead, MLPHead])
def test_sequence_heads_weigh_each_row_by_its_class_as_pytorch_does(head_class):
    head = head_class(H, 3, class_weights=[0.5, 2.0, 1.0])
    head.train(False)
    hidden, mask = _states()
    labels = torch.tensor([2, -1, 0, 1, 1])  # the unlabelled row counts in neither the sum nor the weights
    out = head(hidden, mask, labels=labels)
    kept = [0, 2, 3, 4]
    expected = F.cross_entropy(out.logits[kept], labels[kept], weight=torch.tensor([0.5, 2.0, 1.0]))
    assert torch.allclose(out.loss, expected)
    unweighted = F.cross_entropy(out.logits[kept], labels[kept])
    assert not torch.allclose(out.loss, unweighted)
    assert "class_weights" not in head.state_dict()  # rebuilt from the saved head options, not stored with the weights


def test_the_token_head_weighs_each_tag_and_still_ignores_minus_100():
    head = TokenClassificationHead(H, 3, dropout=0.0, class_weights=[0.1, 1.0, 1.0])
    hidden, mask = _states(2, 4)
    labels = torch.tensor([[0, 1, -100, 2], [0, 0, 2, -100]])
    out = head(hidden, mask, labels=labels)
    flat, tags = out.logits.reshape(-1, 3), labels.reshape(-1)
    expected = F.cross_entropy(flat, tags, weight=torch.tensor([0.1, 1.0, 1.0]), ignore_index=-100)
    assert torch.allclose(out.loss, expected)


@pytest.mark.parametrize(("value", "message"), [
    ([1.0, 2.0], "has 2 weights for 3 classes"),
    ([0, 0, 0], "finite numbers >= 0, not all 0"),
    ([1, -1, 1], "finite numbers >= 0"),
    ([1, float("nan"), 1], "finite numbers >= 0"),
    ("balanced", "must be a list of 3 numbers or a mapping"),
    ([1, True, 1], "must hold numbers"),
])
def test_weights_that_cannot_be_right_are_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        ClassificationHead(H, 3, class_weights=value)


def _mt(*args: str):
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_a_config_names_the_weights_by_label_and_the_saved_model_keeps_them(tmp_path: Path, tiny_encoders):
    from mtcore.model import MultitaskModel

    config = {"encoder": {"path": str(tiny_encoders["bert"])}, "cpu": True, "precision": "fp32", "seed": 1,
              "tasks": [{"id": "rsg:terra", "source": "sample", "head_options": {"class_weights": {"not_entailment": 3}}}],
              "schedule": {"max_steps": 2}, "logging": {"progress": "none", "plot": False}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _mt("train", str(path), "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "run" / "model" / "mtcore.json").read_text())
    assert manifest["tasks"]["rsg:terra"]["head_options"] == {"class_weights": [1.0, 3]}  # in label order: entailment, not_entailment
    model = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    assert model.heads["rsg:terra"].class_weights.tolist() == [1.0, 3.0]

    typo = _mt("check", str(path), "tasks.0.head_options={class_weights: {not_entailmnt: 3}}", "--no-data")
    assert typo.exit_code == 2
    assert typo.stderr.strip() == ("error: unknown label 'not_entailmnt' (did you mean 'not_entailment' or 'entailment'?); head option "
                                   "class_weights of task 'rsg:terra' is keyed by its labels: entailment, not_entailment")


def test_label_keyed_weights_on_a_head_without_class_weights_name_the_option_not_an_empty_label_list():
    """It said "unknown label 'a'; ... keyed by its labels:" and an empty list, for a multiple-choice task."""
    from mtcore.model import MultitaskModel
    from mtcore.plugins import load_registry
    import tempfile

    from mtcore.testing import build_tiny_encoder

    task = load_registry().task("rsg:parus")
    from mtcore.errors import MtError

    with tempfile.TemporaryDirectory() as folder, pytest.raises(MtError) as info:
        MultitaskModel(str(build_tiny_encoder(Path(folder) / "e")), {task.id: task.replace(head_options={"class_weights": {"a": 2}})})
    assert str(info.value).startswith("unknown head option 'class_weights'; head 'multiple_choice' of task 'rsg:parus' takes: ")


def test_balanced_weights_come_from_the_train_labels_and_stay_with_the_model_and_its_checkpoints(tmp_path: Path):
    from mtcore import Trainer

    rows = [("good", "pos")] * 9 + [("bad", "neg")] * 3  # 12 rows: pos 9, neg 3 -> 12 / (2 * 9), 12 / (2 * 3)
    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
    define = {"name": "reviews", "kind": "text_classification", "labels": ["neg", "pos"],
              "files": {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "dev.jsonl")}}
    config = {"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "checkpoint": {"every": 2},
              "logging": {"progress": "none", "plot": False}, "tasks": [{"define": define, "head_options": {"class_weights": "balanced"}}]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    checked = _mt("check", str(tmp_path / "run.yaml"))
    assert checked.exit_code == 0 and "note: task 'user:reviews': class_weights balanced from its train labels: neg 2, pos 0.667" in checked.stdout
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    expected = [12 / (2 * 3), 12 / (2 * 9)]  # in label order: neg, pos
    manifest = json.loads((tmp_path / "run" / "model" / "mtcore.json").read_text())
    assert manifest["tasks"]["user:reviews"]["head_options"]["class_weights"] == pytest.approx(expected)
    start = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "task 'user:reviews': class_weights balanced from its train labels: neg 2, pos 0.667" in start["notes"]

    result = _mt("evaluate", str(tmp_path / "run" / "checkpoints" / "step-000002"), "--json")
    assert result.exit_code == 0, result.stderr
    loss = json.loads(result.stdout)["metrics"]["user:reviews/loss"]
    assert loss == pytest.approx(summary["final"]["metrics"]["user:reviews/loss"], rel=1e-6)  # the checkpoint is weighted too


def test_label_counts_count_token_tags_and_leave_out_unlabelled_items(tmp_path: Path, tiny_encoders):
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.yaml_tasks import task_from_definition

    (tmp_path / "train.jsonl").write_text(json.dumps({"tokens": ["good", "bad", "movie"], "label": ["O", "B", "O"]}) + "\n"
                                          + json.dumps({"tokens": ["movie"], "label": ["I"]}) + "\n", encoding="utf-8")
    task = task_from_definition({"name": "tags", "kind": "token_classification", "labels": ["O", "B", "I"],
                                 "files": {"train": "train.jsonl"}}, base_dir=tmp_path)
    data = load_task_data(task, AutoTokenizer.from_pretrained(tiny_encoders["bert"]), splits=("train",))
    assert data.label_counts("train") == [2, 1, 1]


def test_balanced_weights_match_scikit_learn_over_the_classes_present():
    """A declared class absent from train counted in K, so every weight was off (L0 0.583 where scikit-learn gives 0.636)."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    from mtcore.train.class_balance import balanced_weights

    counts = [5, 0, 1, 3]
    labels = np.repeat([0, 2, 3], [5, 1, 3])
    expected = compute_class_weight("balanced", classes=np.array([0, 2, 3]), y=labels)
    weights = balanced_weights(counts)
    assert np.allclose([weights[0], weights[2], weights[3]], expected) and weights[1] == 1.0


def test_a_note_on_balanced_weights_of_many_classes_names_ten():
    """10,000 labels made one 122,000-character note line (a scale audit)."""
    from mtcore.task import Task
    from mtcore.train.class_balance import balanced_note

    labels = tuple(f"c{i}" for i in range(500))
    note = balanced_note(Task(name="many", kind="text_classification", labels=labels, plugin="demo"), [1.0 + i / 100 for i in range(500)])
    assert note == ("task 'demo:many': class_weights balanced from its train labels: c0 1, c1 1.01, c2 1.02, c3 1.03, c4 1.04, c5 1.05, "
                    "c6 1.06, c7 1.07, c8 1.08, c9 1.09, ... (490 more, from 1 to 5.99; all in the saved model's head options)")
