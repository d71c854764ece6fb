"""A standard output whose encoding lacks a character (``PYTHONIOENCODING=ascii``, a latin-1 locale, a redirected
Windows console) stopped training at its first progress line naming a Cyrillic task ("unexpected UnicodeEncodeError"),
and ``mt compare`` / ``mt evaluate`` always (their titles' ’ and —). Display lines escape what the encoding lacks;
data (``--json``, predictions) is UTF-8, as the files mt writes are."""

from __future__ import annotations

import json
import subprocess

from clitools import MT, clean_env


def _mt(*args: str) -> subprocess.CompletedProcess:
    env = clean_env(PYTHONIOENCODING="ascii", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([MT, *args], capture_output=True, env=env, timeout=300)  # bytes: what reaches the terminal


def test_an_ascii_stdout_escapes_display_lines_and_gets_data_in_utf8(tmp_path):
    rows = [{"text": f"{word} {i}", "label": label} for i in range(8) for word, label in (("хорошо", "pos"), ("плохо", "neg"))]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text("encoder: {tiny: bert}\nschedule: {max_steps: 2}\nlogging: {every: 1, progress: plain, plot: false}\n"
                      "checkpoint: {every: null}\ntasks:\n  - define: {name: отзывы, kind: text_classification, labels: [pos, neg], "
                      "files: {train: train.jsonl, validation: train.jsonl}}\n", encoding="utf-8")
    run = tmp_path / "run"
    trained = _mt("train", str(config), "--output-dir", str(run))
    assert trained.returncode == 0, trained.stderr.decode()
    assert b"step 1/2: user:\\u043e\\u0442\\u0437\\u044b\\u0432\\u044b loss " in trained.stdout
    for command in (["compare", str(run)], ["evaluate", str(run)]):
        shown = _mt(*command)
        assert shown.returncode == 0 and b"user:\\u043e" in shown.stdout, shown.stderr.decode()
    scored = _mt("evaluate", str(run), "--json")
    assert scored.returncode == 0, scored.stderr.decode()
    assert "user:отзывы/accuracy" in json.loads(scored.stdout.decode("utf-8"))["metrics"]
    predicted = _mt("predict", str(run), "--split", "validation")
    assert predicted.returncode == 0, predicted.stderr.decode()
    assert [json.loads(line)["label"] in ("pos", "neg") for line in predicted.stdout.decode("utf-8").splitlines()] == [True] * 16
