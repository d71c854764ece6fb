"""``mt train CONFIG.yaml [key=value ...] [--output-dir DIR] [--resume] [--seeds N|A,B,C] [--grid KEY=V1,V2 ...]``.

This module imports nothing heavy: the engine is imported inside the command, so ``mt --help``
stays fast. Config mistakes exit with code 2 and one line; training failures (NaN loss, out of
memory) with code 1; a run preempted by SIGTERM, SIGUSR1 or SIGHUP (:mod:`mtcore.train.preemption`)
writes a checkpoint, prints one line with the command that continues it, and exits with 143.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from mtcore.errors import UsageError
from mtcore.train.progress import say

if TYPE_CHECKING:
    from mtcore.train.trainer import Trainer


def train(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Training config (YAML file)."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", help="Config overrides: dotted keys, e.g. optimizer.lr=1e-4 tasks.0.max_length=64."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="Run directory (default: the run's folder for a run's "
                                              "own RUN/config.yaml, else output_dir in the config, else runs/<config stem>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output directory from its latest checkpoint "
                                "(mt train RUN/config.yaml --resume: the run in RUN)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", metavar="N|A,B,C", help="Train once per seed: a count (3: seed, seed+1, seed+2) or a "
                                        "list (1,7,42); runs go to OUTPUT/seed-<seed>, the spread of the metrics to OUTPUT/seeds.json."),
    grid: Optional[List[str]] = typer.Option(None, "--grid", metavar="KEY=V1,V2", help="Train every combination of these values "
                                             "(repeat for more keys); runs go to OUTPUT/<key=value,...>, a list of them to OUTPUT/grid.json."),
    trials: Optional[int] = typer.Option(None, "--trials", metavar="N", min=1, help="With --grid: train N of its combinations, drawn "
                                         "at random (random search; the same N for the same grid and seed)."),
    search: str = typer.Option("random", "--search", metavar="random|tpe", help="With --trials: random draws the N combinations at "
                               "once; tpe chooses each from the scores of those trained before (Optuna's TPE; needs mtcore[search])."),
) -> None:
    """Train a multitask model from a YAML config; artefacts go to the run directory."""
    from mtcore.train.distributed import let_the_main_process_report
    from mtcore.train.preemption import KeptSignals, Preempted, TrainingInterrupted

    from mtcore.cli.output import keep_going_when_stdout_closes

    keep_going_when_stdout_closes()  # `mt train ... | head`: the run, and the sweep, go on without their lines
    try:
        with KeptSignals():  # a SIGTERM/SIGUSR1/SIGHUP while the run is built stops it after its first step, with a checkpoint
            if trials is not None and not grid:
                raise UsageError("--trials draws runs from a --grid; add --grid KEY=V1,V2 (or leave --trials out)")
            if search != "random" and trials is None:
                raise UsageError(f"--search {search} chooses --trials N combinations of a --grid; add --grid KEY=V1,V2 and --trials N")
            _train(config, overrides or [], output_dir, resume, seeds, grid or [], trials, search)
    except Preempted as stop:  # every process stopped at the same step, with one checkpoint: the main one says so
        _report_preemption(stop, config, overrides or [], seeds, grid or [], trials, search)
        raise typer.Exit(stop.exit_code) from None
    except TrainingInterrupted as stop:  # Ctrl-C: the command that resumes from the latest checkpoint
        _report_preemption(stop, config, overrides or [], seeds, grid or [], trials, search)
        raise typer.Exit(130) from None
    except Exception as error:  # under torchrun every process fails alike: the main one reports it (once)
        let_the_main_process_report(error)
        raise


def _train(config: Path, overrides: list[str], output_dir: Optional[str], resume: bool, seeds: Optional[str], grid: list[str],
           trials: Optional[int] = None, search: str = "random") -> None:
    from mtcore.train.trainer import Trainer

    if grid:
        _train_grid(config, overrides, output_dir, resume, seeds, grid, trials, search)
        return
    if seeds is not None:
        _train_seeds(config, overrides, output_dir, resume, seeds)
        return
    trainer = Trainer(config, output_dir, overrides=overrides, resume=resume)
    if resume and _already_finished(trainer):
        return
    summary = trainer.train()  # a run that fails while starting leaves nothing behind (build_engine)
    engine = trainer.engine
    if engine is not None and engine.is_main:
        best = summary.get("best") or {}
        final = summary.get("final") or {}
        parts = [f"steps {summary['steps']}"]
        if final.get("aggregate") is not None:
            parts.append(f"final aggregate {final['aggregate']:.4f}")
        elif final.get("step") is not None:  # evaluated, but no labelled rows: say so, not a missing number
            parts.append("no task scored")
        if best.get("aggregate") is not None:
            parts.append(f"best {best['aggregate']:.4f} at step {best['step']}")
        say("trained: " + ", ".join(parts) + f"; run directory {summary['run_dir']}")


def _already_finished(trainer: Trainer) -> bool:
    """``--resume`` of a finished run (:meth:`Trainer.finished_summary`): say so; nothing is trained or changed."""
    from mtcore.train.distributed import is_main_process

    summary = trainer.finished_summary()
    if summary is None:
        return False
    if is_main_process():
        final = (summary.get("final") or {}).get("aggregate")
        shown = f", final aggregate {final:.4f}" if isinstance(final, (int, float)) else ""
        say(f"already trained: steps {summary.get('steps')}{shown}; run directory {trainer.output_dir} (its summary.json says "
            "it finished: --resume has nothing to continue, and nothing was changed)")
    return True


def _train_seeds(config: Path, overrides: list[str], output_dir: Optional[str], resume: bool, text: str) -> None:
    from rich.table import Table

    from mtcore.cli.output import stdout
    from mtcore.train.config_io import load_config
    from mtcore.train.distributed import main_process_warnings
    from mtcore.train.seeds import SUMMARY, is_main_process, parse_seeds, train_seeds
    from mtcore.train.trainer import resolve_output_dir

    with main_process_warnings():
        loaded = load_config(config, overrides)
    base = resolve_output_dir(loaded, output_dir, config)
    chosen = parse_seeds(text, loaded.seed)

    def report(seed: int, summary: dict) -> None:
        final = (summary.get("final") or {}).get("aggregate")
        shown = f"final aggregate {final:.4f}" if isinstance(final, (int, float)) else "no evaluation"
        say(f"seed {seed}: {shown}; run directory {summary.get('run_dir')}")

    spread = train_seeds(config, base, chosen, overrides=overrides, resume=resume, report=report)
    if not is_main_process():  # under torchrun: the main process reports
        return
    if not spread["final"]:
        say(f"no final metrics to compare (evaluation.at_end is false?); runs in {base}")
        return
    from rich.markup import escape

    table = Table(title=f"final metrics over {len(chosen)} seed{'s' if len(chosen) > 1 else ''} ({', '.join(map(str, chosen))})")
    for column in ("metric", "mean", "std", "min", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, stats in spread["final"].items():
        if key.endswith("/loss"):
            continue
        table.add_row(escape(key), *("-" if stats[k] is None else f"{stats[k]:.4f}" for k in ("mean", "std", "min", "max")))  # one seed: no std
    stdout.print(table)
    say(f"spread written to {base / SUMMARY}")


def _train_grid(config: Path, overrides: list[str], output_dir: Optional[str], resume: bool, seeds: Optional[str], axes: list[str],
                trials: Optional[int] = None, search: str = "random") -> None:
    from rich.markup import escape
    from rich.table import Table

    from mtcore.cli.output import stdout
    from mtcore.train.config_io import load_config
    from mtcore.train.distributed import main_process_warnings
    from mtcore.train.grid import SUMMARY, align_grid, parse_grid, train_grid
    from mtcore.train.seeds import is_main_process, parse_seeds
    from mtcore.train.trainer import resolve_output_dir

    grid = parse_grid(axes)
    with main_process_warnings():
        loaded = load_config(config, overrides)
    base = resolve_output_dir(loaded, output_dir, config)
    grid = align_grid(base, grid)  # as the runs already there spell it: their table columns and folders
    chosen = parse_seeds(seeds, loaded.seed) if seeds is not None else None

    def report(combo: list[str], entry: dict) -> None:
        final = entry.get("final")
        shown = f"final aggregate {final:.4f}" if isinstance(final, (int, float)) else "no evaluation"
        if entry.get("error"):
            shown = f"failed: {entry['error']}"
        say(f"{' '.join(combo)}: {shown}{' (mean over seeds)' if chosen else ''}; run directory {entry['run_dir']}")

    entries = train_grid(config, base, grid, overrides=overrides, seeds=chosen, resume=resume, report=report, trials=trials,
                         trial_seed=loaded.seed, search=search)
    if not is_main_process():
        return
    table = Table(title=f"{len(entries)} run{'s' if len(entries) != 1 else ''} of the grid, best final aggregate first"
                  + (f" (means over {len(chosen)} seeds)" if chosen else ""))
    for column in (*(key for key, _ in grid), "final aggregate", "best aggregate"):
        table.add_column(escape(column), justify="right" if "aggregate" in column else "left")
    score = lambda e: e["final"] if isinstance(e.get("final"), (int, float)) else float("-inf")  # noqa: E731
    for entry in sorted(entries, key=score, reverse=True):
        values = [escape(o.partition("=")[2]) for o in entry["overrides"]]  # '[query, value]' is a value, not markup
        table.add_row(*values, *(f"{entry[k]:.4f}" if isinstance(entry.get(k), (int, float)) else "failed" if entry.get("error") else "-"
                                 for k in ("final", "best")))
    stdout.print(table)
    failed = [" ".join(entry["overrides"]) for entry in entries if entry.get("error")]
    finished = [entry["run_dir"] for entry in entries if not entry.get("error") and entry.get("run_dir")]
    if failed:  # mt compare refuses a failed run: name the ones that finished
        import shlex

        shown = " ".join(shlex.quote(str(run)) for run in finished) if finished else ""
        hint = f"compare the finished runs with mt compare {shown}" if finished else "no run finished to compare"
    else:
        hint = f"compare the runs with mt compare {base}/*/"
    say(f"grid written to {base / SUMMARY}; {hint}")
    if failed:  # the others trained; the command still fails, so a script notices
        from mtcore.errors import MtError

        raise MtError(f"--grid: {len(failed)} of {len(entries)} runs failed ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''}); "
                      "their lines are above and in grid.json")


def _report_preemption(stop: Any, config: Path, overrides: list[str], seeds: Optional[str], grid: list[str] = (),
                       trials: Optional[int] = None, search: str = "random") -> None:
    """One line on stderr (main process): the step, the checkpoint and the command that continues the run."""
    import shlex
    import sys

    from mtcore.train.distributed import is_main_process, world_size

    if not is_main_process():
        return
    seed = getattr(stop, "seed", None)
    words = ["mt", "train", str(config), *overrides]
    grid_run = getattr(stop, "grid_run", None)
    if grid_run is not None:  # --grid: the output folder holds every combination's run
        words += [word for axis in grid for word in ("--grid", axis)] + (["--trials", str(trials)] if trials else [])
        words += ["--search", search] if search != "random" else []
        words += [*(["--seeds", str(seeds)] if seeds is not None else []), "--output-dir", str(Path(grid_run).parent)]
    elif seed is not None:  # --seeds: the output folder holds every seed's run
        words += ["--seeds", str(seeds), "--output-dir", str(stop.run_dir.parent)]
    else:
        words += ["--output-dir", str(stop.run_dir)]
    command = " ".join(shlex.quote(w) for w in [*words, "--resume"])
    launcher = " (under the same launcher)" if world_size() > 1 else ""
    where = f" of seed {seed}" if seed is not None else ""
    where += f" of grid run {Path(grid_run).name}" if grid_run is not None else ""
    if getattr(stop, "finished", None) is not None:  # Ctrl-C as a sweep's run finished: the next ones were not started
        at = f" (step {stop.finished})" if stop.finished else ""  # a --grid --seeds combination: its seeds' steps
        print(f"error: interrupted after the run{where} finished{at}; the next runs were not started; continue "
              f"with {command}{launcher}", file=sys.stderr, flush=True)
        return
    if isinstance(stop, KeyboardInterrupt):  # Ctrl-C: no checkpoint of its own
        since = f"the latest checkpoint is {stop.checkpoint}" if stop.checkpoint else "no checkpoint yet, so it starts over"
        print(f"error: interrupted at step {stop.step}{where}; {since}; continue with {command}{launcher}", file=sys.stderr, flush=True)
        return
    print(f"preempted at step {stop.step}{where}: checkpoint written to {stop.checkpoint}; continue with {command}{launcher}",
          file=sys.stderr, flush=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
