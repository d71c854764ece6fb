"""Graceful preemption: SIGTERM / SIGUSR1 / SIGHUP stop ``mt train`` after the current step with a checkpoint,
one line and exit code 143; ``--resume`` then ends with the uninterrupted run's weights, bit for bit (CPU).

The runs are real ``mt train`` processes; ``debug.step_delay_s`` makes steps slow enough to signal
mid-run, and every subprocess has a timeout (torchrun's workers are killed by PID if anything hangs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mtcore.train.preemption import EXIT_CODE, Preempted

MAX_STEPS, LOG_EVERY, DELAY = 16, 4, "debug.step_delay_s=0.15"
LINE = re.compile(r"^preempted at step (\d+)(?: of seed (\d+))?: checkpoint written to (\S+); "
                  r"continue with (.+ --resume)( \(under the same launcher\))?$")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM/SIGUSR1 handling is POSIX")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtcore.cli.app"]


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("preemption") / "config.yaml"


@pytest.fixture
def config(config_path: Path, make_config) -> Path:
    """A 16-step run, logged every 4 steps; checkpoints only at the end (or on preemption)."""
    if not config_path.is_file():
        config_path.write_text(yaml.safe_dump(make_config(
            schedule={"max_steps": MAX_STEPS, "warmup_steps": 1}, batching={"batch_size": 4, "group_by_length": False},
            checkpoint={"every": 100, "keep_last": 2}, logging={"every": LOG_EVERY, "progress": "none", "plot": False})))
    return config_path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Where the uninterrupted runs go (one process: ``single``, torchrun: ``ddp``), made once when first asked for.
    The torchrun one starts in the background with the first test (it runs while the one-process runs mostly
    sleep through ``debug.step_delay_s``); whatever is still running at the end is killed by PID."""
    state = {"root": tmp_path_factory.mktemp("reference"), "ddp": None}
    yield state
    if state["ddp"] is not None:
        _kill(state["ddp"])


def _start_ddp_reference(reference: dict, helpers, config: Path) -> None:
    run = reference["root"] / "ddp"
    if reference["ddp"] is None and not (run / "model").is_dir():
        reference["ddp"] = subprocess.Popen([*TORCHRUN, "train", str(config), "--output-dir", str(run)], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, text=True, env=helpers.subprocess_env())


def _uninterrupted(reference: dict, helpers, config: Path, ddp: bool) -> Path:
    """The uninterrupted run: under torchrun, or in this process on one thread like the subprocesses (quicker)."""
    run = reference["root"] / ("ddp" if ddp else "single")
    if ddp:
        _start_ddp_reference(reference, helpers, config)
        process = reference["ddp"]
        if process is not None:
            try:
                _, stderr = process.communicate(timeout=120)
                assert process.returncode == 0, stderr[-3000:]
            finally:
                _kill(process)
                reference["ddp"] = None
    elif not (run / "model").is_dir():
        _in_this_process(config, run)
    return run


def _in_this_process(config: Path, run: Path, resume: bool = False) -> None:
    from mtcore import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(config, output_dir=run, overrides=[DELAY] if resume else [], resume=resume).train()
    finally:
        torch.set_num_threads(threads)


def _kill(process: subprocess.Popen, more: list[int] = ()) -> None:
    """``process``, its children (torchrun's workers run in sessions of their own) and ``more``, by PID."""
    for pid in [*_children(process.pid), *more]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _logged_step(run: Path) -> int:
    """The last step with a ``train`` event (0 before the first)."""
    path = run / "metrics.jsonl"
    steps = [0]
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "train":
                steps.append(int(event["step"]))
    return max(steps)


