"""The same run with several seeds, and their spread: ``mt train CONFIG --seeds 3``.

Small evaluation sets (PARus: 100 validation examples) move by several points from one seed to
the next, so one run says little. :func:`train_seeds` trains the config once per seed, each run in
``OUTPUT/seed-<seed>/`` (an ordinary run directory: ``mt evaluate``, ``mt predict`` and
``--resume`` work on it), and after each seed writes ``OUTPUT/seeds.json``: the seeds asked for
(``requested``), whether all of them have finished (``status``: ``completed`` or ``incomplete``), and
every final and best metric's mean, standard deviation (n - 1; ``null`` for one seed), min, max and
per-seed values. With ``resume`` a finished seed is kept as
it is, an interrupted one continues from its checkpoint and a missing one starts. A seed
preempted by SIGTERM/SIGUSR1/SIGHUP (:mod:`mtcore.train.preemption`) stops the whole command: the
remaining seeds are not started, and ``--resume`` continues from that seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, MtError
from mtcore.train.distributed import is_main_process
from mtcore.train.preemption import Preempted, TrainingInterrupted, take_late_interrupt
from mtcore.train.sweep_checks import between_runs, refuse_other_seeds

SUMMARY = "seeds.json"


#: More runs than this from one command is a typo (each seed is a whole training run).
MAX_SEEDS = 100


def parse_seeds(text: str, first: int) -> list[int]:
    """``"3"`` -> three seeds from ``first``; ``"1,7,42"`` -> those seeds."""
    raw = [p.strip() for p in str(text).split(",")]
    if len(raw) > 1 and not all(raw[:-1]):  # "5," is the list of one seed 5; "1,,2" is a typo
        raise ConfigError(f"--seeds {text!r}: an empty item in the list; give seeds like 1,7,42")
    parts = [p for p in raw if p]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: give a number of seeds (3) or a list of seeds (1,7,42)") from None
    if not parts:
        raise ConfigError(f"--seeds {text!r}: give a number of seeds (3) or a list of seeds (1,7,42)")
    if len(parts) == 1 and "," not in str(text):
        if numbers[0] < 1:
            raise ConfigError(f"--seeds {text!r}: give at least one seed")
        if numbers[0] > MAX_SEEDS:
            raise ConfigError(f"--seeds {text!r}: at most {MAX_SEEDS} seeds from one command (each is a whole training run)")
        numbers = [first + i for i in range(numbers[0])]
        if numbers[-1] >= 2**32:
            raise ConfigError(f"--seeds {text!r}: seeds from {first} would pass 2**32 - 1; lower the config's seed")
        return numbers
    if len(numbers) > MAX_SEEDS:
        raise ConfigError(f"--seeds: {len(numbers)} seeds; at most {MAX_SEEDS} from one command (each is a whole training run)")
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"--seeds {text!r}: give distinct seeds, e.g. 1,7,42")
    if any(not 0 <= n < 2**32 for n in numbers):
        raise ConfigError(f"--seeds {text!r}: seeds are integers from 0 to 2**32 - 1")
    return numbers


def seed_dir(output_dir: str | Path, seed: int) -> Path:
    return Path(output_dir) / f"seed-{seed}"


def seed_runs(output_dir: str | Path) -> list[Path]:
    """A ``--seeds`` folder's seed runs: those its ``seeds.json`` lists, else every ``seed-<seed>`` folder, by seed."""
    listed = listed_seeds(output_dir)
    if listed:
        return [seed_dir(output_dir, seed) for seed in listed]
    found = [p for p in Path(output_dir).glob("seed-*") if p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def listed_seeds(output_dir: str | Path) -> list[int]:
    """The seeds a ``--seeds`` folder's ``seeds.json`` lists (none: no such file, or unreadable)."""
    import json

    try:
        seeds = json.loads((Path(output_dir) / SUMMARY).read_text(encoding="utf-8")).get("seeds")
    except (OSError, ValueError, AttributeError):
        return []
    return [s for s in seeds if isinstance(s, int) and not isinstance(s, bool)] if isinstance(seeds, list) else []


def train_seeds(config: Any, output_dir: str | Path, seeds: Iterable[int], *, overrides: Iterable[str] = (), resume: bool = False,
                report: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``config`` once per seed (sequentially); returns (and writes) the spread of the metrics."""
    from mtcore.train.run_dir import write_json
    from mtcore.train.trainer import Trainer

    seeds, overrides = _checked_seeds(seeds), list(overrides)
    _refuse_a_run_directory(Path(output_dir))
    refuse_another_kind(Path(output_dir), "grid.json", "the runs of a grid", "--seeds puts one run per seed in OUTPUT/seed-<seed> "
                        "and their spread in OUTPUT/seeds.json", "seeds")
    refuse_other_seeds(Path(output_dir), seeds, f"--output-dir {output_dir}")
    take_late_interrupt()  # a Ctrl-C noted before this sweep (another run of this process) is not this sweep's
    summaries: dict[int, dict[str, Any]] = {}
    spread = seed_spread(summaries, requested=seeds)
    for seed in seeds:
        run = seed_dir(output_dir, seed)
        try:
            trainer = Trainer(config, output_dir=run, overrides=[*overrides, f"seed={seed}"], resume=resume and run.is_dir())
            summary = trainer.train()  # with resume, a finished seed run comes back as saved (this config's, or refused)
            if trainer.engine is None:
                summary = {**summary, "run_dir": str(run)}
            elif not trainer.engine.is_main:
                continue
        except (Preempted, TrainingInterrupted) as exc:  # SIGTERM/SIGUSR1/SIGHUP: the remaining seeds are not started; --resume continues this one, then the rest
            exc.seed = seed  # type: ignore[attr-defined]
            raise
        except KeyboardInterrupt:  # Ctrl-C while the seed's run was being built: --resume starts it again
            raise between_runs(run, seed=seed) from None
        except MtError as exc:
            raise _naming_the_seed(exc, seed) from None
        try:  # a Ctrl-C from here on comes after the seed's run finished
            summaries[seed] = summary
            trainer = None  # the seed's model and optimizer state go now, not whenever the garbage collector runs
            _free_memory()
            if report is not None and is_main_process():  # a seed already trained comes back on every process
                report(seed, summary)
            spread = seed_spread(summaries, requested=seeds)
            if is_main_process():  # after every seed: a later failure keeps the finished ones' spread, marked incomplete
                write_json(Path(output_dir) / SUMMARY, spread)
        except KeyboardInterrupt:
            raise between_runs(run, seed=seed, finished=int(summary.get("steps") or 0)) from None
        if seed != seeds[-1] and take_late_interrupt():  # Ctrl-C as the seed's run finished: the next seeds are not started
            raise between_runs(run, seed=seed, finished=int(summary.get("steps") or 0))
    return spread


def _free_memory() -> None:
    """Collect the finished seed's engine (held in reference cycles) and give its GPU memory back."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _refuse_a_run_directory(base: Path, puts: str = "--seeds puts one run per seed in OUTPUT/seed-<seed> and their spread in "
                            "OUTPUT/seeds.json", suffix: str = "seeds") -> None:
    """``--seeds`` writes ``OUTPUT/seed-<seed>/`` and ``OUTPUT/seeds.json`` (``--grid``: ``puts`` says what): not inside an
    existing run directory."""
    from mtcore.train.run_dir import RunDir

    run = RunDir(base)
    try:
        ours = run.config.is_file() and run.config.read_text(encoding="utf-8", errors="replace").startswith(RunDir.CONFIG_HEADER)
    except OSError:
        ours = False
    if ours or (base.is_dir() and run.has_run()):
        instead = base.parent if base.name.startswith("seed-") else Path(f"{base}-{suffix}")  # one seed of a --seeds folder
        raise ConfigError(f"--output-dir {base} is the run directory of a single run; {puts}: choose a folder of its own "
                          f"(e.g. --output-dir {instead})")


def refuse_another_kind(base: Path, marker: str, holds: str, puts: str, suffix: str) -> None:
    """A ConfigError when ``base`` is the folder of another kind of command (``marker``: ``grid.json`` of ``--grid``,
    ``seeds.json`` of ``--seeds``): mixing the two would hide one's runs from ``mt compare``. Before anything is written."""
    if (base / marker).is_file():
        raise ConfigError(f"--output-dir {base} holds {holds} ({marker}); {puts}: choose a folder of its own "
                          f"(e.g. --output-dir {base}-{suffix})")


def _checked_seeds(seeds: Any) -> list[int]:
    """A non-empty list of distinct seeds in 0..2**32-1 (a count is :func:`parse_seeds`' job)."""
    if isinstance(seeds, (int, str)) or not isinstance(seeds, Iterable):
        raise ConfigError(f"seeds must be a list of seeds, e.g. [1, 7, 42], got {seeds!r} (parse_seeds('3', first) makes a count a list)")
    chosen = list(seeds)
    if not chosen or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32 for s in chosen):
        raise ConfigError(f"seeds must be a non-empty list of integers from 0 to 2**32 - 1, got {chosen!r}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"seeds must be distinct, got {chosen!r}")
    return chosen


def _naming_the_seed(exc: MtError, seed: int) -> MtError:
    try:
        named = type(exc)(f"seed {seed}: {exc}")
    except Exception:  # an error class with another constructor: as it is
        return exc
    named.__dict__.update(exc.__dict__)  # e.g. that a DDP process already waited for the main one to report
    return named


def seed_spread(summaries: Mapping[int, Mapping[str, Any]], requested: Iterable[int] | None = None) -> dict[str, Any]:
    """Mean, std (n - 1), min, max and per-seed values of every final and best metric and aggregate; with ``requested``
    (the seeds asked for), those seeds and ``status``: ``completed`` when every one of them has a summary, else
    ``incomplete``."""
    out: dict[str, Any] = {"seeds": sorted(summaries), "runs": {str(s): summaries[s].get("run_dir") for s in sorted(summaries)}}
    if requested is not None:
        requested = list(requested)
        out.update(requested=requested, status="completed" if set(requested) <= set(summaries) else "incomplete")
    for part in ("final", "best"):
        values: dict[str, dict[int, float]] = {}
        for seed, summary in summaries.items():
            section = summary.get(part) or {}
            numbers = {**(section.get("metrics") or {}), "aggregate": section.get("aggregate")}
            for key, value in numbers.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    values.setdefault(key, {})[seed] = float(value)
        out[part] = {key: _stats(per_seed) for key, per_seed in sorted(values.items())}
    return out


def _stats(per_seed: Mapping[int, float]) -> dict[str, Any]:
    numbers = list(per_seed.values())
    n = len(numbers)
    return {"mean": statistics.fmean(numbers), "std": statistics.stdev(numbers) if n > 1 else None,  # one value: no spread
            "min": min(numbers), "max": max(numbers), "n": n,
            "values": {str(seed): value for seed, value in sorted(per_seed.items())}}
