"""A bare task id whose only readable source is its plugin's sample says so: results on it are a demo's."""

from __future__ import annotations

from pathlib import Path

from mtcore import Trainer


def _notes(run: Path, helpers) -> list[str]:
    return next(e for e in helpers.read_events(run) if e["event"] == "start")["notes"]


def test_a_bare_id_that_falls_back_to_the_sample_gets_a_note_an_explicit_source_none(tmp_path: Path, make_config, helpers):
    Trainer(make_config(tasks=["nli:nli"], schedule={"max_steps": 1}), output_dir=tmp_path / "bare").train()
    [note] = [n for n in _notes(tmp_path / "bare", helpers) if "sample" in n]
    assert note == ("task 'nli:nli' reads the sample its plugin ships (60 train rows): it has no hub source and no data_dir was "
                    "given; set source: local and data_dir for your files")
    Trainer(make_config(tasks=[{"id": "nli:nli", "source": "sample"}], schedule={"max_steps": 1}), output_dir=tmp_path / "asked").train()
    assert not [n for n in _notes(tmp_path / "asked", helpers) if "sample" in n]
