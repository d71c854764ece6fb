"""``mt predict --input FILE`` streams: the file is read and predicted a chunk at a time and mtcore's
``jsonl`` / ``csv`` writers append each chunk's rows as they come (the output equals one pass's;
a failure half-way leaves nothing on disk), and several tasks' files are written all or none."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mtcore.task import Task

WORDS = ["good", "bad", "movie", "very", "x"]
QA = Task(name="qa", kind="extractive_qa", plugin="demo", max_length=24, stride=8)  # long contexts: several windows
TAGS = Task(name="tags", kind="token_classification", labels=("O", "B", "I"), inputs={"tokens": "words"}, plugin="demo", max_length=8)
CHOICE = Task(name="choice", kind="multiple_choice", plugin="demo")  # no labels: a probability column per choice


def _reviews(n: int) -> list[dict]:
    return [{"review": " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1 + i % 9))} for i in range(n)]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


@pytest.fixture()
def chunk_rows(monkeypatch):
    """``chunk_rows(n)``: predict n rows at a time."""
    from mtcore.predict import chunks

    return lambda n: monkeypatch.setattr(chunks, "CHUNK_ROWS", n)


@pytest.fixture(scope="module")
def qa_model_dir(tiny_encoders, tmp_path_factory) -> Path:
    from inference.support import make_model

    return make_model(tiny_encoders["bert"], QA, TAGS, CHOICE, seed=3).save_pretrained(tmp_path_factory.mktemp("models") / "qa")


@pytest.fixture()
def sink_calls(monkeypatch):
    """The number of rows each call of the streaming sinks got, and that the all-rows writers were not called."""
    from mtcore.predict import writers

    calls: list[int] = []
    for name in ("JsonlSink", "CsvSink"):
        cls = getattr(writers, name)
        original = cls.add

        def add(self, rows, _original=original):
            calls.append(len(rows))
            return _original(self, rows)

        monkeypatch.setattr(cls, "add", add)

    def refuse(*args, **kwargs):
        raise AssertionError("mt predict --input must stream, not hand every row to the writer")

    monkeypatch.setattr(writers, "write_jsonl", refuse)
    monkeypatch.setattr(writers, "write_csv", refuse)
    return calls


def _predict(cli, model_dir, task, path, *args):
    result = cli("predict", model_dir, "--task", task, "--input", path, "--batch-size", "1", *args)
    assert result.exit_code == 0, result.output
    return result


# ---- the output of chunks is the output of one pass --------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_streamed_output_is_the_output_of_one_chunk(cli, bert_model_dir, tmp_path, chunk_rows, fmt):
    rows = _reviews(50)
    rows[3]["label"] = "not read"  # the label field is dropped, as before
    path = _jsonl(tmp_path / "in.jsonl", rows)
    chunk_rows(1000)
    whole_out = _predict(cli, bert_model_dir, "demo:sentiment", path, "-f", fmt).stdout
    _predict(cli, bert_model_dir, "demo:sentiment", path, "-o", tmp_path / f"whole.{fmt}")
    chunk_rows(7)  # 50 rows: 7 chunks of 7 and one of 1
    streamed_out = _predict(cli, bert_model_dir, "demo:sentiment", path, "-f", fmt).stdout
    result = _predict(cli, bert_model_dir, "demo:sentiment", path, "-o", tmp_path / f"streamed.{fmt}")
    assert f"wrote 50 predictions of demo:sentiment (head demo:sentiment) to {tmp_path / f'streamed.{fmt}'}" in result.stderr
    assert streamed_out == whole_out == (tmp_path / f"whole.{fmt}").read_text(encoding="utf-8")
    assert (tmp_path / f"streamed.{fmt}").read_text(encoding="utf-8") == whole_out
    if fmt == "jsonl":
        assert [json.loads(line)["idx"] for line in whole_out.splitlines()] == list(range(50))  # numbered across chunks
    else:
        table = list(csv.reader(whole_out.splitlines()))
        assert table[0] == ["idx", "label", "p_negative", "p_positive"] and len(table) == 51  # the header once
        assert [int(r[0]) for r in table[1:]] == list(range(50))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.jsonl", f"whole.{fmt}", f"streamed.{fmt}"])  # no .tmp-*


def test_rows_are_read_predicted_and_written_a_chunk_at_a_time(cli, bert_model_dir, tmp_path, chunk_rows, sink_calls, monkeypatch):
    from mtcore.data import readers

    read = []
    at_first_write = []
    original = readers.iter_rows

    def counting(*args, **kwargs):
        for item in original(*args, **kwargs):
            read.append(item[0])
            yield item

    monkeypatch.setattr(readers, "iter_rows", counting)
    from mtcore.predict import writers

    add = writers.JsonlSink.add
    monkeypatch.setattr(writers.JsonlSink, "add", lambda self, rows: (at_first_write.append(len(read)), add(self, rows)))
    chunk_rows(7)
    path = _jsonl(tmp_path / "in.jsonl", _reviews(50))
    _predict(cli, bert_model_dir, "demo:sentiment", path, "-o", tmp_path / "out.jsonl")
    assert sink_calls == [7] * 7 + [1]  # each chunk's rows appended as they come, never all 50 at once
    assert at_first_write[0] == 50 + 7  # one checking pass over the file, then the first chunk only
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 50


def test_stdin_streams_too_and_leaves_no_copy(cli, bert_model_dir, tmp_path, chunk_rows, sink_calls, monkeypatch):
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    rows = _reviews(20)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    chunk_rows(1000)
    whole = cli("predict", bert_model_dir, "-t", "sentiment", "-i", "-", "--batch-size", "1", "-f", "csv", input=text)
    chunk_rows(6)
    streamed = cli("predict", bert_model_dir, "-t", "sentiment", "-i", "-", "--batch-size", "1", "-f", "csv", input=text)
    assert whole.exit_code == streamed.exit_code == 0, streamed.output
    assert streamed.stdout == whole.stdout and len(streamed.stdout.splitlines()) == 21
    assert sink_calls == [20, 6, 6, 6, 2]
    assert list(spool.iterdir()) == []  # the copy of stdin is removed
    broken = cli("predict", bert_model_dir, "-t", "sentiment", "-i", "-", input=text + "{not json\n")
    assert broken.exit_code == 1 and "<stdin> row 21" in _one_error_line(broken) and broken.stdout == ""
    assert list(spool.iterdir()) == []


def test_ids_given_are_kept_and_ids_mixed_over_chunks_leave_nothing(cli, bert_model_dir, tmp_path, chunk_rows):
    chunk_rows(7)
    rows = [{**row, "idx": f"r{i}"} for i, row in enumerate(_reviews(30))]
    out = _predict(cli, bert_model_dir, "sentiment", _jsonl(tmp_path / "ids.jsonl", rows)).stdout
    assert [json.loads(line)["idx"] for line in out.splitlines()] == [f"r{i}" for i in range(30)]
    rows[25].pop("idx")
    path = _jsonl(tmp_path / "mixed.jsonl", rows)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "-o", tmp_path / "out" / "p.jsonl")
    assert result.exit_code == 1
    assert _one_error_line(result) == (f"error: {path} row 26 has no idx while {path} row 1 has one; give every row an idx, "
                                       "or none (rows are then numbered from 0)")
    assert _listing(tmp_path) == ["ids.jsonl", "mixed.jsonl"]


def test_a_missing_field_far_into_the_file_is_one_line_before_any_prediction(cli, bert_model_dir, tmp_path, chunk_rows, monkeypatch):
    from mtcore.predict import predictor

    def never(*args, **kwargs):
        raise AssertionError("predicted before the file was checked")

    monkeypatch.setattr(predictor, "predict_raw", never)
    chunk_rows(7)
    rows = _reviews(50)
    rows[44] = {"text": "no review field"}
    path = _jsonl(tmp_path / "in.jsonl", rows)
    for out in (tmp_path / "p.jsonl", None):
        result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, *(["-o", out] if out else []))
        assert result.exit_code == 1 and result.stdout == ""
        assert f"{path} row 45: no field 'review' (text)" in _one_error_line(result)
    assert _listing(tmp_path) == ["in.jsonl"]


# ---- a failure half-way leaves nothing ---------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_bad_row_in_a_later_chunk_leaves_no_file(cli, bert_model_dir, tmp_path, chunk_rows, sink_calls, fmt):
    chunk_rows(7)
    rows = _reviews(50)
    rows[40] = {"review": ["a", "list"]}  # chunk 6: a field of another type than its chunk's other rows
    path = _jsonl(tmp_path / "in.jsonl", rows)
    result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "-o", tmp_path / "new" / f"p.{fmt}")
    assert result.exit_code == 1
    assert f"{path} row 41: field 'review' holds" in _one_error_line(result)
    assert sink_calls == [7] * 5  # five chunks were written to the temporary file before the bad one
    assert _listing(tmp_path) == ["in.jsonl"]  # neither the file, its temporary file, nor the folder made for it


@pytest.mark.parametrize("failure", ["interrupt", "disk full"])
def test_ctrl_c_or_a_full_disk_half_way_leaves_no_file(cli, bert_model_dir, tmp_path, chunk_rows, monkeypatch, failure):
    from mtcore.predict import predictor, writers

    chunk_rows(7)
    calls = []
    if failure == "interrupt":
        original = predictor.predict_raw

        def interrupted(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(predictor, "predict_raw", interrupted)
    else:
        add = writers.JsonlSink.add

        def full(self, rows):
            calls.append(1)
            if len(calls) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return add(self, rows)

        monkeypatch.setattr(writers.JsonlSink, "add", full)
    (tmp_path / "old.jsonl").write_text("kept\n")
    path = _jsonl(tmp_path / "in.jsonl", _reviews(50))
    for out in (tmp_path / "p.jsonl", tmp_path / "old.jsonl"):
        calls.clear()
        result = cli("predict", bert_model_dir, "-t", "sentiment", "-i", path, "-o", out)
        if failure == "interrupt":
            assert result.exit_code == 130 and _one_error_line(result) == "error: interrupted"
        else:
            assert result.exit_code == 1 and _one_error_line(result) == f"error: cannot write to {out}: No space left on device"
    assert _listing(tmp_path) == ["in.jsonl", "old.jsonl"] and (tmp_path / "old.jsonl").read_text() == "kept\n"


# ---- other kinds, the Python function, plugin writers -------------------------------------------
def test_extractive_qa_token_classification_and_multiple_choice_stream_as_one_pass(cli, qa_model_dir, tmp_path, chunk_rows):
    """QA: an idx per question whatever its windows; tags and choices: CSV rows wait for the header (a
    row further on may have more choices: one p_ column per choice of the row with the most)."""
    qa_rows = [{"question": "which one", "context": " ".join(WORDS[(i + j) % 5] for j in range(3 + 4 * (i % 6)))} for i in range(25)]
    tag_rows = [{"words": [WORDS[(i * j) % 5] for j in range(1 + i % 12)]} for i in range(25)]  # some cut by max_length 8
    choice_rows = [{"text": WORDS[i % 5], "choices": WORDS[i % 3:i % 3 + (4 if i == 21 else 2)]} for i in range(25)]
    for task, rows, header in (("demo:qa", qa_rows, "idx,label,answer_start,score"), ("demo:tags", tag_rows, "idx,label,tokens"),
                               ("demo:choice", choice_rows, "idx,label,p_0,p_1,p_2,p_3")):
        path = _jsonl(tmp_path / "in.jsonl", rows)
        outputs = {}
        for size in (1000, 4):
            chunk_rows(size)
            outputs[size] = [_predict(cli, qa_model_dir, task, path, "-f", fmt).stdout for fmt in ("jsonl", "csv")]
        assert outputs[4] == outputs[1000], task
        jsonl, table = outputs[4]
        assert [json.loads(line)["idx"] for line in jsonl.splitlines()] == list(range(25))
        assert table.splitlines()[0] == header and len(table.splitlines()) == 26, task
    assert list(csv.reader(table.splitlines()))[1][4:] == ["", ""]  # two choices: the last two columns empty


def test_the_python_function_streams_to_a_file(bert_model_dir, tmp_path):
    from mtcore.model import MultitaskModel
    from mtcore.predict import predict
    from mtcore.predict.tasks import prediction_task
    from mtcore.predict.writing import predict_input

    model = MultitaskModel.from_pretrained(bert_model_dir)
    rows = _reviews(30)
    path = _jsonl(tmp_path / "in.jsonl", rows)
    head, task = prediction_task(model, "sentiment")
    count, written = predict_input(model, head, task, path, batch_size=4, format="csv", output=tmp_path / "p.csv", chunk_rows=8)
    assert count == 30 and written == [tmp_path / "p.csv"]
    table = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    expected = predict(model, "sentiment", rows)
    assert [int(r["idx"]) for r in table] == expected.idx and [int(r["label"]) for r in table] == expected.labels
    for row, probabilities in zip(table, expected.probabilities):
        assert [float(row["p_negative"]), float(row["p_positive"])] == pytest.approx(probabilities, abs=1e-5)


def test_a_plugin_writer_still_gets_every_row_at_once(cli, bert_model_dir, tmp_path, chunk_rows):
    from mtcore.plugins import register_component

    got = []

    def write(task, rows, output_path):
        got.append(len(rows))
        Path(output_path).write_text("".join(f"{row['idx']}\n" for row in rows))
        return [Path(output_path)]

    register_component("writer", "all_rows_test", write)
    chunk_rows(7)
    path = _jsonl(tmp_path / "in.jsonl", _reviews(50))
    _predict(cli, bert_model_dir, "sentiment", path, "-o", tmp_path / "p.txt", "-f", "all_rows_test")
    assert got == [0, 50]  # the check that it takes the task (no rows), then every row in one list
    assert (tmp_path / "p.txt").read_text().splitlines() == [str(i) for i in range(50)]


# ---- several tasks: all or none ----------------------------------------------------------------
def _several(cli, run, out):
    return cli("predict", run, "--task", "terra,parus", "--split", "validation", "--output", out)


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_write_of_the_second_task_leaves_the_folder_as_it_was(cli, trained_run, tmp_path, monkeypatch, existing):
    from mtcore.predict import writers

    out = tmp_path / "preds"
    if existing:
        out.mkdir()
        (out / "rsg_terra.jsonl").write_text("old terra\n")
        (out / "notes.txt").write_text("mine\n")
    before = {p: p.read_text() for p in out.glob("*")}
    original = writers.JsonlSink.add
    calls = []

    def second_fails(self, rows):  # the split's rows go a chunk at a time to a streaming sink per task
        if not any(sink is self for sink in calls):  # the sinks themselves kept: a freed one's id() can come back
            calls.append(self)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, rows)

    monkeypatch.setattr(writers.JsonlSink, "add", second_fails)
    result = _several(cli, trained_run, out)
    assert result.exit_code == 1
    assert _one_error_line(result) == f"error: cannot write to {out / 'rsg_parus.jsonl'}: No space left on device"
    assert len(calls) == 2 and "wrote" not in result.stderr  # terra's written, parus's failed
    if existing:  # the first task's new file is not there, the old one is
        assert {p: p.read_text() for p in out.glob("*")} == before and _listing(out) == ["notes.txt", "rsg_terra.jsonl"]
    else:
        assert not out.exists()


def test_a_failed_move_puts_the_replaced_files_back(cli, trained_run, tmp_path, monkeypatch):
    out = tmp_path / "preds"
    out.mkdir()
    (out / "rsg_parus.jsonl").write_text("old parus\n")
    original = os.replace

    def refuse_terra(src, dst):
        if Path(dst) == out / "rsg_terra.jsonl":  # moved after rsg_parus.jsonl
            raise PermissionError(errno.EACCES, "Permission denied")
        return original(src, dst)

    monkeypatch.setattr(os, "replace", refuse_terra)
    result = _several(cli, trained_run, out)
    assert result.exit_code == 1 and "Permission denied" in _one_error_line(result)
    assert _listing(out) == ["rsg_parus.jsonl"] and (out / "rsg_parus.jsonl").read_text() == "old parus\n"
    monkeypatch.setattr(os, "replace", original)
    result = _several(cli, trained_run, out)
    assert result.exit_code == 0, result.output
    assert _listing(out) == ["rsg_parus.jsonl", "rsg_terra.jsonl"] and (out / "rsg_parus.jsonl").read_text() != "old parus\n"
    assert f"to {out / 'rsg_terra.jsonl'}" in result.stderr and f"to {out / 'rsg_parus.jsonl'}" in result.stderr


def test_several_tasks_to_stdout_or_a_pipe_is_a_usage_error(cli, trained_run, tmp_path):
    args = ["predict", str(trained_run), "--task", "terra,parus", "--split", "test", "-o", "/dev/stdout"]
    env = {**os.environ, "MT_LOAD_PLUGINS": "rsg"}
    done = subprocess.run([sys.executable, "-m", "mtcore.cli.app", *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: several tasks write one file each into a folder: --output names a folder, not '/dev/stdout'"
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        result = cli(*args[:-1], tmp_path / "fifo")
        assert result.exit_code == 2 and "--output names a folder, not" in _one_error_line(result)


def test_dev_stdout_on_a_pipe_gets_the_predictions(trained_run):
    """/dev/stdout on a pipe links to "pipe:[N]", which no path resolves to: it was "cannot write ... takes no new file"."""
    args = ["predict", str(trained_run), "--task", "terra", "--split", "test", "-o", "/dev/stdout"]
    env = {**os.environ, "MT_LOAD_PLUGINS": "rsg"}
    done = subprocess.run([sys.executable, "-m", "mtcore.cli.app", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows and all(row["label"] in ("entailment", "not_entailment") for row in rows)


def test_input_rows_with_a_field_per_row_or_mixed_types_in_unread_fields_read_as_training_reads_them(cli, bert_model_dir, tmp_path):
    """`mt predict --input` made a column per unread key (3,000 rows with a key each: 2.15 GB against 0.54), and refused a
    mixed-type field the task does not read, which training and `mt evaluate --input` keep as text (a regression audit)."""
    from mtcore.data.rows import MAX_LOOSE_COLUMNS, OTHER_COLUMN
    from mtcore.predict.inputs import rows_dataset

    rows = _reviews(2 * MAX_LOOSE_COLUMNS + 10)
    plain = _jsonl(tmp_path / "plain.jsonl", rows)
    wide = _jsonl(tmp_path / "wide.jsonl", [{**row, f"extra_{i}": i, "meta": [1, "x"] if i % 2 else "y"} for i, row in enumerate(rows)])
    want = _predict(cli, bert_model_dir, "demo:sentiment", plain).stdout
    assert _predict(cli, bert_model_dir, "demo:sentiment", wide).stdout == want
    from inference.support import SENTIMENT

    from mtcore.predict.inputs import open_input

    with open_input(str(wide), "auto") as source:
        raw = rows_dataset(list(source), SENTIMENT)
    assert OTHER_COLUMN in raw.column_names and len(raw.column_names) < 10
