"""Extractive question answering (kind ``extractive_qa``): answers in SQuAD's form, their token spans,
training that learns, SQuAD's metrics, predictions with the answer text, export to plain transformers."""

from __future__ import annotations

import json
import random
import subprocess
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from mtcore.data.answers import best_span, normalize_answers, span_text
from mtcore.data.cut_answers import CutAnswersWarning
from mtcore.errors import DataError
from mtcore.train.qa_metrics import squad_em, squad_f1

REPO = Path(__file__).resolve().parents[2]
FILL = "the a one some this that my your his her it is was has on in at".split()
COLOURS = ["red", "blue", "green"]
WORDS = FILL + COLOURS + ["which", "colour", "is", "it"]


def _rows(n: int, seed: int, *, shape: str = "dict") -> list[dict]:
    """Questions whose answer is the context's one colour word."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILL) for _ in range(rng.randint(3, 9))]
        colour, at = rng.choice(COLOURS), rng.randrange(0, 4)
        words.insert(at, colour)
        start = len(" ".join(words[:at])) + (1 if at else 0)
        answers = {"text": [colour], "answer_start": [start]} if shape == "dict" else [{"text": colour, "answer_start": start}]
        rows.append({"id": i, "question": "which colour is it", "context": " ".join(words), "answers": answers})
    return rows


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def qa_encoder(tmp_path_factory) -> Path:
    from mtcore.testing import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("qa-encoder"), "bert", words=WORDS, hidden_size=64, num_layers=2, num_heads=2)


def _config(tmp_path: Path, encoder: Path, **extra) -> dict:
    files = {"train": _write(tmp_path / "train.jsonl", _rows(64, 0)), "validation": _write(tmp_path / "val.jsonl", _rows(16, 1, shape="list"))}
    config = {"encoder": {"path": str(encoder)}, "tasks": [{"define": {"name": "qa", "kind": "extractive_qa", "id_field": "id", "files": files}}],
              "schedule": {"max_steps": 60, "warmup_steps": 0}, "optimizer": {"lr": 3e-3}, "batching": {"batch_size": 8},
              "evaluation": {"every": None, "at_end": True}, "logging": {"progress": "none", "plot": False}, "checkpoint": {"every": None}}
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value}
    return config


# ---- answers ----------------------------------------------------------------------------------
def test_answers_in_every_squad_shape_are_normalised_and_off_by_one_starts_fixed():
    context = "the red apple is on the red table"
    assert normalize_answers({"text": ["red"], "answer_start": [4]}, context) == {"text": ["red"], "answer_start": [4]}
    assert normalize_answers([{"text": "apple", "answer_start": 8}], context) == {"text": ["apple"], "answer_start": [8]}
    assert normalize_answers({"text": "table", "answer_start": "28"}, context) == {"text": ["table"], "answer_start": [28]}
    assert normalize_answers({"text": ["red"], "answer_start": [23]}, context)["answer_start"] == [24]  # nearest occurrence
    with pytest.raises(ValueError, match="answer 'pear' does not occur in the context"):
        normalize_answers({"text": ["pear"], "answer_start": [0]}, context)
    with pytest.raises(ValueError, match="1 text\\(s\\) and 2 answer_start\\(s\\)"):
        normalize_answers({"text": ["red"], "answer_start": [4, 5]}, context)
    with pytest.raises(ValueError, match="answer_start -1 of answer 'red' is not a character offset"):
        normalize_answers({"text": ["red"], "answer_start": [-1]}, context)


def test_a_training_row_without_its_answer_in_the_context_is_one_line_naming_file_and_row(tmp_path, qa_encoder):
    from mtcore import Trainer

    rows = _rows(8, 0)
    rows[5]["answers"] = {"text": ["purple"], "answer_start": [0]}
    rows[6]["answers"] = {"text": [], "answer_start": []}
    config = _config(tmp_path, qa_encoder)
    config["tasks"][0]["define"]["files"]["train"] = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as caught:
        Trainer(config, output_dir=tmp_path / "run").train()
    assert str(caught.value) == (f"task 'user:qa', {tmp_path / 'bad.jsonl'} row 6: answer 'purple' does not occur in the context; "
                                 "fix the answer or the context")
    rows[5] = _rows(1, 3)[0]
    _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match="row 7: no label \\(field 'answers' is .*\\); train rows need one"):
        Trainer(config, output_dir=tmp_path / "run").train()
    assert not (tmp_path / "run").exists()


def test_squad_layout_json_gives_one_row_per_question(tmp_path):
    from mtcore.data.readers import iter_rows

    document = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "a", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]},
                                                 {"id": "b", "question": "What is in France?", "answers": [{"text": "Paris", "answer_start": 0},
                                                                                                          {"text": "Paris", "answer_start": 0}]}]},
        {"context": "Oslo is cold.", "qas": [{"id": "c", "question": "What is cold?", "answers": []}]}]}]}
    path = tmp_path / "dev-v1.1.json"
    path.write_text(json.dumps(document), encoding="utf-8-sig")  # with a byte-order mark
    rows = list(iter_rows(path))
    assert [number for number, _ in rows] == [1, 2, 3]
    assert rows[1][1] == {"id": "b", "title": "T", "context": "Paris is in France.", "question": "What is in France?",
                          "answers": {"text": ["Paris", "Paris"], "answer_start": [0, 0]}}
    assert rows[2][1]["answers"] == {"text": [], "answer_start": []}


# ---- spans ------------------------------------------------------------------------------------
def test_token_targets_cover_the_answer_and_cut_answers_are_no_target(tmp_path, qa_encoder):
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.task import Source, Task

    rows = _rows(20, 4)
    rows.append({"id": 99, "question": "which colour is it", "context": " ".join(["the"] * 40 + ["blue"]),
                 "answers": {"text": ["blue"], "answer_start": [160]}})
    task = Task(name="qa", kind="extractive_qa", id_field="id", max_length=24, stride=0,  # one window: the rest is cut
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    _write(tmp_path / "train.jsonl", rows)
    tokenizer = AutoTokenizer.from_pretrained(qa_encoder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_task_data(task, tokenizer, source="local", data_dir=tmp_path, splits=["train"], cache_dir=tmp_path / "cache")
    cut = [w for w in caught if issubclass(w.category, CutAnswersWarning)]
    assert len(cut) == 1 and "1 of 21 rows have their answer in no window of max_length 24" in str(cut[0].message)
    assert "set the task's stride (e.g. 128" in str(cut[0].message)
    split = data.splits["train"]
    for row in split:
        first, last = row["labels"]
        if row["idx"] == 99:
            assert (first, last) == (-100, -100)
            continue
        assert tokenizer.decode(row["input_ids"][first:last + 1]) == row["answers"][0]
        assert span_text(row["context"], row["offsets"], first, last) == (row["answers"][0], row["context"].index(row["answers"][0]))
        assert all(o == [-1, -1] for o in row["offsets"][: row["input_ids"].index(tokenizer.sep_token_id) + 1])  # question: no offsets


def test_best_span_stays_in_the_context_in_order_and_short():
    offsets = [[-1, -1], [-1, -1], [0, 3], [4, 7], [8, 11], [12, 15], [-1, -1]]
    start = [9.0, 0.0, 0.5, 0.0, 5.0, 0.0, 9.0]  # the question and special tokens score highest: never chosen
    end = [9.0, 0.0, 0.0, 6.0, 1.5, 2.0, 9.0]
    assert best_span(start, end, offsets)[:2] == (4, 5)  # 7.0; (4, 3) would be 11 but ends before it starts
    assert best_span(start, end, offsets, max_answer_tokens=1)[:2] == (4, 4)
    assert best_span(start, end, [[-1, -1]] * 7)[:2] == (-1, -1)
    assert span_text("abc defg hij klmn", offsets, -1, -1) == ("", -1)


def test_squad_metrics_follow_the_official_script():
    assert squad_em(["The Eiffel Tower!"], [["eiffel tower"]]) == 1.0  # case, punctuation, articles
    assert squad_f1(["in Paris France"], [["Paris"]]) == pytest.approx(0.5)  # precision 1/3, recall 1
    assert squad_f1(["Paris"], [["London", "in Paris"]]) == pytest.approx(2 / 3)  # the best gold answer counts
    assert squad_em(["Москва"], [["москва"]]) == 1.0
    assert squad_f1(["", "red"], [["blue"], ["red"]]) == pytest.approx(0.5)
    assert squad_f1(["x"], [[]]) == 0.0  # no gold answers: not scored


# ---- training, prediction, export ---------------------------------------------------------------
def test_training_learns_to_point_at_the_answer_then_predicts_and_exports(tmp_path, qa_encoder):
    from transformers import AutoModelForQuestionAnswering
    from typer.testing import CliRunner

    from mtcore import Trainer
    from mtcore.cli.app import app
    from mtcore.model import MultitaskModel
    from mtcore.predict import predict

    summary = Trainer(_config(tmp_path, qa_encoder), output_dir=tmp_path / "run").train()
    metrics = summary["final"]["metrics"]
    assert metrics["user:qa/squad_f1"] >= 0.9 and metrics["user:qa/squad_em"] >= 0.9, metrics

    model = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    out = predict(model, "qa", [{"question": "which colour is it", "context": "his green apple is on it"},
                                {"question": "which colour is it", "context": "that red"}])
    assert out.labels == ["green", "red"]
    assert [row["answer_start"] for row in out.rows()] == [4, 5] and all(0.5 < row["score"] <= 1.0 for row in out.rows())

    questions = _write(tmp_path / "questions.jsonl", [{"id": 7, "question": "which colour is it", "context": "a blue one"}])
    # mt predict and mt export run in this process (CliRunner: the same commands and output, no process start-up)
    csv_out = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), "-i", questions, "-f", "csv"])
    assert csv_out.exit_code == 0, csv_out.stderr
    header, row = csv_out.stdout.strip().splitlines()
    assert header == "idx,label,answer_start,score" and row.startswith("7,blue,2,")

    exported = CliRunner().invoke(app, ["export", str(tmp_path / "run"), str(tmp_path / "plain")])
    assert exported.exit_code == 0, exported.stderr
    assert "as BertForQuestionAnswering" in exported.stderr and "logits match" in exported.stderr
    readme = (tmp_path / "plain" / "README.md").read_text(encoding="utf-8")
    assert "- stride: 128" in readme and "- decoding: the context span with the best start + end logit" in readme
    plain = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "plain").eval()
    encoded = model.tokenizer(["which colour is it"], ["his green apple is on it"], return_tensors="pt")
    with torch.no_grad():
        theirs = plain(**encoded)
        ours = model("user:qa", **encoded).logits
    assert torch.allclose(torch.stack([theirs.start_logits, theirs.end_logits], -1), ours, atol=1e-5)


def test_padding_free_batches_give_the_padded_loss(tmp_path, qa_encoder):
    from mtcore.data import load_task_data
    from mtcore.data.collate import Collator
    from mtcore.model import MultitaskModel
    from mtcore.task import Source, Task

    task = Task(name="qa", kind="extractive_qa", sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    _write(tmp_path / "train.jsonl", _rows(6, 2))
    from transformers import AutoTokenizer

    model = MultitaskModel(str(qa_encoder), {"qa": task}).eval()
    tokenizer = AutoTokenizer.from_pretrained(qa_encoder)
    data = load_task_data(task, tokenizer, source="local", data_dir=tmp_path, splits=["train"], cache_dir=tmp_path / "cache")
    rows = [data.splits["train"][i] for i in range(6)]
    padded = Collator(tokenizer.pad_token_id, "extractive_qa")(rows)
    model.enable_padding_free()
    packed = Collator(tokenizer.pad_token_id, "extractive_qa", padding_free=True)(rows)
    with torch.no_grad():
        a, b = model("qa", **padded), model("qa", **packed)
    assert padded["labels"].shape == (6, 2)
    assert torch.allclose(a.loss, b.loss, atol=1e-5)


def test_the_sberquad_example_trains_offline_on_its_sample_and_reads_the_hub_layout(tmp_path, helpers, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from mtcore.cli.app import app

    env = helpers.subprocess_env()
    example = REPO / "examples" / "sberquad.yaml"
    first = yaml.safe_load(example.read_text())["tasks"][0]
    assert first["source"] == "hub" and first["define"]["sources"]["hub"]["path"] == "kuznetsoffandrey/sberquad"
    sample = REPO / "examples" / "data" / "sberquad"
    done = subprocess.run(helpers.mt_command("train", str(example), "tasks.0.source=local", f"tasks.0.data_dir={sample}",
                                             "encoder.path=null", "encoder.tiny=bert",
                                             "schedule.epochs=1", "--output-dir", str(tmp_path / "run")),
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["final"]["metrics"]) == {"user:sberquad/squad_f1", "user:sberquad/squad_em", "user:sberquad/loss"}

    hub = tmp_path / "sberquad-hub" / "data"  # the hub's Parquet layout: id, title, context, question, answers{text, answer_start}
    hub.mkdir(parents=True)
    for split, n in (("train", 6), ("validation", 3)):
        rows = [{"id": i, "title": "t", "context": "Город Тверь стоит на реке Волга.", "question": "На какой реке стоит Тверь?",
                 "answers": {"text": ["Волга"], "answer_start": [26]}} for i in range(n)]
        pq.write_table(pa.Table.from_pylist(rows), hub / f"{split}-00000-of-00001.parquet")
    monkeypatch.chdir(tmp_path)  # mt check in this process (CliRunner: the same command and output, no process start-up)
    checked = CliRunner().invoke(app, ["check", str(example), "encoder.path=null", "encoder.tiny=bert",
                                       f"tasks.0.define.sources.hub.path={hub.parent}"])
    assert checked.exit_code == 0, checked.stderr
    assert "│          6 │               3 │" in checked.stdout.replace("┃", "│")


def _long_rows(n: int, seed: int) -> list[dict]:
    """Contexts of 30-45 words, the colour anywhere: longer than one window of max_length 24."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILL) for _ in range(rng.randint(30, 45))]
        colour, at = rng.choice(COLOURS), rng.randrange(0, 46)
        at = min(at, len(words))
        words.insert(at, colour)
        start = len(" ".join(words[:at])) + (1 if at else 0)
        rows.append({"id": i, "question": "which colour is it", "context": " ".join(words), "answers": {"text": [colour], "answer_start": [start]}})
    return rows


