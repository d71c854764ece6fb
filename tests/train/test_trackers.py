"""Experiment trackers (``logging.trackers``): what TensorBoard and W&B (offline) get, where their
files go, resume, start failures, the process group, the refusal of a tracker that is not installed.

The W&B tests skip when ``wandb`` is not installed; they run it offline, with every W&B folder
in the test's temporary directory (nothing in the home folder, no network).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mtcore import Trainer
from mtcore.errors import ConfigError, MtError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch) -> Any:
    """``wandb`` (skipped when not installed), offline; the current folder is ``tmp_path/cwd``."""
    wandb = pytest.importorskip("wandb")
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true", "WANDB_DISABLE_CODE": "true",
                        "WANDB_X_DISABLE_STATS": "true", "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
                        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"), "WANDB_DATA_DIR": str(tmp_path / "wandb-data")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    yield wandb
    assert wandb.run is None, "a W&B run was left open"
    wandb.teardown()  # stop the W&B service process this test started


def wandb_history(path: Path, wait_s: float = 20.0) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """:func:`read_wandb_file`, once the file holds its run and exit records: W&B's service process writes
    it, and on a loaded machine the last records may land a moment after ``finish()`` returns."""
    deadline = time.monotonic() + wait_s
    while True:
        run, rows, config = read_wandb_file(path)
        if ("project" in run and "exit_code" in run) or time.monotonic() > deadline:
            return run, rows, config
        time.sleep(0.2)


def read_wandb_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The run record, the logged rows and the config of an offline ``.wandb`` file (LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, pending, run, rows, config = 7, b"", {}, [], {}
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk  # FULL, FIRST; MIDDLE, LAST
        if kind not in (1, 4):
            continue
        record = pb.Record()
        record.ParseFromString(pending)
        which = record.WhichOneof("record_type")
        if which == "run":
            run = {"id": record.run.run_id, "project": record.run.project, "name": record.run.display_name, "group": record.run.run_group}
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif which == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif which == "exit":
            run["exit_code"] = record.exit.exit_code
        elif which == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return run, rows, config


def wandb_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def tensorboard_scalars(folder: Path) -> dict[str, list[int]]:
    """The steps of each scalar as TensorBoard shows them (all event files of the folder, purges applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def steps_of(rows: list[dict[str, Any]], key: str) -> list[int]:
    return [row["_step"] for row in rows if key in row]


def tracked(make_config, trackers: list[str], **sections: Any) -> dict[str, Any]:
    return make_config(**{"logging": {"every": 1, "progress": "none", "plot": False, "trackers": trackers, "project": "proj"},
                          "schedule": {"max_steps": 6, "warmup_steps": 1}, "evaluation": {"every": 2, "at_end": True},
                          "checkpoint": {"every": 3, "keep_last": 3}, **sections})


def test_wandb_offline_gets_every_key_at_its_step_and_keeps_its_files_in_the_run_dir(tmp_path: Path, make_config, offline_wandb):
    pytest.importorskip("tensorboard")
    config = tracked(make_config, ["tensorboard", "wandb"])
    Trainer(config, output_dir=tmp_path / "run").train()
    assert not (tmp_path / "cwd" / "wandb").exists()  # not in the current folder
    files = wandb_files(tmp_path / "run")
    assert len(files) == 1
    run, rows, logged_config = wandb_history(files[0])
    assert run["project"] == "proj" and run["name"] == "run" and run["id"]
    assert json.loads((tmp_path / "run" / "wandb" / "mtcore-run.json").read_text())["id"] == run["id"]
    assert logged_config["optimizer.lr"] == config["optimizer"]["lr"] and logged_config["schedule.max_steps"] == 6
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_steps = sorted({e["step"] for e in events if e["event"] == "train"})
    eval_steps = [e["step"] for e in events if e["event"] == "eval"]
    assert train_steps == list(range(1, 7)) and eval_steps == [2, 4, 6]
    for name in ("train/lr", "train/examples_per_s"):
        assert steps_of(rows, name) == train_steps
    for e in (e for e in events if e["event"] == "train"):
        assert [row[f"train/{e['task']}/loss"] for row in rows if row["_step"] == e["step"]] == [pytest.approx(e["loss"])]
    assert steps_of(rows, "eval/aggregate") == eval_steps
    for e in (e for e in events if e["event"] == "eval"):
        row = next(row for row in rows if row["_step"] == e["step"])
        assert {k: row[f"eval/{k}"] for k in e["metrics"]} == pytest.approx(e["metrics"])
    scalars = tensorboard_scalars(tmp_path / "run" / "proj")
    assert {k: v for k, v in scalars.items()} == {k: steps_of(rows, k) for k in scalars}
    assert set(scalars) == {k for row in rows for k in row if not k.startswith("_")}


@pytest.mark.parametrize("knows", ["online", "offline"])
def test_resume_continues_the_same_wandb_run_and_tensorboard_shows_each_step_once(tmp_path: Path, make_config, offline_wandb,
                                                                                  monkeypatch, knows):
    pytest.importorskip("tensorboard")
    config = tracked(make_config, ["tensorboard", "wandb"])
    run_dir = tmp_path / "run"
    Trainer(config, output_dir=run_dir).train()
    saved = run_dir / "wandb" / "mtcore-run.json"
    assert json.loads(saved.read_text())["last_step"] == 6
    scalars = tensorboard_scalars(run_dir / "proj")
    assert scalars["train/lr"] == [1, 2, 3, 4, 5, 6] and scalars["eval/aggregate"] == [2, 4, 6]
    # the run stopped after logging step 6 but before its checkpoints after step 3 (step 4's is there when its
    # evaluation was the best so far): it resumes from step 3
    for late in (run_dir / "checkpoints").glob("step-*"):
        if int(late.name.split("-")[1]) > 3:
            shutil.rmtree(late)
    (run_dir / "summary.json").unlink()
    # as if W&B had received steps up to 4 only: an online W&B run says so (it resumes at step 5 and refuses
    # lower ones); offline its starting_step is 0, and mtcore's own record of the last step sent says so
    if knows == "online":
        monkeypatch.setattr(offline_wandb.sdk.wandb_run.Run, "starting_step", property(lambda run: 5))
        saved.write_text(json.dumps({"id": json.loads(saved.read_text())["id"]}))  # a run dir from before the record
    else:
        saved.write_text(json.dumps({**json.loads(saved.read_text()), "last_step": 4}))
    summary = Trainer(run_dir / "config.yaml", output_dir=run_dir, resume=True).train()
    assert summary["resumed_from"].endswith("step-000003") and summary["steps"] == 6
    first, second = (wandb_history(path) for path in wandb_files(run_dir))
    assert first[0]["id"] == second[0]["id"] and first[0]["name"] == second[0]["name"] == "run"
    assert steps_of(first[1], "train/lr") == [1, 2, 3, 4, 5, 6]
    assert steps_of(second[1], "train/lr") == [5, 6] and steps_of(second[1], "eval/aggregate") == [6]
    assert json.loads(saved.read_text())["last_step"] == 6


def test_an_offline_wandb_run_resumed_after_its_last_step_sends_nothing_twice(tmp_path: Path, make_config, offline_wandb):
    config = tracked(make_config, ["wandb"])
    run_dir = tmp_path / "run"
    Trainer(config, output_dir=run_dir).train()
    shutil.rmtree(run_dir / "checkpoints" / "step-000006")
    (run_dir / "summary.json").unlink()
    Trainer(run_dir / "config.yaml", output_dir=run_dir, resume=True).train()  # steps 4-6 again, all sent before
    first, second = (wandb_history(path) for path in wandb_files(run_dir))
    assert steps_of(first[1], "train/lr") == [1, 2, 3, 4, 5, 6] and first[0]["id"] == second[0]["id"]
    assert [row["_step"] for row in second[1] if any(not k.startswith("_") for k in row)] == []


def test_each_seed_is_a_wandb_run_of_its_own_in_one_group(tmp_path: Path, make_config, offline_wandb):
    from mtcore.train.seeds import train_seeds

    config = tracked(make_config, ["wandb"], schedule={"max_steps": 2, "warmup_steps": 1}, checkpoint={"every": None})
    train_seeds(config, tmp_path / "out", [1, 2])
    runs = [wandb_history(path)[0] for seed in (1, 2) for path in wandb_files(tmp_path / "out" / f"seed-{seed}")]
    assert [r["name"] for r in runs] == ["out/seed-1", "out/seed-2"] and {r["group"] for r in runs} == {"out"}
    assert len({r["id"] for r in runs}) == 2


def test_a_run_that_fails_while_starting_leaves_no_tracker_files(tmp_path: Path, make_config, offline_wandb, monkeypatch):
    pytest.importorskip("tensorboard")
    from mtcore.errors import ModelFileError
    from mtcore.train import build

    def broken(engine, torch):
        raise ModelFileError("checkpoint step-000003 is damaged")

    monkeypatch.setattr(build, "_restore", broken)
    with pytest.raises(ModelFileError):
        Trainer(tracked(make_config, ["tensorboard", "wandb"]), output_dir=tmp_path / "run", resume=True).train()
    assert not (tmp_path / "run").exists() and not list((tmp_path / "cwd").iterdir())


def test_a_run_that_fails_while_training_marks_its_wandb_run_failed_and_closes_it(tmp_path: Path, make_config, offline_wandb):
    """A NaN loss at step 3: the W&B run stayed open until the process exited (a later Trainer in the same Python
    process, a notebook, would have logged into it); now it is finished, as failed (the fixture checks it is closed)."""
    from mtcore.train.monitor import TrainingError

    with pytest.raises(TrainingError):
        Trainer(tracked(make_config, ["wandb"], debug={"inject_nan_at_step": 3}), output_dir=tmp_path / "run").train()
    assert offline_wandb.run is None
    [path] = wandb_files(tmp_path / "run")
    run, rows, _ = wandb_history(path)
    assert run["exit_code"] == 1 and max(r.get("_step", 0) for r in rows) >= 1


def test_a_tracker_that_cannot_start_is_a_one_line_error_and_leaves_nothing(tmp_path: Path, make_config, offline_wandb, monkeypatch):
    def refuse(*args, **kwargs):
        raise offline_wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])\nmore")

    monkeypatch.setattr(offline_wandb, "init", refuse)
    with pytest.raises(MtError, match=r"^config key 'logging.trackers': wandb could not start \(UsageError: api_key not configured") as info:
        Trainer(tracked(make_config, ["wandb"]), output_dir=tmp_path / "run").train()
    assert "\n" not in str(info.value) and "WANDB_MODE=offline" in str(info.value)
    assert not (tmp_path / "run").exists() and not list((tmp_path / "cwd").iterdir())


