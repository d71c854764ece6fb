"""CoNLL column files (one token per line, a blank line between sentences): read as one row per
sentence, for token classification, through the reader, a defined task and a real training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.data.readers import iter_rows
from mtcore.errors import ConfigError, DataError

CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


def test_conll_2003_reads_one_row_per_sentence_with_the_line_it_starts_on(tmp_path):
    path = tmp_path / "eng.train.conll"
    path.write_text(CONLL_2003, encoding="utf-8")
    rows = list(iter_rows(path, columns=["tokens", "pos", None, "label"]))
    assert [number for number, _ in rows] == [3, 9, 14]
    assert rows[0][1] == {"tokens": ["EU", "rejects", "German", "call", "."], "pos": ["NNP", "VBZ", "JJ", "NN", "."],
                          "label": ["B-ORG", "O", "B-MISC", "O", "O"]}
    assert rows[2][1]["label"] == ["B-LOC", "O"]  # a sentence at the end of the file without a blank line after it
    default = list(iter_rows(path))[1][1]  # first column tokens, last label, those between by number
    assert default == {"tokens": ["Peter", "Blackburn"], "column_2": ["NNP", "NNP"], "column_3": ["B-NP", "I-NP"], "label": ["B-PER", "I-PER"]}


def test_tabs_comments_crlf_and_compressed_files(tmp_path):
    import gzip

    text = "# id 1\r\nНовый\tO\r\nУренгой\tB-LOC\r\n\r\n# id 2\r\nВ Москве\tB-LOC\r\n"
    path = tmp_path / "train.iob.gz"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    rows = [row for _, row in iter_rows(path, sep="\t", comment="#")]
    assert rows == [{"tokens": ["Новый", "Уренгой"], "label": ["O", "B-LOC"]}, {"tokens": ["В Москве"], "label": ["B-LOC"]}]


def test_tab_separated_files_with_stray_spaces_and_a_space_written_docstart(tmp_path):
    """With sep "\t", a trailing space stayed in the tag ('B-PER ' is not a label), a trailing tab made an
    empty third column, and '-DOCSTART- -X- -X- O' written with spaces became a one-column token."""
    path = tmp_path / "train.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\nJohn\tB-PER \nNew York\tB-LOC\t\n  lives \t O\n", encoding="utf-8")
    rows = [row for _, row in iter_rows(path, sep="\t")]
    assert rows == [{"tokens": ["John", "New York", "lives"], "label": ["B-PER", "B-LOC", "O"]}]


def test_mistakes_are_one_line_naming_the_file_and_the_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU B-ORG\nrejects\nGerman B-MISC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.conll row 2: 1 columns where the file's lines have 2 \('rejects'\)"):
        list(iter_rows(path))
    path.write_text("EU NNP B-ORG\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"its lines have 3 columns, and the reader option columns names 2"):
        list(iter_rows(path, columns=["tokens", "label"]))
    with pytest.raises(ConfigError, match="columns names a column twice"):
        list(iter_rows(path, columns=["tokens", "label", "label"]))
    with pytest.raises(ConfigError, match=r"unknown conll reader option 'delimiter' \(did you mean 'sep'\?\)"):
        list(iter_rows(path, delimiter="\t"))
    with pytest.raises(ConfigError, match="unknown data format 'conl' .*did you mean 'conll'"):
        list(iter_rows(path, format="conl"))


def _sentences(n: int, seed: int) -> str:
    import random

    rng = random.Random(seed)
    fill, names = ["we", "saw", "a", "man", "in", "the", "park", "today"], ["anna", "boris", "vera"]
    blocks = []
    for _ in range(n):
        words = [(w, "O") for w in rng.sample(fill, 4)]
        at = rng.randrange(len(words) + 1)
        words.insert(at, (rng.choice(names), "B-PER"))
        blocks.append("\n".join(f"{w} {t}" for w, t in words))
    return "\n\n".join(blocks) + "\n"


def test_a_defined_ner_task_trains_on_conll_files_from_the_cli(tmp_path, monkeypatch):
    from mtcore.cli.app import app
    from mtcore.testing import build_tiny_encoder

    monkeypatch.chdir(tmp_path)
    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words="we saw a man in the park today anna boris vera".split(),
                                 hidden_size=32, num_layers=1, num_heads=2)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.conll").write_text(_sentences(48, 0), encoding="utf-8")
    (tmp_path / "data" / "dev.conll").write_text(_sentences(16, 1), encoding="utf-8")
    config = {"encoder": {"path": str(encoder)}, "schedule": {"max_steps": 40, "warmup_steps": 0}, "optimizer": {"lr": 5e-3},
              "tasks": [{"define": {"name": "ner", "kind": "token_classification", "labels": ["O", "B-PER"],
                                    "files": {"train": "data/train.conll", "validation": "data/dev.conll"},
                                    "metrics": ["f1_entity", "token_accuracy"]}}],
              "batching": {"batch_size": 8}, "evaluation": {"every": None, "at_end": True},
              "logging": {"progress": "none", "plot": False}, "checkpoint": {"every": None}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "run.yaml", "--output-dir", "run"])
    assert result.exit_code == 0, result.output
    summary = json.loads(Path("run/summary.json").read_text(encoding="utf-8"))
    assert summary["final"]["metrics"]["user:ner/f1_entity"] >= 0.9, summary["final"]["metrics"]  # names are easy to find

    (tmp_path / "data" / "dev.conll").write_text(_sentences(4, 2).replace("B-PER", "B-PRE", 1), encoding="utf-8")
    checked = CliRunner().invoke(app, ["check", "run.yaml"])
    assert checked.exit_code == 1 and "data/dev.conll row 1" in checked.output and "'B-PRE'" in checked.output, checked.output


def test_the_ner_example_trains_offline_on_its_conll_2003_layout_sample_and_predicts_the_test_split(tmp_path, monkeypatch):
    """``mt train`` runs in a process of its own (offline, a cache of its own); the ``mt predict`` commands in this
    process (CliRunner: the same command and output; no process start-up each), with that cache too."""
    import subprocess
    import sys

    import datasets

    from mtcore.cli.app import app

    repo = Path(__file__).resolve().parents[2]
    example, sample = repo / "examples" / "ner_conll.yaml", repo / "examples" / "data" / "conll2003"
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    mt = [sys.executable, "-m", "mtcore.cli.app"]
    done = subprocess.run([*mt, "train", str(example), f"tasks.0.data_dir={sample}", "encoder.path=null", "encoder.tiny=bert",
                           "schedule.epochs=null", "schedule.max_steps=8", "batching.batch_size=8", "--output-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["final"]["metrics"]
    assert set(metrics) == {"user:conll2003/f1_entity", "user:conll2003/token_accuracy", "user:conll2003/loss"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    (tmp_path / "test").mkdir()  # CoNLL-2003's test file in the same layout
    (tmp_path / "test" / "eng.testb").write_text(CONLL_2003, encoding="utf-8")
    for name in ("eng.train", "eng.testa"):
        (tmp_path / "test" / name).write_text((sample / name).read_text(encoding="utf-8"), encoding="utf-8")
    predicted = runner.invoke(app, ["predict", str(tmp_path / "run"), "--split", "test", "--source", "local", "--data-dir", str(tmp_path / "test")])
    assert predicted.exit_code == 0, predicted.output[-2000:]
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [len(row["label"]) for row in rows] == [5, 2, 2]  # one tag per word of each test sentence
    (tmp_path / "new.conll").write_text("Peter\nBlackburn\nvisited\nMoscow\n\nEU\nrejects\n", encoding="utf-8")  # tokens only
    given = runner.invoke(app, ["predict", str(tmp_path / "run"), "-i", str(tmp_path / "new.conll")])
    assert given.exit_code == 0, given.output[-2000:]
    assert [len(json.loads(line)["label"]) for line in given.stdout.splitlines()] == [4, 2]
    assert [json.loads(line)["tokens"] for line in given.stdout.splitlines()] == [["Peter", "Blackburn", "visited", "Moscow"], ["EU", "rejects"]]
    as_conll = runner.invoke(app, ["predict", str(tmp_path / "run"), "-i", str(tmp_path / "new.conll"), "--format", "conll",
                                   "-o", str(tmp_path / "out" / "pred.conll")])
    assert as_conll.exit_code == 0, as_conll.output[-2000:]
    sentences = (tmp_path / "out" / "pred.conll").read_text(encoding="utf-8").split("\n\n")
    assert [[line.split("\t")[0] for line in s.splitlines()] for s in sentences if s.strip()] == [
        ["Peter", "Blackburn", "visited", "Moscow"], ["EU", "rejects"]]
    tags = {line.split("\t")[1] for s in sentences for line in s.splitlines()}
    assert tags <= set(yaml.safe_load(example.read_text())["tasks"][0]["define"]["labels"])
    # every token task into a folder: a file per task (the writer was given the folder's own path: "Directory not empty")
    every = runner.invoke(app, ["predict", str(tmp_path / "run"), "--task", "all", "--split", "test", "--source", "local",
                                "--data-dir", str(tmp_path / "test"), "--format", "conll", "-o", str(tmp_path / "all")])
    assert every.exit_code == 0, every.output[-2000:]
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["user_conll2003.conll"]
    assert [len(s.splitlines()) for s in (tmp_path / "all" / "user_conll2003.conll").read_text(encoding="utf-8").split("\n\n")
            if s.strip()] == [5, 2, 2]


def test_predict_reads_a_conll_input_with_the_task_s_separator_and_comments(tmp_path, monkeypatch):
    """mt predict -i x.conll ignored the task's reader options: a MultiCoNER '# id' line became a word
    (a sentence of 3 words got 4 labels, exit 0) and a tab-separated token with a space broke the columns."""
    from mtcore.cli.app import app
    from mtcore.testing import build_tiny_encoder

    monkeypatch.chdir(tmp_path)
    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words="new york anna lives in".split(), hidden_size=16, num_layers=1, num_heads=2)
    (tmp_path / "train.conll").write_text("# id 1\nAnna\tB-PER\nlives\tO\nin\tO\nNew York\tB-LOC\n\n" * 6, encoding="utf-8")
    config = {"encoder": {"path": str(encoder)}, "schedule": {"max_steps": 2}, "evaluation": {"at_end": False},
              "tasks": [{"define": {"name": "ner", "kind": "token_classification", "labels": ["O", "B-PER", "B-LOC"],
                                    "files": {"train": "train.conll"}, "reader": {"sep": "\t", "comment": "# id"}}}],
              "logging": {"progress": "none", "plot": False}, "checkpoint": {"every": None}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["train", "run.yaml", "--output-dir", "run"]).exit_code == 0
    (tmp_path / "new.txt").write_text("# id 9\nAnna\nlives in\nNew York\n", encoding="utf-8")  # tokens only, a tab-less layout
    result = runner.invoke(app, ["predict", "run", "-i", "new.txt", "--input-format", "conll"])
    assert result.exit_code == 0, result.output
    assert [len(json.loads(line)["label"]) for line in result.stdout.splitlines()] == [3]  # the comment is no word


def test_the_conll_writer_refuses_a_task_that_is_not_token_classification(tmp_path):
    from mtcore.errors import UsageError
    from mtcore.predict.writers import write_conll
    from mtcore.task import Task

    with pytest.raises(UsageError, match="--format conll writes a word and its tag per line: task 'q' is extractive_qa"):
        write_conll(Task(name="q", kind="extractive_qa"), [], tmp_path / "x.conll")
    assert not (tmp_path / "x.conll").exists()


def test_words_alone_keep_a_word_that_starts_like_a_comment(tmp_path):
    """Predict input of one column: ``#hash`` is a word (it vanished, shifting later rows); ``# id 7`` stays a comment."""
    from mtcore.data.conll import input_rows

    path = tmp_path / "words.conll"
    path.write_text("# id 7\ngood\n#hash\n\n# id 8\nbad\nmovie\n", encoding="utf-8")
    rows = [row for _, row in input_rows(path, tokens="words", sep="\t", columns=[None, "words", "pos", "label"], comment="#")]
    assert rows == [{"words": ["good", "#hash"]}, {"words": ["bad", "movie"]}]