def test_long_contexts_are_read_in_overlapping_windows(tmp_path, qa_encoder):
    from transformers import AutoTokenizer

    from mtcore import Trainer
    from mtcore.data import load_task_data
    from mtcore.model import MultitaskModel
    from mtcore.task import Source, Task

    tokenizer = AutoTokenizer.from_pretrained(qa_encoder)
    _write(tmp_path / "train.jsonl", _long_rows(12, 5))
    task = Task(name="qa", kind="extractive_qa", id_field="id", max_length=24,  # stride 128 > a window: halved to fit
                sources={"local": Source.local("jsonl", {"train": "train.jsonl"})})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CutAnswersWarning)  # every answer is in some window
        data = load_task_data(task, tokenizer, source="local", data_dir=tmp_path, splits=["train"], cache_dir=tmp_path / "cache")
    windows = list(data.splits["train"])
    assert len(windows) > 2 * 12 and sorted({w["example"] for w in windows}) == list(range(12))
    for example in range(12):
        mine = [w for w in windows if w["example"] == example]
        holding = [w for w in mine if w["labels"][0] > 0]
        assert holding and all(w["labels"] == [0, 0] for w in mine if w["labels"][0] <= 0)  # the others: "not here" ([CLS])
        first, last = holding[0]["labels"]
        assert tokenizer.decode(holding[0]["input_ids"][first:last + 1]) == mine[0]["answers"][0]
        assert len({w["idx"] for w in mine}) == 1
    from mtcore.sampling import MultitaskBatchSampler

    for name in ("proportional", "temperature", "annealed"):  # a task's size is its questions, not their windows (an audit)
        sampler = MultitaskBatchSampler({"qa": data}, "train", batch_size=4, sampler=name).sampler
        assert sampler.sizes == {"qa": 12}, name
    saved = MultitaskBatchSampler({"qa": data}, "train", batch_size=4).state_dict()
    saved["sampler"]["sizes"] = {"qa": len(windows)}  # what a run checkpointed before that wrote: it still resumes
    resumed = MultitaskBatchSampler({"qa": data}, "train", batch_size=4)
    with pytest.warns(UserWarning, match="counted its windows, not its questions"):
        resumed.load_state_dict(saved)
    assert resumed.sampler.sizes == {"qa": 12}

    config = _config(tmp_path, qa_encoder, schedule={"max_steps": 120})
    config["tasks"][0]["max_length"] = 24
    config["tasks"][0]["define"]["files"] = {"train": _write(tmp_path / "long_train.jsonl", _long_rows(64, 6)),
                                            "validation": _write(tmp_path / "long_val.jsonl", _long_rows(16, 7))}
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    metrics = summary["final"]["metrics"]
    assert metrics["user:qa/squad_em"] >= 0.8, metrics  # scored once per question, from its best window
    model = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    context = " ".join(["the"] * 35 + ["blue"] + ["a"] * 5)
    inputs = [{"question": "which colour is it", "context": context}, {"question": "which colour is it", "context": "my red"}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model.predict("qa", inputs)
    assert out.labels == ["blue", "red"] and out.rows()[0]["answer_start"] == context.index("blue") and len(out.idx) == 2
    assert not [w for w in caught if issubclass(w.category, CutAnswersWarning)]  # the windows read every context whole
    with warnings.catch_warnings(record=True) as caught:  # one window (stride 0): the long context is cut, and the user told
        warnings.simplefilter("always")
        from mtcore.predict.tasks import manifest_task

        model.predict(manifest_task(model, "user:qa").replace(stride=0), inputs)
    (cut,) = [w for w in caught if issubclass(w.category, CutAnswersWarning)]
    assert "1 of 2 rows have a context longer than max_length 24 allows, cut off" in str(cut.message)
    assert "set the task's stride (e.g. 128" in str(cut.message)


# ---- edges a user audit found -------------------------------------------------------------------
def test_a_batch_whose_answers_are_all_cut_off_trains_on_nothing_instead_of_crashing(tmp_path, qa_encoder):
    """Length grouping puts the longest rows, those whose answer max_length cut, in one batch: no labels, loss None."""
    from mtcore import Trainer

    rows = _long_rows(8, 3)
    for row in rows:  # the colour last: past a single window of 24 tokens
        words = row["context"].replace(row["answers"]["text"][0], "").split() + [row["answers"]["text"][0]]
        row["context"] = " ".join(words)
        row["answers"] = {"text": [words[-1]], "answer_start": [len(row["context"]) - len(words[-1])]}
    config = _config(tmp_path, qa_encoder, schedule={"max_steps": 3}, batching={"batch_size": 2})
    config["tasks"][0].update(max_length=24, stride=0)
    config["tasks"][0]["define"]["files"]["train"] = _write(tmp_path / "cut.jsonl", rows)
    with pytest.warns(CutAnswersWarning, match="8 of 8 rows have their answer in no window"):
        summary = Trainer(config, output_dir=tmp_path / "run").train()
    assert summary["steps"] == 3


def test_answer_edges_no_token_holds_and_combining_marks():
    from mtcore.data.answers import answer_span

    context = " Тверь стоит\u200b"  # a leading space and a trailing zero-width space belong to no token
    offsets = [[-1, -1], [1, 6], [7, 12], [-1, -1]]
    assert answer_span(offsets, 0, 6, context) == [1, 1]  # " Тверь"
    assert answer_span(offsets, 7, 13, context) == [2, 2]  # "стоит\u200b"
    assert answer_span(offsets, 0, 6) == [-100, -100]  # without the context: no trimming
    decomposed = "Лев Толстои\u0306 жил"  # an accent-stripping tokenizer's token ends before the breve
    assert span_text(decomposed, [[0, 3], [4, 11], [13, 16]], 1, 1) == ("Толстои\u0306", 4)


def test_answers_as_json_in_a_csv_cell_and_string_starts_in_squad_files(tmp_path):
    from mtcore.data.readers import iter_rows

    assert normalize_answers('{"text": ["red"], "answer_start": [4]}', "the red one") == {"text": ["red"], "answer_start": [4]}
    assert normalize_answers('[{"text": "one", "answer_start": 8}]', "the red one") == {"text": ["one"], "answer_start": [8]}
    with pytest.raises(ValueError, match="in a CSV file: that object as JSON text in the cell"):
        normalize_answers("red", "the red one")
    from mtcore.data.answers import has_answers

    assert not has_answers('{"text": [], "answer_start": []}') and not has_answers("  ") and has_answers('[{"text": "a"}]')
    document = {"data": [{"paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": 1, "question": "Where?", "answers": [{"text": "France", "answer_start": "12"}]},
        {"id": 2, "question": "What?", "answers": [{"text": "Paris", "answer_start": 0}]}]}]}]}
    (tmp_path / "train.json").write_text(json.dumps(document), encoding="utf-8")
    assert [row["answers"]["answer_start"] for _, row in iter_rows(tmp_path / "train.json")] == [[12], [0]]