def _signal_mid_run(command: list[str], run: Path, signum: int, env: dict, after_step: int = LOG_EVERY,
                    timeout: float = 90) -> tuple[int, str, int, list[int]]:
    """Start ``command``, send ``signum`` once step ``after_step`` is logged; returns (exit code, stderr,
    last logged step when signalled, the launcher's child PIDs). Nothing is left running."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    children: list[int] = []
    try:
        deadline = time.time() + timeout
        while _logged_step(run) < after_step:
            assert process.poll() is None, f"the run ended before step {after_step}: {process.stderr.read()[-3000:]}"
            assert time.time() < deadline, "the run did not reach the step in time"
            time.sleep(0.02)
        signalled_at = _logged_step(run)
        children = _children(process.pid)
        os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=timeout)
        return process.returncode, stderr, signalled_at, children
    finally:
        _kill(process, children)


def _check_preempted(run: Path, stderr: str, signalled_at: int, helpers) -> tuple[int, list[str]]:
    """The one line, the checkpoint of exactly that step (and no other), the event; returns the step and resume command."""
    lines = [line for line in stderr.splitlines() if line.startswith("preempted")]
    assert len(lines) == 1, stderr[-3000:]
    assert "error:" not in stderr, stderr[-3000:]
    match = LINE.match(lines[0])
    assert match, lines[0]
    step = int(match.group(1))
    assert signalled_at <= step < MAX_STEPS, (signalled_at, step)  # stopped mid-run, not before the signal
    checkpoint = Path(match.group(3))
    assert checkpoint == run / "checkpoints" / f"step-{step:06d}"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [checkpoint.name]  # no .tmp- left, no other
    assert json.loads((checkpoint / "state.json").read_text())["step"] == step
    events = helpers.read_events(run)
    assert [e["step"] for e in events if e["event"] == "preempted"] == [step]
    assert max(e.get("step", 0) for e in events) == step  # nothing trained past it
    assert not (run / "model").exists() and not (run / "summary.json").exists()
    return step, shlex.split(match.group(4))


def _same_weights(a: Path, b: Path, helpers) -> None:
    first, second = helpers.load_weights(a / "model"), helpers.load_weights(b / "model")
    assert first.keys() == second.keys() and len(first) > 10
    assert [name for name in first if not torch.equal(first[name], second[name])] == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_a_signal_stops_after_the_step_with_a_checkpoint_and_resume_is_exact(tmp_path, config, reference, helpers, signum):
    run = tmp_path / "run"
    _start_ddp_reference(reference, helpers, config)
    code, stderr, signalled_at, _ = _signal_mid_run(helpers.mt_command("train", str(config), DELAY, "--output-dir", str(run)),
                                                    run, signum, helpers.subprocess_env())
    assert code == EXIT_CODE == 143, stderr[-3000:]
    step, command = _check_preempted(run, stderr, signalled_at, helpers)
    assert len(stderr.strip().splitlines()) == 1, stderr  # that line alone
    assert command == ["mt", "train", str(config), DELAY, "--output-dir", str(run), "--resume"]
    event = next(e for e in helpers.read_events(run) if e["event"] == "preempted")
    assert event["signal"] == signal.Signals(signum).name

    _in_this_process(config, run, resume=True)  # what the printed command does (run as printed by the DDP test), quicker here
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == MAX_STEPS
    assert summary["resumed_from"].endswith(f"step-{step:06d}")
    full = _uninterrupted(reference, helpers, config, ddp=False)
    _same_weights(full, run, helpers)
    assert summary["examples_seen"] == json.loads((full / "summary.json").read_text())["examples_seen"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds torchrun's workers in /proc")
def test_ddp_sigterm_to_torchrun_stops_both_ranks_at_one_logging_step(tmp_path, config, reference, helpers):
    """torchrun forwards SIGTERM to its workers (and exits 1 itself, with its own report); the ranks
    agree at the next logging step, write one checkpoint together and exit; the resumed run is exact."""
    env, run = helpers.subprocess_env(), tmp_path / "run"
    _uninterrupted(reference, helpers, config, ddp=True)  # finished first: the workers of this test are the only ones
    code, stderr, signalled_at, workers = _signal_mid_run([*TORCHRUN, "train", str(config), DELAY, "--output-dir", str(run)],
                                                          run, signal.SIGTERM, env)
    assert code != 0 and len(workers) == 2, stderr[-3000:]
    assert "forcefully" not in stderr, stderr[-3000:]  # torchrun did not have to SIGKILL a worker that hung
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]
    step, command = _check_preempted(run, stderr, signalled_at, helpers)
    assert step % LOG_EVERY == 0 and step > signalled_at  # agreed at a logging step after the signal
    assert sorted(p.name for p in (run / "checkpoints" / f"step-{step:06d}").glob("rng-*.json")) == ["rng-0.json", "rng-1.json"]
    assert command[-3:] == ["--output-dir", str(run), "--resume"]

    resumed = subprocess.run([*TORCHRUN, *command[1:]], capture_output=True, text=True, env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["steps"] == MAX_STEPS
    _same_weights(_uninterrupted(reference, helpers, config, ddp=True), run, helpers)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def test_preempted_seed_stops_the_command_and_handlers_are_restored(tmp_path, make_config, monkeypatch):
    """In one process (the Python API / CliRunner): the handlers exist only while the loop runs, come
    back after an error too, and a preempted seed stops ``--seeds`` (the next seed is not started)."""
    from typer.testing import CliRunner

    from mtcore import Trainer
    from mtcore.cli.app import app
    from mtcore.train import events
    from mtcore.train.monitor import NonFiniteLossError

    seen: list[int] = []
    guard = lambda signum, frame: seen.append(signum)  # noqa: E731 - would catch a signal the loop let through
    previous = signal.signal(signal.SIGTERM, guard)
    try:
        config = make_config(schedule={"max_steps": 4, "warmup_steps": 0}, checkpoint={"every": None}, evaluation={"at_end": False})
        with pytest.raises(NonFiniteLossError):
            Trainer(config, output_dir=tmp_path / "nan", overrides=["debug.inject_nan_at_step=2"]).train()
        assert signal.getsignal(signal.SIGTERM) is guard

        after_step = events.after_step

        steps: list[int] = []
        signal_at = {"call": 6}  # step 2 of the second seed (the first has 4 steps)

        def signalled_at_step_2(engine, *args):
            after_step(engine, *args)
            steps.append(engine.state.step)
            if len(steps) == signal_at["call"]:
                os.kill(os.getpid(), signal.SIGTERM)

        monkeypatch.setattr(events, "after_step", signalled_at_step_2)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        out = tmp_path / "out"
        result = CliRunner().invoke(app, ["train", str(path), "--seeds", "1,2,3", "--output-dir", str(out)])
        assert signal.getsignal(signal.SIGTERM) is guard and seen == []
        assert result.exit_code == EXIT_CODE, result.output
        match = LINE.match(result.stderr.strip())
        assert match and match.group(1) == "2" and match.group(2) == "2", result.stderr
        assert shlex.split(match.group(4))[-5:] == ["--seeds", "1,2,3", "--output-dir", str(out), "--resume"]
        assert (out / "seed-2" / "checkpoints" / "step-000002" / "state.json").is_file()
        assert not (out / "seed-3").exists()
        spread = json.loads((out / "seeds.json").read_text())  # seed 1's, marked incomplete: not a 3-seed result
        assert (spread["seeds"], spread["requested"], spread["status"]) == ([1], [1, 2, 3], "incomplete")
        compared = CliRunner().invoke(app, ["compare", str(out)])
        assert compared.exit_code == 2 and len(compared.stderr.strip().splitlines()) == 1, compared.output
        assert (f"whose seeds have not all finished (1 of 3: seed-1; seeds.json says incomplete): finish them with mt train "
                f"CONFIG --seeds 1,2,3 --output-dir {out} --resume, or compare one seed's run ({out / 'seed-1'})") in compared.stderr

        steps.clear()
        signal_at["call"] = 2
        with pytest.raises(Preempted) as stopped:  # the Python API raises it too; the one line is the CLI's
            Trainer(config, output_dir=tmp_path / "api").train()
        assert stopped.value.step == 2 and signal.getsignal(signal.SIGTERM) is guard and seen == []
        monkeypatch.setattr(events, "after_step", after_step)
        result = CliRunner().invoke(app, ["train", str(path), "--seeds", "1,2,3", "--output-dir", str(out), "--resume"])
        assert result.exit_code == 0, result.output
        spread = json.loads((out / "seeds.json").read_text())
        assert (spread["seeds"], spread["status"]) == ([1, 2, 3], "completed")
        assert json.loads((out / "seed-2" / "summary.json").read_text())["resumed_from"].endswith("step-000002")
        assert CliRunner().invoke(app, ["compare", str(out)]).exit_code == 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_under_ddp_the_flag_rides_along_the_logging_reduction_and_every_rank_agrees():
    """Rank 0 was not signalled, rank 1 was: the sum at the logging step tells rank 0, and the counters stay right."""
    from types import SimpleNamespace

    from mtcore.train import events
    from mtcore.train.checkpoint import TrainState
    from mtcore.train.monitor import LossMeter
    from mtcore.train.preemption import Preemption

    other_rank = {"flag": 1}

    def reduce(tensor, op):  # what rank 1 adds: 5 examples, 50 tokens (and its flag, when one rides along)
        assert op == "sum" and len(tensor) in (2, 3)
        return tensor + torch.tensor([5, 50, other_rank["flag"]][:len(tensor)], dtype=tensor.dtype)

    engine = SimpleNamespace(accelerator=SimpleNamespace(num_processes=2, reduce=reduce), state=TrainState())
    meter, preemption = LossMeter(["a"], torch.device("cpu")), Preemption(processes=2)
    meter.add("a", torch.tensor(0.5), examples=3, tokens=30)
    preemption.signum = 0  # this rank: no signal
    events.count_examples(engine, meter)  # a checkpoint's count (no preemption): no flag, no agreement
    assert not preemption.due() and (engine.state.examples_seen, engine.state.tokens_seen) == (3 + 5, 30 + 50)
    meter.add("a", torch.tensor(0.5), examples=2, tokens=20)
    events.count_examples(engine, meter, preemption)  # a logging step
    assert preemption.due() and (engine.state.examples_seen, engine.state.tokens_seen) == (8 + 7, 80 + 70)

    one = Preemption(processes=1)
    one._handle(int(signal.SIGUSR1), None)
    one._handle(int(signal.SIGTERM), None)  # a second signal changes nothing
    assert one.due() and one.signal_name == "SIGUSR1"
    other_rank["flag"], idle = 0, Preemption(processes=2)
    events.count_examples(engine, meter, idle)
    assert not idle.due()


def test_a_preempted_wandb_run_is_marked_preempting_and_finished_with_143():
    from types import SimpleNamespace

    from mtcore.train.trackers import end_trackers

    calls: list = []
    run = SimpleNamespace(mark_preempting=lambda: calls.append("mark_preempting"), finish=lambda exit_code: calls.append(exit_code))
    board = SimpleNamespace(name="tensorboard", finish=lambda: calls.append("tensorboard closed"))
    engine = SimpleNamespace(accelerator=SimpleNamespace(is_main_process=True, trackers=[SimpleNamespace(name="wandb", run=run), board]))
    end_trackers(engine, exit_code=EXIT_CODE)
    assert calls == ["mark_preempting", 143, "tensorboard closed"] and engine.accelerator.trackers == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal that hangs up, as Linux does it")
def test_a_closed_terminal_sighup_preempts_with_a_checkpoint_and_the_hung_up_stdout_breaks_nothing(tmp_path, config, helpers):
    """The ssh session of ``mt train`` drops: its terminal hangs up (SIGHUP, and every later write to it fails with
    EIO). The run stops after the step like a preemption: checkpoint, event, the resume line (stderr here is a file)."""
    import fcntl
    import pty
    import termios
    import threading

    run, errors = tmp_path / "run", tmp_path / "stderr.txt"
    master, terminal = pty.openpty()

    def own_terminal() -> None:  # the child leads a session whose controlling terminal is the pty, as a login shell's job
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a shell's job has it, even when these tests run under nohup

    def drain() -> None:
        try:
            while os.read(master, 4096):
                pass
        except OSError:
            pass

    command = helpers.mt_command("train", str(config), DELAY, "logging.progress=plain", "--output-dir", str(run))
    with errors.open("w") as stderr:
        process = subprocess.Popen(command, stdin=terminal, stdout=terminal, stderr=stderr, env=helpers.subprocess_env(),
                                   preexec_fn=own_terminal)
    os.close(terminal)
    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.time() + 90
        while _logged_step(run) < LOG_EVERY:
            assert process.poll() is None and time.time() < deadline, errors.read_text()[-3000:]
            time.sleep(0.02)
        signalled_at = _logged_step(run)
        os.close(master)  # the terminal hangs up
        assert process.wait(timeout=90) == EXIT_CODE, errors.read_text()[-3000:]
    finally:
        _kill(process)
    text = errors.read_text()
    assert "Traceback" not in text and "unexpected" not in text, text[-3000:]
    _check_preempted(run, text, signalled_at, helpers)
    assert next(e for e in helpers.read_events(run) if e["event"] == "preempted")["signal"] == "SIGHUP"


def test_under_nohup_a_sighup_changes_nothing_and_the_run_finishes(tmp_path, config, helpers):
    """nohup mt train ... &: SIGHUP is ignored when the run starts, and a closed terminal must not stop it (the SIGHUP
    preemption caught it whatever its setting)."""
    run = tmp_path / "run"
    process = subprocess.Popen(helpers.mt_command("train", str(config), DELAY, "--output-dir", str(run)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=helpers.subprocess_env(),
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        deadline = time.time() + 90
        while _logged_step(run) < LOG_EVERY:
            assert process.poll() is None and time.time() < deadline, process.stderr.read()[-3000:]
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGHUP)
        _, stderr = process.communicate(timeout=90)
    finally:
        _kill(process)
    assert process.returncode == 0, stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["steps"] == MAX_STEPS
    assert not [e for e in helpers.read_events(run) if e["event"] == "preempted"]


def test_a_progress_line_written_as_the_terminal_hangs_up_breaks_nothing(monkeypatch):
    """The hang-up makes a write fail (EIO) before its SIGHUP's handler runs: that write raised "unexpected OSError"
    (the pseudo-terminal test above failed so now and then)."""
    import builtins
    import errno

    from mtcore.train import progress

    def hung_up(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(progress, "_closed", [])
    monkeypatch.setattr(builtins, "print", hung_up)
    progress.say("step 4/16: a loss 0.6931")  # no error
    monkeypatch.setattr(builtins, "print", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OSError):  # another error is not a hang-up
        progress.say("step 5/16")
