"""Full-state checkpoints, written atomically, for exact resume.

Layout of ``<run>/checkpoints/step-000123/``::

    model.safetensors     the model's weights (safetensors; shared tensors handled)
    optimizer.{safetensors,json}   optimizer state
    trainer.{safetensors,json}     scheduler, grad scaler, loss-strategy parameters
    rng-<rank>.{safetensors,json}  python / numpy / torch / CUDA RNG states of each process
    sampler.json          the batch sampler's position
    state.json            step, best score and step, early-stopping count, counters, each task's labels (written last)

No file is a pickle: tensors are in safetensors, the rest in JSON (:mod:`mtcore.train.state_files`).

A checkpoint is built in ``checkpoints/.tmp-step-000123`` and renamed into place with
``os.replace``; a directory without ``state.json`` or with a ``.tmp-`` name is never read, so a
``kill -9`` at any moment leaves the previous checkpoint intact. Only the main process writes
shared files; every process writes its own RNG file; all wait for each other.
Retention keeps the last ``keep_last`` checkpoints plus the best one. A complete checkpoint
whose files were damaged later (removed, cut short by a copy) is a one-line ModelFileError naming
the file and the fix (delete it: ``--resume`` then takes the one before).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtcore.errors import ConfigError, ModelFileError
from mtcore.outputs import share_modes
from mtcore.train.checkpoint_checks import (check_rng, check_sampler_state, check_scheduler_state, check_task_data, check_task_labels,
                                            check_train_state, damaged, task_labels, task_rows)
from mtcore.train.state_files import load_state, save_state

STEP_DIR = re.compile(r"^step-(\d{6,})$")


@dataclass
class TrainState:
    """The loop's counters: everything besides tensors that a resumed run needs."""

    step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    examples_seen: int = 0
    tokens_seen: int = 0
    stopped_early: bool = False
    last_eval_step: int | None = None
    last_checkpoint_step: int | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)
    best_metrics: dict[str, float] = field(default_factory=dict)
    #: the logging window open at the checkpoint (:meth:`~mtcore.train.monitor.LossMeter.window`), continued on resume
    log_window: dict[str, Any] = field(default_factory=dict)
    #: torch's CPU thread count when the checkpoint was written: CPU kernels split their sums by it, so a resume with
    #: another count differs in the last bits (``--resume`` warns); ``None`` in checkpoints written before it was kept
    cpu_threads: int | None = None
    #: seconds of training up to the checkpoint, over every process that trained the run (a resumed run adds its own)
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ---- RNG --------------------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """Every RNG state a training step can touch, as tensors and plain data."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states saved by :func:`capture_rng`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():  # a machine with fewer GPUs visible: the ones it has
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


# ---- reading / writing pieces -------------------------------------------------------------------
def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(".tmp-" + path.name)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON file; a missing, truncated or damaged one is a one-line ModelFileError naming it."""
    if not path.is_file():
        raise ModelFileError(f"checkpoint file {str(path)!r} is missing; the checkpoint is incomplete, delete it or resume from an earlier one")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ModelFileError(f"checkpoint file {str(path)!r} is unreadable ({type(exc).__name__}: truncated or damaged); "
                             "delete the checkpoint or resume from an earlier one") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"checkpoint file {str(path)!r} holds a {type(data).__name__}, not an object (damaged); "
                             "delete the checkpoint or resume from an earlier one")
    return data


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """The model's weights as one safetensors file (tied/shared tensors written once)."""
    from safetensors.torch import save_model

    save_model(model, str(path))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load weights written by :func:`save_weights`; every key must match."""
    from safetensors.torch import load_model

    from safetensors import SafetensorError

    if not path.is_file():
        raise ModelFileError(f"checkpoint weights {str(path)!r} are missing; the checkpoint is incomplete, delete it or resume from an earlier one")
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"checkpoint weights {str(path)!r} are unreadable (truncated or damaged: {' '.join(str(exc).split())}); "
                             "delete this checkpoint to resume from an earlier one") from None
    if missing or unexpected:
        what = f"missing {sorted(missing)[:3]}" if missing else f"unexpected {sorted(unexpected)[:3]}"
        raise ModelFileError(f"checkpoint weights {str(path)!r} do not match the model ({what}); resume with the same config")


# ---- the checkpoint directory ---------------------------------------------------------------------
class Checkpoints:
    """The ``checkpoints/`` directory of a run: save atomically, find the latest, prune."""

    def __init__(self, root: str | Path, keep_last: int = 2, keep_best: bool = True) -> None:
        self.root = Path(root)
        self.keep_last = keep_last
        self.keep_best = keep_best

    def path(self, step: int) -> Path:
        return self.root / f"step-{step:06d}"

    def complete(self) -> list[tuple[int, Path]]:
        """Complete checkpoints (with ``state.json``), oldest first."""
        found = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                match = STEP_DIR.match(entry.name)
                if match and (entry / "state.json").is_file():
                    found.append((int(match.group(1)), entry))
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1][1] if done else None

    def clean_temporary(self) -> None:
        """Remove half-written checkpoints left by a killed run."""
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.name.startswith(".tmp-") or entry.name.startswith(".old-"):
                    shutil.rmtree(entry, ignore_errors=True)

    def save(self, step: int, accelerator: Any, write_shared: Callable[[Path], None], write_rank: Callable[[Path], None],
             best_step: int | None = None) -> Path:
        """Write checkpoint ``step`` on every process (shared files by the main one) and prune."""
        target = self.path(step)
        tmp = self.root / f".tmp-{target.name}"
        if accelerator.is_main_process:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        accelerator.wait_for_everyone()
        self._writing(tmp, target, write_rank)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._writing(tmp, target, write_shared)  # writes state.json last
            share_modes(tmp)  # safetensors makes private files
            if target.exists():
                old = self.root / f".old-{target.name}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
            self.prune(best_step)
        accelerator.wait_for_everyone()
        return target

    @staticmethod
    def _writing(tmp: Path, target: Path, write: Callable[[Path], None]) -> None:
        """Run ``write(tmp)``; a full disk (or any failed write) removes the partial checkpoint and is one line."""
        import errno

        from mtcore.errors import OutputError
        from mtcore.outputs import write_error, write_failures, write_fix

        try:
            write(tmp)
        except write_failures() as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            error = write_error(target, exc)
            if error.errno in {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}:
                fix = "free some space, or keep fewer checkpoints (checkpoint.keep_last)"
            else:  # no permission, the file-size limit (ulimit -f), ...: what to do, when known
                fix = write_fix(error.errno, target.parent)
            raise OutputError(f"{error}; {fix}" if fix else str(error), errno=error.errno) from None
        except BaseException:  # Ctrl-C (or any error) half-way: no half-written checkpoint stays behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def prune(self, best_step: int | None) -> None:
        """Keep the last ``keep_last`` complete checkpoints and (``keep_best``) the best one."""
        done = self.complete()
        keep = {step for step, _ in done[-self.keep_last:]}
        if self.keep_best and best_step is not None:
            keep.add(best_step)
        for step, path in done:
            if step not in keep:
                shutil.rmtree(path, ignore_errors=True)


def check_best_to_model(config: Any) -> None:
    """``checkpoint.best_to_model`` needs evaluations while training and the best checkpoint kept (a ConfigError naming the fix)."""
    if not config.checkpoint.best_to_model:
        return
    if config.evaluation.every is None:
        raise ConfigError("config key 'checkpoint.best_to_model' needs 'evaluation.every' (evaluate every N steps): without "
                          "evaluations while training there is no best checkpoint to take; set evaluation.every or remove best_to_model")
    if not config.checkpoint.keep_best:
        raise ConfigError("config key 'checkpoint.best_to_model' needs 'checkpoint.keep_best: true': model/ is written from the best "
                          "checkpoint, which keep_best false deletes; set checkpoint.keep_best=true or remove best_to_model")


def best_checkpoint_for_model(checkpoints: Checkpoints, state: TrainState) -> tuple[Path | None, str]:
    """The best checkpoint whose weights ``model/`` takes at the end of a run (``checkpoint.best_to_model``), or
    ``None`` and why the final weights stay: nothing was scored, the final step is the best, or it was deleted."""
    if state.best_step is None:
        return None, "no evaluation scored the model (no labelled rows in the evaluation split?)"
    if state.best_step == state.step:
        return None, f"the final step {state.step} is the best one"
    path = checkpoints.path(state.best_step)
    if not (path / "state.json").is_file():
        return None, f"the best checkpoint ({path}) is gone (deleted while checkpoint.keep_best was false?)"
    return path, ""


def write_checkpoint_files(directory: Path, *, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                           strategy: torch.nn.Module, sampler: Any, state: TrainState) -> None:
    """The shared files of a checkpoint (main process); ``state.json`` last."""
    save_weights(model, directory / "model.safetensors")
    save_state(optimizer.state_dict(), directory / "optimizer")
    trainer = {
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "strategy": dict(strategy.state_dict()),  # tensors, and plain data from a strategy's get_extra_state
    }
    try:
        save_state(trainer, directory / "trainer")
    except TypeError as exc:  # what a plugin's strategy keeps: only tensors and plain data have a safe file form
        from mtcore.errors import MtError

        raise MtError(f"loss strategy {type(strategy).__module__}.{type(strategy).__qualname__} keeps state a checkpoint "
                      f"cannot hold: {str(exc).removeprefix('cannot save state at trainer.')}; keep tensors or plain data "
                      "(numbers, strings, lists, dicts) in its state_dict / get_extra_state") from None
    _write_json(directory / "sampler.json", sampler.state_dict())
    _write_json(directory / "state.json", {**state.to_dict(), "cpu_threads": torch.get_num_threads(), "task_labels": task_labels(model),
                                           "task_rows": task_rows(sampler)})


def write_rank_files(directory: Path, rank: int) -> None:
    """This process's RNG states."""
    save_state(capture_rng(), directory / f"rng-{rank}")


