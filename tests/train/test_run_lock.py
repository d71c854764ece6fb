"""One training process per run folder: a second ``mt train`` into a folder a run is training in (``--resume`` while it
goes on, a requeued job, the same command twice) is refused in one line naming the first, instead of both writing its
checkpoints and ``metrics.jsonl``; the folder is free again when the run ends, however it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mtcore.cli.app import app
from mtcore.errors import UsageError
from mtcore.train.run_lock import LOCK_NAME, RunLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="runs are locked with flock")


def _in_use(output: str, pid: int) -> bool:
    return f"is in use by another training process (pid {pid} on " in output and "choose another --output-dir" in output


def test_a_second_mt_train_into_a_training_run_is_refused_and_compare_tells_training_from_killed(tmp_path: Path, make_config,
                                                                                                    helpers):
    config, run = tmp_path / "run.yaml", tmp_path / "run"
    config.write_text(yaml.safe_dump(make_config(schedule={"max_steps": 40, "warmup_steps": 1}, checkpoint={"every": 4, "keep_last": 2})))
    first = subprocess.Popen(helpers.mt_command("train", str(config), "debug.step_delay_s=0.2", "-o", str(run)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=helpers.subprocess_env())
    try:
        deadline = time.time() + 90
        while not list((run / "checkpoints").glob("step-*")):
            assert first.poll() is None and time.time() < deadline, first.stderr.read() if first.poll() is not None else "slow"
            time.sleep(0.05)
        assert (run / LOCK_NAME).is_file()
        for extra in (["--resume"], []):  # continuing it, or starting it again
            second = CliRunner().invoke(app, ["train", str(config), "-o", str(run), *extra])
            assert second.exit_code == 2 and len(second.stderr.strip().splitlines()) == 1, second.output
            assert _in_use(second.stderr, first.pid) and str(run) in second.stderr, second.stderr
        # a run training now, said as such (it was "still running or was interrupted")
        compared = CliRunner().invoke(app, ["compare", str(run)])
        assert f"it is training now (pid {first.pid} on " in compared.stderr and "compare it when it ends" in compared.stderr, compared.output
        predicted = CliRunner().invoke(app, ["predict", str(run), "--split", "validation"])
        assert predicted.exit_code == 2 and f"it is training now (pid {first.pid} on " in predicted.stderr, predicted.output
        assert first.poll() is None
        first.kill()  # kill -9: its lock file stays, unlocked
        first.wait()
    finally:
        first.kill()
    assert (run / LOCK_NAME).is_file()
    compared = CliRunner().invoke(app, ["compare", str(run)])
    assert "without finishing or a word (killed, or its machine went down); continue with mt train " in compared.stderr, compared.output
    resumed = CliRunner().invoke(app, ["train", str(config), "-o", str(run), "debug.step_delay_s=0", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    steps = [e["step"] for e in helpers.read_events(run) if e["event"] == "train"]
    assert steps == sorted(steps) and sorted(set(steps)) == list(range(2, 41, 2))  # one run's log, not two interleaved
    assert (run / "summary.json").is_file() and not (run / LOCK_NAME).exists()


def test_the_folder_is_free_when_the_holder_is_gone_and_after_a_run_that_failed(tmp_path: Path, make_config, helpers):
    from mtcore.train.trainer import Trainer

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, os; from mtcore.train.run_lock import RunLock; os.mkdir(sys.argv[1]); "
                               "RunLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()", str(run)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=helpers.subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted(os.listdir(run))
        with pytest.raises(UsageError) as refused:
            Trainer(make_config(), output_dir=run).train()
        assert _in_use(str(refused.value), holder.pid)
        assert sorted(os.listdir(run)) == before  # nothing of the refused run
    finally:
        holder.kill()  # as kill -9 ends a run: its lock file stays, and locks nothing
        holder.wait()
    assert (run / LOCK_NAME).is_file()
    failing = make_config(debug={"inject_nan_at_step": 2})
    with pytest.raises(Exception, match="NaN|nan"):
        Trainer(failing, output_dir=run).train()
    assert not (run / LOCK_NAME).exists()  # the failed run gave it back
    RunLock(run).acquire().release()


def test_a_refused_start_removes_nothing_the_holder_writes_while_it_waits(tmp_path: Path, make_config, monkeypatch):
    """The refused process undid 'what the start wrote' from a snapshot taken before the lock: the holder's model/,
    summary.json and metrics.jsonl, written during the second of lock retries, were deleted (the holder said 'trained')."""
    from mtcore import Trainer

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("# resolved config of this run\n")
    real = RunLock.acquire

    def held_by_another(self):
        (run / "model").mkdir()  # the holder finishing while this one retries
        (run / "summary.json").write_text("{}")
        raise UsageError(f"output directory {run} is in use by another training process (pid 1 on elsewhere)")

    monkeypatch.setattr(RunLock, "acquire", held_by_another)
    with pytest.raises(UsageError, match="is in use by another training process"):
        Trainer(make_config(), output_dir=run, resume=True).train()
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "model", "summary.json"]
    monkeypatch.setattr(RunLock, "acquire", real)
    fresh = tmp_path / "fresh" / "deeper"
    monkeypatch.setattr(RunLock, "acquire", lambda self: (_ for _ in ()).throw(UsageError("in use")))
    with pytest.raises(UsageError):
        Trainer(make_config(), output_dir=fresh).train()
    assert not (tmp_path / "fresh").exists()  # what this start made, still empty, goes
