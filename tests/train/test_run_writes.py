"""A write into the run folder that fails while the run trains (no permission, a full disk, the file-size limit, the
folder deleted) is one line naming the file, the fix and the checkpoint ``--resume`` continues from. It was
"unexpected PermissionError" / "unexpected FileNotFoundError", and a checkpoint that failed for any cause was told
"free some space"."""

from __future__ import annotations

import errno
import resource
import shutil
import subprocess

import pytest
import yaml

from mtcore import Trainer
from mtcore.errors import OutputError
from mtcore.train import events
from mtcore.train.run_dir import MetricsLog
from mtcore.train.run_writes import run_write_error

from .conftest import mt_command, subprocess_env


def _at_step(monkeypatch, step, action):
    """``action(engine)`` after step ``step``'s events, once."""
    after_step = events.after_step
    done = []

    def patched(engine, *args):
        after_step(engine, *args)
        if engine.state.step == step and not done:
            done.append(step)
            action(engine)

    monkeypatch.setattr(events, "after_step", patched)


def test_a_run_folder_made_unwritable_names_the_file_the_fix_and_the_checkpoint_to_resume_from(tmp_path, make_config, monkeypatch):
    run = tmp_path / "run"
    write = MetricsLog.write

    def refused(self, event):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.path))

    _at_step(monkeypatch, 4, lambda engine: monkeypatch.setattr(MetricsLog, "write", refused))
    config = make_config()  # logs every 2 steps, a checkpoint every 3: step 6's log is the first write refused
    with pytest.raises(OutputError) as info:
        Trainer(config, output_dir=run).train()
    assert str(info.value) == (f"cannot write to {run / 'metrics.jsonl'}: Permission denied; make {run} writable, then continue "
                               f"from {run / 'checkpoints' / 'step-000003'} with the same mt train command and --resume")
    monkeypatch.setattr(MetricsLog, "write", write)  # made writable again: --resume finishes the run
    summary = Trainer(make_config(), output_dir=run, resume=True).train()
    assert summary["steps"] == 6 and (run / "model" / "mtcore.json").is_file()


def test_a_run_folder_deleted_while_training_says_so(tmp_path, make_config, monkeypatch):
    run = tmp_path / "run"
    _at_step(monkeypatch, 3, lambda engine: shutil.rmtree(run))
    with pytest.raises(OutputError) as info:
        Trainer(make_config(), output_dir=run).train()
    assert str(info.value) == (f"cannot write to {run / 'metrics.jsonl'}: No such file or directory: the run folder {run} went away "
                               "while the run trained (deleted, or its drive unmounted?), and its checkpoints with it; train again")
    assert not run.exists()


def test_a_model_that_cannot_be_written_at_the_end_keeps_the_last_checkpoint_to_resume_from(tmp_path, make_config, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    run = tmp_path / "run"
    save_file = safetensors.torch.save_file

    def full(tensors, filename, *args, **kwargs):  # the heads' files of model/, in its staging folder
        if ".model.tmp-" not in str(filename):
            return save_file(tensors, filename, *args, **kwargs)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OutputError) as info:
        Trainer(make_config(), output_dir=run).train()
    assert str(info.value) == (f"cannot write to {(run / 'model').absolute()}: No space left on device; free some space on the disk "
                               f"of {run}, then continue from {run / 'checkpoints' / 'step-000006'} with the same mt train command "
                               "and --resume")
    assert not (run / "model").exists() and not [p for p in run.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    assert Trainer(make_config(), output_dir=run, resume=True).train()["steps"] == 6
    assert (run / "model" / "mtcore.json").is_file()


def test_the_file_size_limit_is_named_with_its_fix_and_no_partial_checkpoint_stays(tmp_path, make_config):
    run = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config()), encoding="utf-8")

    def limited():  # as `ulimit -f 100` (Python ignores SIGXFSZ: the write fails with EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    result = subprocess.run(mt_command("train", str(config), "--output-dir", str(run)), capture_output=True, text=True,
                            env=subprocess_env(), preexec_fn=limited, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines == [f"error: cannot write to {run / 'checkpoints' / 'step-000003'}: File too large; a file outgrew this process's "
                     "file-size limit: raise it (ulimit -f) or write elsewhere; then start again with the same mt train command and "
                     "--resume (no checkpoint yet: it starts over)"], result.stderr
    assert "Traceback" not in result.stderr and list((run / "checkpoints").iterdir()) == []


