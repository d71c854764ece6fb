"""The tasks run through mtcore's whole pipeline: tokenized data, batches, a smoke training."""

from __future__ import annotations

import math

from mtcore.data import load_task_data
from mtcore.testing.smoke import smoke_train

TASKS = ["nli:xnli-ru", "nli:headline-cause-simple", "nli:headline-cause-full", "nli:nli"]


def test_headline_pairs_keep_their_segments(registry, tiny_encoder, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    data = load_task_data(registry.task("nli:headline-cause-simple"), AutoTokenizer.from_pretrained(tiny_encoder),
                          encoder_config=AutoConfig.from_pretrained(tiny_encoder), cache_dir=tmp_path)
    row = data.splits["validation"][0]
    assert 1 in row["token_type_ids"] and 0 in row["token_type_ids"]
    batch = data.collator([data.splits["train"][i] for i in range(3)])
    assert batch["labels"].tolist() == list(data.splits["train"]["labels"][:3])


def test_smoke_training_on_the_samples_and_predictions_in_each_datasets_label_form(tiny_encoder, tmp_path):
    """HeadlineCause files store the class id (``label``: 0-2 or 0-6): predictions wrote names ("not_cause"), which
    could not be joined back to the raw ``label`` column; XNLI's files store names, and predictions keep them."""
    import json

    from typer.testing import CliRunner

    from mtcore.cli.app import app

    result = smoke_train(TASKS, encoder=tiny_encoder, output_dir=tmp_path / "run", steps=4)
    assert result.steps == 4 and result.losses and all(math.isfinite(loss) for loss in result.losses)
    for task_id in TASKS:
        assert 0.0 <= result.metrics[task_id]["accuracy"] <= 1.0
    predicted = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), "--task", "all", "--split", "validation",
                                         "-o", str(tmp_path / "predictions")])
    assert predicted.exit_code == 0, predicted.output
    for task_id, form in (("nli:headline-cause-simple", set(range(3))), ("nli:headline-cause-full", set(range(7))),
                          ("nli:xnli-ru", {"entailment", "neutral", "contradiction"})):
        path = tmp_path / "predictions" / f"{task_id.replace(':', '_')}.jsonl"
        labels = [json.loads(line)["label"] for line in path.read_text(encoding="utf-8").splitlines()]
        assert labels and set(labels) <= form and all(type(label) is type(next(iter(form))) for label in labels), (task_id, labels)
