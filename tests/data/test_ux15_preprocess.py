"""A preprocessing step that raises is named ('module:function') with its row, and MT_DEBUG=1 shows
the step's own traceback (the line of the user's code), not only mtcore's."""

from __future__ import annotations

import yaml
from clitools import run_mt

STEP = '''
def clean_row(row):
    row["review"] = row["comment_txt"].lower()
    return row
'''
ROWS = '{"review": "Lovely tea", "label": "positive"}\n{"review": "Awful", "label": "negative"}\n'


def test_a_crashing_preprocessing_step_is_named_and_mt_debug_shows_its_traceback(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "ux15_prep.py").write_text(STEP)
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text(ROWS)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"encoder": {"tiny": "bert"}, "schedule": {"max_steps": 2}, "tasks": [{"define": {
        "name": "reviews", "kind": "text_classification", "labels": ["negative", "positive"], "inputs": {"text": "review"},
        "preprocess": ["ux15_prep:clean_row"], "files": {"train": "train.jsonl", "validation": "validation.jsonl"}}}]}))

    plain = run_mt("check", str(config), plugin_path=tmp_path / "code")
    line = plain.stderr.strip()
    assert plain.returncode == 1 and len(line.splitlines()) == 1, plain.stderr
    assert "train.jsonl row 1: preprocessing step ux15_prep:clean_row failed with KeyError: comment_txt" in line, line
    assert "(MT_DEBUG=1 shows its traceback)" in line, line

    debug = run_mt("check", str(config), plugin_path=tmp_path / "code", env={"MT_DEBUG": "1"})
    assert debug.returncode != 0
    assert "traceback of preprocessing step ux15_prep:clean_row:" in debug.stderr, debug.stderr
    assert 'ux15_prep.py", line 3, in clean_row' in debug.stderr, debug.stderr
    assert "(its traceback is above)" in debug.stderr