def test_labels_and_truncation_are_refused_for_extractive_qa():
    from mtcore.errors import ConfigError
    from mtcore.task import Task

    with pytest.raises(ConfigError, match="extractive_qa tasks take no labels"):
        Task(name="qa", kind="extractive_qa", labels=("a", "b"))
    with pytest.raises(ConfigError, match="extractive_qa cuts only the context, into windows \\(stride\\); remove truncation 'only_first'"):
        Task(name="qa", kind="extractive_qa", truncation="only_first")


def test_the_longest_answer_is_a_head_option():
    from mtcore.data.answers import MAX_ANSWER_TOKENS, decode_spans, max_answer_tokens
    from mtcore.model.heads.extractive_qa import ExtractiveQAHead
    from mtcore.task import Task

    assert max_answer_tokens(Task(name="qa", kind="extractive_qa")) == MAX_ANSWER_TOKENS == 30
    assert max_answer_tokens(Task(name="qa", kind="extractive_qa", head_options={"max_answer_tokens": 2})) == 2
    with pytest.raises(ValueError, match="max_answer_tokens must be an integer >= 1, got 0"):
        ExtractiveQAHead(8, max_answer_tokens=0)
    logits = torch.tensor([[[0.0, 0.0], [5.0, 0.0], [0.0, 1.0], [0.0, 4.0]]])  # best: tokens 1..3; at most 2 tokens: 1..2
    rows = [{"offsets": [[-1, -1], [0, 1], [2, 3], [4, 5]], "context": "a b c"}]
    assert decode_spans(logits, rows)[0][:2] == (1, 3)
    assert decode_spans(logits, rows, 2)[0][:2] == (1, 2)