def test_finishing_the_trackers_keeps_the_process_group(tmp_path: Path, make_config):
    """``Accelerator.end_training`` destroys the process group: under DDP, ``--seeds`` then failed at its second seed."""
    pytest.importorskip("tensorboard")
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        Trainer(tracked(make_config, ["tensorboard"], schedule={"max_steps": 2, "warmup_steps": 1}), output_dir=tmp_path / "run").train()
        assert dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_a_tracker_that_is_not_installed_names_its_extra(tmp_path: Path, make_config, monkeypatch, tracker):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == tracker else real(name, *a))
    with pytest.raises(ConfigError, match=rf"^config key 'logging.trackers.0': '{tracker}' is not installed") as info:
        Trainer(tracked(make_config, [tracker]), output_dir=tmp_path / "run")
    message = str(info.value)
    assert "\n" not in message and not (tmp_path / "run").exists()
    extra = re.search(r'pip install "mtcore\[(\w+)\]"', message)
    assert extra, message
    if tomllib is not None:  # the extra the message names exists and installs the tracker
        extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert any(re.match(rf"{tracker}\b", requirement) for requirement in extras[extra.group(1)])


@pytest.mark.parametrize("project", ["../elsewhere", "ABSOLUTE", ".", "a/../../b"])
def test_a_tensorboard_project_outside_the_run_directory_is_one_line_and_leaves_nothing(tmp_path: Path, make_config, project):
    """TensorBoard writes to RUN/<logging.project>/: '../elsewhere' wrote beside the run, '.' into the run folder itself."""
    pytest.importorskip("tensorboard")
    config = tracked(make_config, ["tensorboard"])
    project = str(tmp_path / "elsewhere") if project == "ABSOLUTE" else project
    config["logging"]["project"] = project
    with pytest.raises(ConfigError, match=rf"^config key 'logging.project': {re.escape(repr(project))} is not a folder name inside "
                                          r"the run directory.*give a plain name") as info:
        Trainer(config, output_dir=tmp_path / "runs" / "run").train()
    assert "\n" not in str(info.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("project", ["model", "summary.json", "checkpoints/tb", "curves.png", "tiny-encoder-bert"])
def test_a_tensorboard_project_named_as_what_the_run_writes_is_refused_before_anything_runs(project):
    """``logging.project=model`` or ``summary.json`` passed mt check, and the run failed after all its training."""
    from mtcore.train.config_io import load_config

    with pytest.raises(ConfigError, match=rf"^config key 'logging.project': {re.escape(repr(project))} is where the run writes its own "):
        load_config({"encoder": {"tiny": "bert"}, "tasks": ["rsg:terra"], "logging": {"trackers": ["tensorboard"], "project": project}})


def test_the_offline_record_is_written_once_wandb_has_finished_not_at_each_log(tmp_path: Path):
    """A process killed outright (SIGKILL) must not leave a record of steps W&B never saved: its resume would skip them."""
    from types import SimpleNamespace

    from mtcore.train.trackers import end_trackers, log_to_trackers

    logged = []
    run = SimpleNamespace(id="abc", starting_step=0, finish=lambda exit_code=None: None)
    tracker = SimpleNamespace(name="wandb", run=run, log=lambda values, step: logged.append(step), finish=lambda: None,
                              mtcore_last_step=3, mtcore_first_step=4)  # an earlier start's record: step 3
    engine = SimpleNamespace(run=SimpleNamespace(root=tmp_path), accelerator=SimpleNamespace(is_main_process=True, trackers=[tracker]))
    record = tmp_path / "wandb" / "mtcore-run.json"
    record.parent.mkdir()
    record.write_text(json.dumps({"id": "abc", "last_step": 3}))
    for step in (2, 3, 4, 5, 5):
        log_to_trackers(engine, {"train/lr": 0.1}, step)
    assert logged == [4, 5, 5]  # what the earlier start sent is not sent again
    assert json.loads(record.read_text())["last_step"] == 3  # not yet: W&B may not have saved steps 4 and 5
    end_trackers(engine)
    assert json.loads(record.read_text()) == {"id": "abc", "last_step": 5}
