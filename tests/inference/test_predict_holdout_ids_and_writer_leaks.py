"""Audit leftovers: a holdout's predicted rows without ids keep their place in the train file; a plugin writer that
writes outside its output leaves no file behind there, and its error lines name paths as the user knows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtcore.task import Source, Task

WORDS = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "sad"]}


def _reviews_task() -> Task:
    return Task(name="reviews", kind="text_classification", labels=("neg", "pos"), max_length=16,
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})


def test_holdout_rows_without_an_id_are_numbered_by_their_place_in_the_train_file(tmp_path, tiny_encoders):
    from inference.support import make_model
    from mtcore.cli.inference import _predict_split
    from mtcore.data.rows import ROW_COLUMN
    from mtcore.data.splits import holdout_indices
    from mtcore.data.task_data import load_raw
    from mtcore.predict.evaluate import TaskSetup

    data = tmp_path / "data"
    data.mkdir()
    labels = ["neg" if i % 3 == 0 else "pos" for i in range(24)]
    (data / "train.jsonl").write_text("".join(json.dumps({"text": f"{WORDS[label][i % 3]} movie", "label": label}) + "\n"
                                              for i, label in enumerate(labels)), encoding="utf-8")
    kept, held = holdout_indices(labels, 0.25)
    task = _reviews_task()
    raw = load_raw(task, "local", data_dir=data, splits=("train", "validation"), cache_dir=tmp_path / "c", holdout=0.25)
    assert raw.positions == {"train": kept, "validation": held}
    assert raw["validation"][ROW_COLUMN] == [p + 1 for p in held]  # its line in the file: place + 1

    model = make_model(tiny_encoders["bert"], task)
    setup = TaskSetup(task, task.id, "local", str(data), holdout=0.25)
    for split, places in (("validation", held), ("train", kept)):
        _, _, chunks = _predict_split(model, setup, split, batch_size=8)
        rows = [row for chunk in chunks for row in chunk]
        assert [row["idx"] for row in rows] == places, split  # not 0..N-1: they join back to train.jsonl
    assert held != list(range(len(held)))


# ---- a writer that writes outside the output it is given --------------------------------------------------------


def _writes_beside(task, rows, output_path):
    leak = Path("leak.tsv")
    leak.write_text("".join(f"{row['idx']}\n" for row in rows))
    return [leak]


def _leaks_into_a_folder_then_fails(task, rows, output_path):
    from mtcore.outputs import write_text_atomic

    write_text_atomic(Path("atomic.tsv"), "x\n")  # a temporary file renamed onto it
    Path("stray").mkdir(exist_ok=True)
    Path("stray/part.tsv").write_text("x\n")
    raise ValueError("boom")


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_writer_leaking_beside_its_output_leaves_no_file_and_says_so(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    from mtcore.plugins import register_component

    register_component("writer", "leak18", _writes_beside)
    monkeypatch.chdir(tmp_path)
    before = _listing(tmp_path)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "new/out.tsv", "--format", "leak18")
    assert result.exit_code == 1, result.output
    line = _error_line(result)
    assert "returned 'leak.tsv', outside the output it was given (new/out.tsv)" in line, line
    assert line.endswith("nothing was written (leak.tsv, which it created outside its output, removed)"), line
    assert _listing(tmp_path) == before  # no leak.tsv, no new/, no hidden folder


def test_a_writer_leaking_onto_a_file_that_was_there_leaves_that_file(cli, bert_model_dir, reviews_file, tmp_path, monkeypatch):
    from mtcore.plugins import register_component

    register_component("writer", "leak18b", _writes_beside)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leak.tsv").write_text("the user's own\n")
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", reviews_file, "-o", "new/out.tsv", "--format", "leak18b")
    assert result.exit_code == 1, result.output
    line = _error_line(result)
    assert line.endswith("nothing was written (leak.tsv was there before it ran: not removed)"), line
    assert (tmp_path / "leak.tsv").exists()  # never a file of the user's
    assert not (tmp_path / "new").exists()


def test_a_failing_writer_removes_the_folder_and_file_it_made_outside(tmp_path, monkeypatch):
    from mtcore.errors import PluginError
    from mtcore.predict.writers import write_staged

    monkeypatch.chdir(tmp_path)
    with pytest.raises(PluginError) as error:
        write_staged(_leaks_into_a_folder_then_fails, "user:stray", None, [], tmp_path / "out" / "p.tsv")
    assert str(error.value).endswith("failed: ValueError: boom; nothing was written "
                                     "(atomic.tsv, stray/part.tsv, which it created outside its output, removed)"), error.value
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("inside", [True, False], ids=["under-cwd", "elsewhere"])
def test_the_several_tasks_writer_error_names_the_output_folder_as_the_user_gave_it(tmp_path, monkeypatch, inside):
    from mtcore.errors import PluginError
    from mtcore.predict.writing import TaskFolder

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    folder = (tmp_path / "work" / "out" / "preds") if inside else (tmp_path / "elsewhere" / "preds")
    with pytest.raises(PluginError) as error, TaskFolder(folder, "leak", _writes_beside, "user:leak") as target:
        target.write(_reviews_task(), "user:reviews", [{"idx": 0, "label": "pos"}])
    shown = "out/preds" if inside else str(folder)
    assert f"outside the output it was given ({shown})" in str(error.value), error.value
    assert "(leak.tsv, which it created outside its output, removed)" in str(error.value)
    assert not (tmp_path / "work" / "leak.tsv").exists() and not folder.exists()