def test_candidates_restrict_the_answer_to_their_spans():
    """ReCoRD-style tasks (RuCoS) map ``candidates``: the answer is the best-scoring occurrence of one of them."""
    from mtcore.data.answers import NO_CANDIDATE_PENALTY, best_answer_span, candidate_spans

    context = "Ivan met Olga in Perm"
    offsets = [[-1, -1], [0, 4], [5, 8], [9, 13], [14, 16], [17, 21]]  # [CLS] Ivan met Olga in Perm
    start = [0.0, 1.0, 9.0, 2.0, 0.0, 0.5]
    end = [0.0, 1.0, 9.0, 0.0, 0.0, 3.0]  # the free best span is "met" (18.0)
    assert best_answer_span(start, end, {"offsets": offsets, "context": context})[:2] == (2, 2)
    row = {"offsets": offsets, "context": context, "candidates": ["Olga", "Perm", "Moscow"]}
    assert candidate_spans(context, offsets, row["candidates"]) == [(3, 3), (5, 5)]
    assert best_answer_span(start, end, row) == (5, 5, 3.5, 0.0)  # Perm 0.5 + 3.0 beats Olga 2.0 + 0.0; [CLS] scores 0.0
    assert best_answer_span(start, end, {**row, "candidates": []})[:2] == (2, 2)  # an empty list restricts nothing
    elsewhere = best_answer_span(start, end, {**row, "candidates": ["Moscow"]})  # none in this window: free span, far below
    assert elsewhere[:2] == (2, 2) and elsewhere[2] == 18.0 - NO_CANDIDATE_PENALTY


