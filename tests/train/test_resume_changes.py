"""``--resume`` with a changed evaluation / checkpoint schedule (:data:`mtcore.train.config_io.RESUMABLE_CHANGES`)
trains bit-identically to the uninterrupted run: these settings move no optimizer step, batch or RNG stream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mtcore import Trainer
from mtcore.errors import ConfigError
from mtcore.train.monitor import NonFiniteLossError

CHANGES = ["evaluation.every=3", "evaluation.at_end=false", "evaluation.early_stopping_patience=50", "checkpoint.every=5",
           "batching.eval_batch_size=3", "checkpoint.best_to_model=true", "debug.inject_nan_at_step=null"]


def _config(make_config, **debug):
    return make_config(schedule={"max_steps": 12, "warmup_steps": 2}, evaluation={"every": 4, "at_end": True},
                       checkpoint={"every": 4, "keep_last": 5, "at_end": True}, debug=debug)


def test_a_resume_that_evaluates_and_checkpoints_differently_trains_bit_identically(tmp_path: Path, make_config, helpers):
    from safetensors.torch import load_file

    Trainer(_config(make_config), output_dir=tmp_path / "straight").train()
    with pytest.raises(NonFiniteLossError):  # a crash after the checkpoint of step 4
        Trainer(_config(make_config, inject_nan_at_step=7), output_dir=tmp_path / "crashed").train()
    summary = Trainer(_config(make_config, inject_nan_at_step=7), output_dir=tmp_path / "crashed", resume=True, overrides=CHANGES).train()
    assert summary["resumed_from"].endswith("step-000004") and summary["steps"] == 12

    def weights(run: str) -> dict[str, torch.Tensor]:  # the final checkpoint: model/ is the best one in the resumed run
        return load_file(str(tmp_path / run / "checkpoints" / "step-000012" / "model.safetensors"))

    straight, resumed = weights("straight"), weights("crashed")
    assert straight.keys() == resumed.keys() and len(straight) > 10
    assert [name for name in straight if not torch.equal(straight[name], resumed[name])] == []

    def losses(run: str) -> list:
        return [(e["step"], e["task"], e["loss"]) for e in helpers.read_events(tmp_path / run) if e["event"] == "train"]

    def eval_steps(run: str) -> list:
        return [e["step"] for e in helpers.read_events(tmp_path / run) if e["event"] == "eval"]

    assert losses("crashed") == losses("straight") and losses("straight")
    assert eval_steps("straight") == [4, 8, 12] and eval_steps("crashed") == [4, 6, 9, 12]  # the new schedule was used
    kept = {p.name for p in (tmp_path / "crashed" / "checkpoints").glob("step-*")}
    assert {"step-000005", "step-000010", "step-000012"} <= kept and "step-000008" not in kept  # and the new checkpoint schedule


def test_a_resume_that_changes_the_training_is_still_refused_in_one_line(tmp_path: Path, make_config):
    Trainer(_config(make_config), output_dir=tmp_path / "run").train()
    (tmp_path / "run" / "summary.json").unlink()  # as if it had stopped
    with pytest.raises(ConfigError, match=r"^cannot resume .*: config key 'batching.batch_size' changed \(8 -> 4\); resume with"):
        Trainer(_config(make_config), output_dir=tmp_path / "run", resume=True, overrides=["batching.batch_size=4"]).train()
    with pytest.raises(ConfigError, match=r"config key 'evaluation.split' changed"):
        Trainer(_config(make_config), output_dir=tmp_path / "run", resume=True, overrides=["evaluation.split=train"]).train()


def test_a_resume_whose_training_data_were_edited_warns_naming_the_task(tmp_path: Path, make_config):
    """A label edited in a task's file (the same rows and texts: nothing else notices) was resumed silently; the checkpoint
    records each task's data fingerprint and a resume with other data warns, naming the task, and goes on."""
    import json
    import shutil
    import warnings

    tasks = make_config()["tasks"]
    folder = tmp_path / "data"
    folder.mkdir()
    for task in tasks:  # copies: the shared synthetic files stay as they are
        for split, path in task["define"]["files"].items():
            copy = folder / Path(path).name
            shutil.copy(path, copy)
            task["define"]["files"][split] = str(copy)
    config = make_config(tasks=tasks, schedule={"max_steps": 6, "warmup_steps": 1}, checkpoint={"every": 3, "keep_last": 2, "at_end": False})

    def resumed(run: str) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert Trainer(config, output_dir=tmp_path / run, resume=True).train()["steps"] == 6
        return [str(w.message) for w in caught if "other training data" in str(w.message)]

    for run in ("same", "edited"):  # crashes after the checkpoint of step 3
        with pytest.raises(NonFiniteLossError):
            Trainer({**config, "debug": {"inject_nan_at_step": 5}}, output_dir=tmp_path / run).train()
    state = json.loads((tmp_path / "same" / "checkpoints" / "step-000003" / "state.json").read_text(encoding="utf-8"))
    assert set(state["task_rows"]) == {"user:sent", "user:pair", "user:mc"}
    for path in folder.iterdir():  # new times and a chmod round trip: the same rows (the cache key changes, not the digest)
        os.utime(path, (1e9, 1e9))
        path.chmod(0o444)
        path.chmod(0o644)
    assert resumed("same") == []
    train_file = Path(tasks[0]["define"]["files"]["train"])
    rows = [json.loads(line) for line in train_file.read_text(encoding="utf-8").splitlines()]
    rows[0]["label"] = "positive" if rows[0]["label"] == "negative" else "negative"  # one label, the same text
    train_file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    found = resumed("edited")
    assert len(found) == 1 and ": user:sent (its files were edited" in found[0], found


def test_a_checkpoint_of_the_earlier_record_is_not_compared_with_the_row_digests(tmp_path):
    """Checkpoints written before the digests recorded datasets' fingerprints under task_data: every task "changed"."""
    import warnings

    import datasets

    from mtcore.train.checkpoint_checks import check_task_data, task_rows

    class Data:
        splits = {"train": datasets.Dataset.from_dict({"input_ids": [[1, 2], [3]], "labels": [0, 1]})}

    class Sampler:
        split, data = "train", {"user:a": Data()}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_task_data(tmp_path, Sampler(), {"task_data": {"user:a": "0123456789abcdef"}})  # the earlier record: not compared
        check_task_data(tmp_path, Sampler(), {"task_rows": task_rows(Sampler())})
        assert not caught
        check_task_data(tmp_path, Sampler(), {"task_rows": {"user:a": "0" * 32}})
    assert len(caught) == 1 and "user:a" in str(caught[0].message)
