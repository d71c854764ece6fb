"""Inference and interop audit: findings that once misbehaved, each checked through the CLI or the public API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from inference.support import REVIEWS, SENTIMENT

from mtcore.errors import DataError, UsageError
from mtcore.export.hf import export_task
from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict

LONG_TEXT = "good bad movie " * 60  # ~180 tokens: longer than any max_length used here


def _one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: ") and "Traceback" not in line
    return line


def test_export_overwrite_never_replaces_a_folder_it_did_not_write(cli, bert_model_dir, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    (mine / "src").mkdir(parents=True)
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    (mine / "src" / "a.py").write_text("x = 1\n", encoding="utf-8")
    line = _one_line_error(cli("export", bert_model_dir, mine, "--task", "nli", "--overwrite"), 2)
    assert "mtcore_export.json" in line and "new or empty directory" in line
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "precious" and (mine / "src" / "a.py").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing staged beside it either
    line = _one_line_error(cli("export", bert_model_dir, mine, "--encoder-only", "--overwrite"), 2)
    assert (mine / "notes.txt").is_file()

    export = tmp_path / "export"  # an earlier export is what --overwrite replaces
    assert cli("export", bert_model_dir, export, "--task", "nli").exit_code == 0
    assert cli("export", bert_model_dir, export, "--task", "sentiment", "--overwrite").exit_code == 0
    assert json.loads((export / "mtcore_export.json").read_text(encoding="utf-8"))["task"] == "demo:sentiment"

    monkeypatch.chdir(export)  # the current folder is never replaced, even an earlier export
    with pytest.raises(UsageError, match="is the current folder"):
        export_task(MultitaskModel.from_pretrained(bert_model_dir), "nli", ".", overwrite=True)
    assert (export / "mtcore_export.json").is_file()


def test_cli_export_records_the_model_it_came_from(cli, bert_model_dir, tmp_path):
    for args, out in ((["--task", "nli"], tmp_path / "nli"), (["--encoder-only"], tmp_path / "encoder")):
        assert cli("export", bert_model_dir, out, *args).exit_code == 0
        info = json.loads((out / "mtcore_export.json").read_text(encoding="utf-8"))
        assert info["source"] == str(bert_model_dir.absolute())
        assert f"source: {bert_model_dir.absolute()}" in (out / "README.md").read_text(encoding="utf-8")


def test_saved_and_exported_tokenizers_do_not_truncate_to_a_previous_calls_length(cli, bert_model_dir, tmp_path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    model = MultitaskModel.from_pretrained(bert_model_dir)
    predict(model, "sentiment", REVIEWS)  # tokenizes with the task's max_length: the live tokenizer keeps that state
    full = len(model.tokenizer(LONG_TEXT)["input_ids"])
    assert full > SENTIMENT.max_length + 2
    saved = model.save_pretrained(tmp_path / "saved")
    assert cli("export", bert_model_dir, tmp_path / "plain", "--task", "sentiment").exit_code == 0  # probes at 64 tokens too
    for folder in (saved / "encoder", tmp_path / "plain"):
        assert json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["truncation"] is None, folder
        assert len(Tokenizer.from_file(str(folder / "tokenizer.json")).encode(LONG_TEXT).ids) == full  # the tokenizers library alone
        assert "max_length" not in json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        assert AutoTokenizer.from_pretrained(folder)(["good movie", "x"])["input_ids"] == model.tokenizer(["good movie", "x"])["input_ids"]
    reloaded = MultitaskModel.from_pretrained(saved)  # and the saved model still predicts what it did
    np.testing.assert_allclose(predict(reloaded, "sentiment", REVIEWS).probabilities, predict(model, "sentiment", REVIEWS).probabilities, atol=1e-6)


def _parus_rows() -> list[dict]:
    return [{"premise": "Мальчик упал.", "choice1": "Он споткнулся.", "choice2": "Он спал.", "question": "cause"},
            {"premise": "Шёл дождь.", "choice1": "Улица намокла.", "question": "effect"}]  # no choice2


def test_a_row_lacking_a_field_its_preprocessing_reads_is_named_not_predicted(cli, trained_run, tmp_path):
    path = tmp_path / "parus.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _parus_rows()), encoding="utf-8")
    result = cli("predict", trained_run, "--task", "parus", "--input", path)
    line = _one_line_error(result, 1)
    assert "parus.jsonl row 2" in line and "'choice2'" in line and result.stdout == ""  # no prediction with a choice 'None'
    model = MultitaskModel.from_pretrained(trained_run / "model")
    with pytest.raises(DataError, match=r"inputs row 2: .*'choice2'"):
        predict(model, "rsg:parus", _parus_rows())
    assert len(predict(model, "rsg:parus", _parus_rows()[:1])) == 1


def test_evaluating_data_with_a_row_lacking_a_preprocessed_field_names_it(cli, trained_run, rsg_sample, tmp_path):
    data = tmp_path / "RSG"
    shutil.copytree(rsg_sample / "PARus", data / "PARus")
    rows = [json.loads(line) for line in (data / "PARus" / "val.jsonl").read_text(encoding="utf-8").splitlines()]
    del rows[3]["choice2"]
    (data / "PARus" / "val.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    line = _one_line_error(cli("evaluate", trained_run, "--tasks", "parus", "--data-dir", data), 1)
    assert "val.jsonl row 4" in line and "'choice2'" in line
    line = _one_line_error(cli("predict", trained_run, "--task", "parus", "--split", "validation", "--data-dir", data), 1)
    assert "val.jsonl row 4" in line and "'choice2'" in line


def test_an_unfinished_checkpoint_is_named_as_such(cli, tmp_path, reviews_file):
    checkpoint = tmp_path / "run" / "checkpoints" / "step-000010"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"")  # weights written, state.json not yet
    for args in (["predict", checkpoint, "--task", "x", "--input", reviews_file], ["evaluate", checkpoint], ["export", checkpoint, tmp_path / "out"]):
        line = _one_line_error(cli(*args), 2)  # a path that is no usable model: a usage error
        assert "unfinished checkpoint" in line and "state.json" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_inference_under_a_distributed_launch_is_refused_before_any_work(cli, trained_run, rsg_sample, tmp_path, monkeypatch,
                                                                         command):
    """Under torchrun every process ran the whole job and wrote the same output file (twice, racing)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "out"
    args = {"predict": ("predict", trained_run, "-t", "terra", "-i", rsg_sample / "TERRa" / "val.jsonl", "-o", out),
            "evaluate": ("evaluate", trained_run, "-t", "terra"),
            "export": ("export", trained_run, out, "--encoder-only")}[command]
    line = _one_line_error(cli(*args), 2)
    assert f"mt {command} runs in one process" in line and "WORLD_SIZE=2" in line
    assert not out.exists()
    monkeypatch.setenv("WORLD_SIZE", "1")  # a launch of one process is an ordinary run
    done = cli(*args)
    assert done.exit_code == 0, done.stderr