def test_a_candidates_column_only_in_extractive_qa():
    from mtcore.errors import ConfigError
    from mtcore.task import Task

    with pytest.raises(ConfigError, match="inputs maps 'candidates'.*only extractive_qa"):
        Task(name="t", kind="text_classification", labels=("a", "b"), inputs={"candidates": "entities"})
    assert Task(name="q", kind="extractive_qa", inputs={"candidates": "entities"}).input_map["candidates"] == "entities"


def test_a_saved_model_keeps_the_stride_and_candidates_it_trained_with():
    """mt predict --input (and a copied model folder) rebuild the task from the model's file: the windows
    and the answer candidates must be those of training, or predictions differ by command."""
    from mtcore.model.manifest import task_from_info, task_info
    from mtcore.task import Task

    task = Task(name="cloze", kind="extractive_qa", stride=32, max_length=128, inputs={"candidates": "entities"})
    rebuilt = task_from_info(json.loads(json.dumps(task_info(task))))
    assert rebuilt.stride == 32 and rebuilt.input_map["candidates"] == "entities"
    older = {k: v for k, v in task_info(task).items() if k != "stride"}  # a model saved before the stride was kept
    assert task_from_info(older).stride == Task(name="x", kind="extractive_qa").stride


# ---- questions the context does not answer (no_answer, SQuAD 2.0) -----------------------------------
def _mixed_rows(n: int, seed: int) -> list[dict]:
    """Half the questions have the context's colour as answer; in the other half no colour occurs (no answer)."""
    rows = _rows(n, seed)
    rng = random.Random(seed + 100)
    for row in rows[::2]:
        row["context"] = " ".join(rng.choice(FILL) for _ in range(rng.randint(4, 10)))
        row["answers"] = {"text": [], "answer_start": []}
    return rows


