"""Resume findings of an audit: the last step's evaluation logged once after a crash before summary.json; a state.json
without its step, an edited sampler.json, a checkpoint folder given as the output directory; the override hint for keys
that are task ids."""

from __future__ import annotations

import json
import shutil

import pytest

from mtcore.errors import ConfigError, ModelFileError


@pytest.fixture(scope="module")
def finished(tmp_path_factory, shared_make_config):
    from mtcore import Trainer

    config = shared_make_config(schedule={"max_steps": 4, "warmup_steps": 1}, checkpoint={"every": 2, "keep_last": 10},
                                evaluation={"every": None, "at_end": True}, logging={"every": 2, "progress": "none", "plot": False})
    root = tmp_path_factory.mktemp("resume") / "run"
    Trainer(config, output_dir=root).train()
    return config, root


def _copy(finished, tmp_path):
    config, root = finished
    run = tmp_path / "run"
    shutil.copytree(root, run)
    (run / "config.yaml").write_text((root / "config.yaml").read_text().replace(str(root), str(run)))
    return config, run


def _events(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_a_run_killed_after_its_last_checkpoint_logs_the_final_evaluation_once(finished, tmp_path):
    """The last checkpoint is written before the end's evaluation: resuming from it evaluated again, and metrics.jsonl held
    two eval events for the last step."""
    from mtcore import Trainer

    config, run = _copy(finished, tmp_path)
    shutil.rmtree(run / "model")
    (run / "summary.json").unlink()
    assert [e["step"] for e in _events(run) if e["event"] == "eval"] == [4]
    Trainer(config, output_dir=run, resume=True).train()
    assert [e["step"] for e in _events(run) if e["event"] == "eval"] == [4]
    assert (run / "summary.json").is_file()


@pytest.mark.parametrize(("name", "edit", "said"), [
    ("state.json", lambda d: d.pop("step"), "has no step"),
    ("sampler.json", lambda d: d.pop("epoch"), "has no epoch"),
    ("sampler.json", lambda d: d.update(epoch=-1), "epoch is '-1', not a whole number >= 0"),
    ("sampler.json", lambda d: d.update(sampler="x"), "sampler is 'x', not a mapping"),
    ("sampler.json", lambda d: d.update(rows="x"), "rows is 'x', not a mapping"),
    ("sampler.json", lambda d: d.clear(), "has no epoch"),
    ("sampler.json", lambda d: d.update(sampler={"name": "proportional"}), "its sampler state does not load"),
])
def test_an_edited_state_or_sampler_file_is_one_line_naming_it(finished, tmp_path, name, edit, said):
    """A state.json without step resumed at step 0 on the later weights; an edited sampler.json was 'unexpected KeyError'."""
    from mtcore import Trainer

    config, run = _copy(finished, tmp_path)
    shutil.rmtree(run / "model")
    (run / "summary.json").unlink()
    path = run / "checkpoints" / "step-000004" / name
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=rf"checkpoint file '{path}': {said}.*delete the checkpoint or resume from an earlier one"):
        Trainer(config, output_dir=run, resume=True).train()


def test_a_checkpoint_folder_as_the_output_directory_is_refused_with_the_command_that_continues_its_run(finished, tmp_path):
    """The path a preemption prints, pasted as --output-dir: a whole new run was written into the other run's checkpoint."""
    from mtcore import Trainer

    config, run = _copy(finished, tmp_path)
    checkpoint = run / "checkpoints" / "step-000002"
    before = sorted(p.name for p in checkpoint.iterdir())
    for resume in (False, True):
        with pytest.raises(ConfigError, match=rf"is a checkpoint of the run in {run}, not a run directory; to continue that run: "
                                              rf"mt train {run / 'config.yaml'} --resume"):
            Trainer(config, output_dir=checkpoint, resume=resume).train()
    assert sorted(p.name for p in checkpoint.iterdir()) == before
    with pytest.raises(ConfigError, match=rf"holds the checkpoints of the run in {run}, not a run directory; to continue"):
        Trainer(config, output_dir=run / "checkpoints", resume=True).train()  # the folder above a checkpoint, too


def test_the_space_after_the_colon_hint_keeps_a_task_id_whole(shared_make_config):
    from mtcore.train.config_io import load_config

    with pytest.raises(ConfigError, match=r"put a space after the colon \(rsg:terra: 2\)"):
        load_config(shared_make_config(), ["loss.weights={rsg:terra:2}"])