def test_an_error_of_a_file_outside_the_run_folder_is_left_as_it_is(tmp_path):
    from mtcore.train.checkpoint import Checkpoints

    elsewhere = FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp_path / "data" / "train.jsonl"))
    assert run_write_error(tmp_path / "run", elsewhere, Checkpoints(tmp_path / "run" / "checkpoints")) is None
    assert run_write_error(tmp_path / "run", ValueError("x"), Checkpoints(tmp_path / "run" / "checkpoints")) is None


def test_metrics_jsonl_deleted_while_training_is_begun_again_with_a_warning(tmp_path, make_config, monkeypatch):
    run = tmp_path / "run"
    _at_step(monkeypatch, 3, lambda engine: (run / "metrics.jsonl").unlink())
    with pytest.warns(UserWarning) as caught:
        Trainer(make_config(), output_dir=run).train()
    said = [str(w.message) for w in caught if "metrics.jsonl" in str(w.message)]
    assert said == [f"{run / 'metrics.jsonl'} was deleted while the run trained; a new one begins at step 4 (the events before it "
                    "are lost)"]
    assert (run / "metrics.jsonl").is_file() and (run / "model" / "mtcore.json").is_file()


LIMITED_WRITES = """
import json, sys
from pathlib import Path
from mtcore.train.config import TrainConfig
from mtcore.train.config_io import dump_config
from mtcore.train.run_dir import MetricsLog, write_json
root, out = Path(sys.argv[1]), {}
log = MetricsLog(root / "metrics.jsonl")
log.write({"event": "start", "step": 0})
for name, write in (("log", lambda: log.write({"event": "train", "step": 1, "task": "отзывы" * 300})),
                    ("json", lambda: write_json(root / "summary.json", {"x": "y" * 3000})),
                    ("yaml", lambda: dump_config(TrainConfig.model_validate({"encoder": {"tiny": "bert"}, "tasks": ["a:" + "b" * 3000]}), root / "config.yaml"))):
    try:
        write()
    except OSError as exc:
        out[name] = [exc.errno, exc.filename]
print(json.dumps(out))
"""


def test_a_write_cut_by_the_file_size_limit_names_its_file_and_leaves_no_half_line_or_temporary_file(tmp_path):
    """write() hitting a full disk or the file-size limit raised an OSError with no file name ("unexpected OSError"), and
    metrics.jsonl was left ending in half a line; summary.json and config.yaml were the same."""
    import json
    import sys

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    done = subprocess.run([sys.executable, "-c", LIMITED_WRITES, str(tmp_path)], capture_output=True, text=True,
                          env=subprocess_env(), preexec_fn=limited, timeout=120)
    assert done.returncode == 0, done.stderr
    failed = json.loads(done.stdout)
    assert failed == {name: [errno.EFBIG, str(tmp_path / file)]
                      for name, file in (("log", "metrics.jsonl"), ("json", "summary.json"), ("yaml", "config.yaml"))}
    assert (tmp_path / "metrics.jsonl").read_text(encoding="utf-8") == '{"event": "start", "step": 0}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
    line = run_write_error(tmp_path, OSError(errno.EFBIG, "File too large", failed["log"][1]), _no_checkpoints(tmp_path))
    assert str(line).startswith(f"cannot write to {tmp_path / 'metrics.jsonl'}: File too large; a file outgrew")


def _no_checkpoints(run):
    from mtcore.train.checkpoint import Checkpoints

    return Checkpoints(run / "checkpoints")


def test_resuming_skips_a_last_line_cut_inside_a_character(tmp_path):
    """A kill or a full disk can cut the last line inside a Cyrillic letter: resuming was 'unexpected UnicodeDecodeError'."""
    from mtcore.train.run_dir import read_events

    path = tmp_path / "metrics.jsonl"
    whole = '{"event": "train", "step": 1, "task": "user:отзывы"}\n'
    path.write_bytes(whole.encode() + '{"event": "train", "step": 2, "task": "user:о'.encode()[:-1])
    assert [event["step"] for event in read_events(path)] == [1]
    MetricsLog(path).truncate_after(1)
    assert path.read_text(encoding="utf-8") == whole


def test_a_config_yaml_cut_by_the_file_size_limit_at_the_start_is_one_line_and_leaves_no_run_folder(tmp_path, make_config):
    run = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config()), encoding="utf-8")

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    result = subprocess.run(mt_command("train", str(config), "--output-dir", str(run)), capture_output=True, text=True,
                            env=subprocess_env(), preexec_fn=limited, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: cannot write to {run / 'config.yaml'}: File too large; a file outgrew "
                                                      "this process's file-size limit: raise it (ulimit -f) or write elsewhere")
    assert not run.exists()