def test_squad2_scoring_of_no_answer():
    from mtcore.task import Task

    v2 = Task(name="q", kind="extractive_qa", no_answer=True)
    assert squad_f1(["", "red"], [[""], ["red"]], v2) == 1.0 and squad_em(["", "red"], [[""], ["red"]], v2) == 1.0
    assert squad_f1([""], [["red"]], v2) == 0.0 and squad_f1(["red"], [[""]], v2) == 0.0 and squad_em(["red"], [[""]], v2) == 0.0
    assert squad_f1([""], [["the", "red"]], v2) == 0.0  # "the" normalises to nothing: v2's script drops it, "red" is left
    assert squad_f1(["the"], [["the"]]) == 0.0 and squad_f1(["the"], [["the"]], v2) == 1.0  # v1.1's and v2's scripts differ here
    assert normalize_answers({"text": [""], "answer_start": [-1]}, "ctx", no_answer=True) == {"text": [""], "answer_start": [-1]}
    from mtcore.train.qa_metrics import squad_f1_has_answer, squad_f1_no_answer

    predictions, references = ["red", "", "", "blue"], [["red"], [""], [""], ["the green"]]
    assert squad_f1_has_answer(predictions, references, v2) == 0.5 and squad_f1_no_answer(predictions, references, v2) == 1.0
    assert squad_f1_no_answer(["red"], [["red"]], v2) != squad_f1_no_answer(["red"], [["red"]], v2)  # NaN: no such question
    # an answer that normalises to nothing ("the") still makes its question answerable, as in SQuAD 2.0's script
    assert squad_f1_has_answer(["x", ""], [["the"], [""]], v2) == 0.0 and squad_f1_no_answer(["x", ""], [["the"], [""]], v2) == 1.0
    assert normalize_answers({"text": [], "answer_start": []}, "ctx", no_answer=True) == {"text": [""], "answer_start": [-1]}
    with pytest.raises(ValueError, match="set the task's no_answer: true"):
        normalize_answers([], "ctx")


