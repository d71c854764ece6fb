"""``mt predict --input`` from pipes: ``/dev/stdin``, ``<(...)`` and named pipes can be read once only, so they are
copied like ``-``; standard input is decoded as UTF-8 whatever the terminal's encoding (a paths audit: they gave
0 predictions with exit 0, hung, or predicted on mojibake)."""

from __future__ import annotations

import json
import os
import subprocess
import threading

from clitools import MT, clean_env

ROWS = [{"premise": "Кошка спит.", "hypothesis": "Животное отдыхает."}, {"premise": "Идёт дождь.", "hypothesis": "Сухо."}]
TEXT = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS)


def _predict(run, source, *, data=None, stdin=None, **env):
    done = subprocess.run([MT, "predict", str(run), "--task", "rsg:terra", "-i", source], input=data, stdin=stdin, capture_output=True,
                          env=clean_env(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **env), timeout=180)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]


def test_pipes_and_stdin_in_any_terminal_encoding_predict_what_the_file_predicts(trained_run, tmp_path):
    (tmp_path / "in.jsonl").write_text(TEXT, encoding="utf-8")
    expected = _predict(trained_run, str(tmp_path / "in.jsonl"))
    assert len(expected) == 2
    assert _predict(trained_run, "/dev/stdin", data=TEXT.encode()) == expected
    with open(tmp_path / "in.jsonl", "rb") as redirected:  # /dev/stdin < in.jsonl: a regular file named 'stdin'
        assert _predict(trained_run, "/dev/stdin", stdin=redirected) == expected
    for encoding in ("ascii", "latin-1"):
        assert _predict(trained_run, "-", data=("\ufeff" + TEXT).encode("utf-8"), PYTHONIOENCODING=encoding) == expected
    fifo = tmp_path / "rows.jsonl"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(TEXT, encoding="utf-8"))
    writer.start()
    try:
        assert _predict(trained_run, str(fifo)) == expected
    finally:
        writer.join(timeout=60)
