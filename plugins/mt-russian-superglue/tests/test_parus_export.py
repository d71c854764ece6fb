"""An exported PARus model says how its input is built, and a user who builds it that way gets mt predict's answers.

The bug: the README of ``mt export --task rsg:parus`` gave only ``AutoModelForMultipleChoice.from_pretrained``; PARus
rows become "premise without its final punctuation, потому что/поэтому" + each choice, which nobody could guess."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.testing.smoke import smoke_train

SAMPLE = Path(__file__).resolve().parents[1] / "mt_russian_superglue" / "sample" / "PARus" / "val.jsonl"


def test_the_exported_readme_describes_the_parus_input_and_following_it_gives_mt_predicts_probabilities(tiny_encoder, tmp_path):
    from transformers import AutoModelForMultipleChoice, AutoTokenizer

    run = smoke_train(["rsg:parus"], encoder=tiny_encoder, output_dir=tmp_path / "run", steps=2,
                      overrides=["tasks.0.head_options={pooling: pooler}"]).output_dir
    out = tmp_path / "parus"
    exported = CliRunner().invoke(app, ["export", str(run / "model"), "--task", "rsg:parus", str(out)])
    assert exported.exit_code == 0, exported.output
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "## Input" in readme and "tokenizer(text, choice) for every choice" in readme
    assert '"потому что" when ``question`` is "cause" and "поэтому" when it is "effect"' in readme
    assert "AutoModelForMultipleChoice" in readme and "return tokenizer(text, choice, truncation=True, max_length=128)" in readme
    assert "tokenizer.pad([encode(choice) for choice in choices]" in readme
    [step] = json.loads((out / "mtcore_export.json").read_text(encoding="utf-8"))["inputs"]["preprocess"]
    assert step.startswith("mt_russian_superglue.preprocess:preprocess_parus: PARus as multiple choice: ``text`` = the premise")

    predicted = CliRunner().invoke(app, ["predict", str(run / "model"), "--task", "rsg:parus", "--input", str(SAMPLE)])
    assert predicted.exit_code == 0, predicted.output
    ours = [json.loads(line)["probabilities"] for line in predicted.stdout.splitlines()]
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    model, tokenizer = AutoModelForMultipleChoice.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    connective = {"cause": "потому что", "effect": "поэтому"}
    for row, probabilities in zip(rows, ours, strict=True):  # the README's words, followed by hand
        text = f"{row['premise'].rstrip('.!?…')}, {connective[row['question']]}"
        choices = [row["choice1"], row["choice2"]]
        encoded = tokenizer.pad([tokenizer(text, choice, truncation=True, max_length=128) for choice in choices], return_tensors="pt")
        with torch.no_grad():
            logits = model(**{k: v.unsqueeze(0) for k, v in encoded.items()}).logits
        torch.testing.assert_close(torch.softmax(logits, -1)[0], torch.tensor(probabilities), atol=1e-5, rtol=0)