def test_no_answer_is_only_for_extractive_qa_and_saved_with_the_model():
    from mtcore.errors import ConfigError
    from mtcore.model.manifest import task_from_info, task_info
    from mtcore.task import Task

    with pytest.raises(ConfigError, match="no_answer .* is for extractive_qa tasks"):
        Task(name="t", kind="text_classification", labels=("a", "b"), no_answer=True)
    with pytest.raises(ConfigError, match="no_answer must be true or false, not 'false'"):
        Task(name="q", kind="extractive_qa", no_answer="false")
    assert task_from_info(json.loads(json.dumps(task_info(Task(name="q", kind="extractive_qa", no_answer=True))))).no_answer


def test_a_no_answer_task_learns_to_abstain(tmp_path, qa_encoder):
    from mtcore import Trainer
    from mtcore.model import MultitaskModel

    config = _config(tmp_path, qa_encoder, schedule={"max_steps": 160})
    config["tasks"][0]["define"]["no_answer"] = True
    config["tasks"][0]["define"]["metrics"] = ["squad_f1", "squad_em", "squad_f1_has_answer", "squad_f1_no_answer"]
    config["tasks"][0]["define"]["files"] = {"train": _write(tmp_path / "mixed_train.jsonl", _mixed_rows(96, 0)),
                                            "validation": _write(tmp_path / "mixed_val.jsonl", _mixed_rows(24, 1))}
    summary = Trainer(config, output_dir=tmp_path / "run").train()
    metrics = summary["final"]["metrics"]
    assert metrics["user:qa/squad_em"] >= 0.8, metrics  # answered and unanswerable questions both scored right
    assert metrics["user:qa/squad_f1_has_answer"] >= 0.6 and metrics["user:qa/squad_f1_no_answer"] >= 0.6, metrics
    model = MultitaskModel.from_pretrained(tmp_path / "run" / "model")
    out = model.predict("qa", [{"question": "which colour is it", "context": "my green one is on it"},
                               {"question": "which colour is it", "context": "this is my one on the"}])
    assert out.labels == ["green", ""] and out.rows()[1]["answer_start"] == -1


def test_candidates_are_whole_words_optional_per_row_and_json_text_in_csv(tmp_path):
    from mtcore.data.answers import candidate_spans
    from mtcore.data.task_data import load_raw
    from mtcore.data.prepare import prepare_split
    from mtcore.task import Source, Task

    context = "a Yorker met York"
    offsets = [[-1, -1], [0, 1], [2, 8], [9, 12], [13, 17]]
    assert candidate_spans(context, offsets, ["York"]) == [(4, 4)]  # not inside "Yorker"
    path = tmp_path / "train.csv"
    path.write_text('question,context,answers,ents\n'
                    'who met,Ivan met Olga,"{""text"": [""Olga""], ""answer_start"": [9]}","[""Ivan"", ""Olga""]"\n'
                    'who met,Ivan met Olga,"{""text"": [""Olga""], ""answer_start"": [9]}",\n', encoding="utf-8")
    task = Task(name="cloze", kind="extractive_qa", inputs={"candidates": "ents"},
                sources={"local": Source.local("csv", {"train": "train.csv"})})
    raw = load_raw(task, "local", data_dir=tmp_path, splits=("train",), cache_dir=tmp_path / "c")["train"]
    prepared = prepare_split(raw, task, "train", origin="t")
    assert prepared["candidates"] == [["Ivan", "Olga"], []]  # JSON text in a CSV cell; an empty cell: no restriction