def read_checkpoint(directory: Path, *, model: torch.nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                    strategy: torch.nn.Module, sampler: Any, rank: int, processes: int = 1) -> tuple[TrainState, dict[str, Any]]:
    """Load a checkpoint into the live objects; returns the state and this rank's RNG states
    (restore them with :func:`restore_rng` right before the first resumed step). A checkpoint written
    by another number of processes is refused: the global batch (and with ``epochs`` the number of
    steps, so the learning-rate schedule) would change under the resumed run. Rank 0 reads every
    rank's RNG file before anything is loaded, so a missing or damaged ``rng-<rank>`` is a one-line
    ModelFileError from the main process (the others' would come later, or not at all)."""
    sampler_state, state_data = _read_json(directory / "sampler.json"), _read_json(directory / "state.json")  # before anything is loaded
    saved = sampler_state.get("world_size") if isinstance(sampler_state, dict) else None
    if isinstance(saved, int) and saved != processes:
        launch = f"torchrun --nproc_per_node {saved} -m mtcore.cli.app train ..." if saved > 1 else "mt train ... (one process)"
        raise ConfigError(f"cannot resume from {directory}: it was written by {saved} process(es) and this launch has {processes}, "
                          f"so the global batch (and with epochs, the steps and the learning-rate schedule) would change; "
                          f"resume under a launch of {saved}: {launch} --resume")
    known = isinstance(saved, int)  # a checkpoint of this many processes has one RNG file per rank
    if rank == 0 and processes > 1:  # the main process reads every rank's: a damaged one is named by the process that speaks
        for other in range(1, processes):
            load_state(_rng_stem(directory, other, known))
    rng = load_state(_rng_stem(directory, rank, known))
    check_rng(rng, _rng_stem(directory, rank, known).with_suffix(".json"))
    check_train_state(state_data, directory / "state.json", TrainState)
    check_sampler_state(sampler_state, directory / "sampler.json")
    check_task_labels(directory, model, state_data)
    check_task_data(directory, sampler, state_data)
    load_weights(model, directory / "model.safetensors")
    try:
        optimizer.load_state_dict(load_state(directory / "optimizer"))
    except ValueError as error:  # torch: "loaded state dict contains a parameter group that doesn't match ..."
        saved = directory.parent.parent / "model"
        warm = f", or one from the run's model: encoder.path={saved} encoder.load_heads=true" if saved.is_dir() else ""
        raise ConfigError(f"cannot resume from {directory}: its optimizer state does not fit this model's trainable parameters "
                          f"({error}); it was written by another mtcore version or for another model: start a new run{warm}") from None
    trainer = load_state(directory / "trainer")
    if not isinstance(trainer, dict) or "scheduler" not in trainer:
        raise ModelFileError(f"checkpoint file {str(directory / 'trainer.json')!r} holds no scheduler state; delete the checkpoint "
                             "or resume from an earlier one")
    check_scheduler_state(trainer["scheduler"], scheduler, directory / "trainer.json")
    scheduler.load_state_dict(trainer["scheduler"])
    if scaler is not None and trainer.get("scaler"):
        scaler.load_state_dict(trainer["scaler"])
    if trainer.get("strategy"):
        strategy.load_state_dict(trainer["strategy"])
    try:
        sampler.load_state_dict(sampler_state)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a task sampler's own state, edited
        raise damaged(directory / "sampler.json", f"its sampler state does not load ({type(exc).__name__}: {exc})") from None
    return TrainState.from_dict(state_data), rng


def warn_about_cpu_threads(saved: int | None, now: int, checkpoint: Path, device: str) -> None:
    """On CPU a resume is bit-identical to the uninterrupted run only with the thread count the checkpoint was written with."""
    if device != "cpu" or saved is None or saved == now:
        return
    import warnings

    warnings.warn(f"--resume: {checkpoint} was written with {saved} CPU threads and this process has {now}; on CPU the kernels "
                  f"split their sums by thread, so the resumed run differs from an uninterrupted one in the last digits; for "
                  f"bit-identical weights resume with OMP_NUM_THREADS={saved}", UserWarning, stacklevel=2)


def _rng_stem(directory: Path, rank: int, known: bool) -> Path:
    """Where ``rank``'s RNG states are; a checkpoint of unknown process count without them: rank 0's."""
    stem = directory / f"rng-{rank}"
    return stem if known or stem.with_name(stem.name + ".json").is_file() else directory / "rng-0"
