"""What a sweep (``--seeds``, ``--grid``) checks before it trains, and how it stops on Ctrl-C between its runs.

A Ctrl-C inside a run's training loop is that run's (:class:`~mtcore.train.preemption.TrainingInterrupted`, with its
latest checkpoint); one outside it — while the next run is built, as a run finishes (its ``curves.png``, noted by the
loop: :func:`~mtcore.train.preemption.take_late_interrupt`), in the sweep's own bookkeeping between runs — is turned
into the same exception by :func:`between_runs`, so ``mt train`` prints the ``--resume`` command whenever it comes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError
from mtcore.train.preemption import TrainingInterrupted


def between_runs(run: Path, finished: int | None = None, **where: Any) -> TrainingInterrupted:
    """The stop of a sweep by Ctrl-C outside a run's training loop (``where``: ``seed=`` or ``grid_run=``): after ``run``
    finished at step ``finished``, or (``finished`` None) as ``run`` was being built: --resume continues it from its
    latest checkpoint, if it has one."""
    if finished is None:
        from mtcore.train.checkpoint import Checkpoints

        done = Checkpoints(run / "checkpoints").complete()
        step, checkpoint = done[-1] if done else (0, None)
        stop = TrainingInterrupted(step, checkpoint, run)
    else:
        stop = TrainingInterrupted(finished, None, run)
    stop.finished = finished  # type: ignore[attr-defined]
    for key, value in where.items():
        setattr(stop, key, value)
    return stop


def refuse_other_seeds(folder: Path, seeds: Sequence[int], where: str) -> None:
    """A ConfigError when ``folder``'s ``seeds.json`` lists seeds ``seeds`` leaves out: a new command would rewrite it with
    its seeds alone, beside the others' runs. ``where``: how to name the folder (``--output-dir X``)."""
    from mtcore.train.seeds import listed_seeds

    listed = listed_seeds(folder)
    left_out = [seed for seed in listed if seed not in seeds]
    if left_out:
        every = ",".join(str(seed) for seed in [*listed, *(s for s in seeds if s not in listed)])
        raise ConfigError(f"{where} holds the runs of seeds {', '.join(map(str, listed))} (seeds.json), which --seeds leaves out "
                          f"({', '.join(map(str, left_out))}); to add seeds, give them all: --seeds {every} --resume (the same "
                          "config); or choose another --output-dir")


def refuse_trained_combinations(base: Path, combos: Sequence[Sequence[str]], seeds: Sequence[int] | None, resume: bool) -> None:
    """Before any training: without ``--resume``, a combination whose folder already holds a run stops the command; with
    ``seeds``, so does a combination whose ``seeds.json`` lists seeds they leave out (:func:`refuse_other_seeds`)."""
    from mtcore.train.grid import run_name
    from mtcore.train.run_dir import RunDir

    for combo in combos:
        run = base / run_name(combo)
        if seeds:
            refuse_other_seeds(run, seeds, f"--output-dir {base}: its run {run.name}")
        if resume:
            continue
        trained = (run / "seeds.json").is_file() or any(RunDir(p).has_run() for p in run.glob("seed-*")) if seeds else RunDir(run).has_run()
        if run.is_dir() and trained:
            raise ConfigError(f"--grid {' '.join(combo)}: {run} already holds a run; add --resume to keep the finished runs and "
                              "continue the rest, or choose another --output-dir")