def test_squad2_files_no_answer_cache_and_hints(tmp_path):
    """is_impossible must agree with the answers; a test file without answers stays unlabelled; the prepared
    cache depends on no_answer; an empty answers list without no_answer names the setting."""
    from mtcore.data.prepare import prepare_split
    from mtcore.data.readers import iter_rows
    from mtcore.data.task_data import load_raw
    from mtcore.errors import DataError
    from mtcore.task import Source, Task

    def document(qas):
        return {"data": [{"title": "T", "paragraphs": [{"context": "Ivan met Olga", "qas": qas}]}]}

    path = tmp_path / "train-v2.0.json"
    path.write_text(json.dumps(document([{"id": "a", "question": "who", "answers": [{"text": "Olga", "answer_start": 9}], "is_impossible": False},
                                         {"id": "b", "question": "why", "answers": [], "is_impossible": True}])), encoding="utf-8")
    (tmp_path / "test.json").write_text(json.dumps(document([{"id": "c", "question": "who"}])), encoding="utf-8")
    assert [r["answers"] for _, r in iter_rows(tmp_path / "test.json")] == [None]  # no answers key: unlabelled, not "no answer"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document([{"id": "d", "question": "who", "answers": [{"text": "Olga", "answer_start": 9}],
                                         "is_impossible": True}])), encoding="utf-8")
    with pytest.raises(DataError, match="bad.json: question 'd': is_impossible is True but it has 1 answers"):
        list(iter_rows(bad))

    def prepared(no_answer: bool):
        task = Task(name="q", kind="extractive_qa", no_answer=no_answer, sources={"local": Source.local("json", {"train": path.name})})
        raw = load_raw(task, "local", data_dir=tmp_path, splits=("train",), cache_dir=tmp_path / "c")["train"]
        return prepare_split(raw, task, "train", origin="t")

    assert prepared(True)["labels"][1] == {"text": [""], "answer_start": [-1]}
    with pytest.raises(DataError, match="set the task's no_answer: true"):  # the cache of the no_answer run is not reused
        prepared(False)


def test_a_stride_as_long_as_the_window_is_halved_before_tokenizers_panics(tmp_path):
    """RuCoS's long questions leave a 64-token window less context room than stride 16: tokenizers panicked (a Rust
    backtrace on stderr, and no mt message) where mtcore now shares half the room."""
    import yaml

    from clitools import run_mt

    config = tmp_path / "rucos.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2},
                                      "tasks": [{"id": "rsg:rucos", "source": "sample", "max_length": 64, "stride": 16}]}))
    result = run_mt("check", str(config), env={"HF_DATASETS_CACHE": str(tmp_path / "cache"), "RUST_BACKTRACE": "1"})
    assert result.returncode == 0 and "config ok" in result.stdout, result.stderr[-2000:]
    assert "panicked" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_a_rows_windows_do_not_depend_on_the_questions_tokenized_beside_it(tmp_path, qa_encoder):
    """The overlap was chosen per batch of rows, from its longest question: a long question next to a row changed that
    row's windows (another answer from mt predict -i than from the split; answers in no window)."""
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.task import Source, Task

    tokenizer = AutoTokenizer.from_pretrained(qa_encoder)
    rows = _long_rows(3, 11)
    long_question = {**rows[2], "id": 99, "question": " ".join(["which colour is it"] * 4)}  # leaves a 24-token window little room

    def windows(chosen: list[dict], name: str) -> dict[int, list]:
        _write(tmp_path / f"{name}.jsonl", chosen)
        task = Task(name="qa", kind="extractive_qa", id_field="id", max_length=24, stride=8,
                    sources={"local": Source.local("jsonl", {"train": f"{name}.jsonl"})})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_task_data(task, tokenizer, source="local", data_dir=tmp_path, splits=["train"], cache_dir=tmp_path / "cache")
        found: dict[int, list] = {}
        for window in data.splits["train"]:
            found.setdefault(window["idx"], []).append((window["input_ids"], window["labels"]))
        return found

    alone, beside = windows(rows, "alone"), windows([*rows, long_question], "beside")
    assert all(alone[i] == beside[i] for i in range(3)), "a row's windows changed with the rows beside it"
    assert len(beside[99]) >= 1 and all(len(alone[i]) > 1 for i in range(3))
