"""``mt average MODEL MODEL ... --output OUT``: one model whose weights are the mean of several (a soup of seeds, of a run's
last checkpoints); see :mod:`mtcore.model.averaging`. Imports nothing heavy at import time."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from mtcore.cli.inference import _info
from mtcore.cli.inference_options import TRUST_HELP, one_process
from mtcore.errors import UsageError


def average(
    models: List[Path] = typer.Argument(..., metavar="MODEL...", help="Two or more runs, saved models or checkpoints, of one shape "
                                        "(a --seeds or --grid folder: its runs)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the averaged model (a new or empty folder)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT when it holds a saved model."),
    greedy: bool = typer.Option(False, "--greedy", help="A greedy soup: from the best-scoring model down, keep each one only when "
                                "the average with it scores at least as well on the runs' evaluation split (models of other "
                                "hyper-parameters, e.g. a --grid's runs)."),
    device: Optional[str] = typer.Option(None, "--device", help="With --greedy: where the models are scored: cpu, cuda, cuda:1, ... "
                                         "(default: the GPU when there is one; the weights are averaged on the CPU)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
) -> None:
    """Average the weights of models trained alike (seeds, last checkpoints) into one model."""
    one_process("average")
    if device is not None and not greedy:
        raise UsageError("--device chooses where --greedy scores the models; add --greedy, or leave --device out")
    from mtcore.model.averaging import average_models, greedy_soup
    from mtcore.model.serialization import check_save_target
    from mtcore.predict.locate import load_model, locate

    models = [run for path in models for run in _seed_runs(path)]  # a --seeds or --grid folder: its runs
    locations = [locate(path) for path in models]  # every path's mistake before any model loads
    _refuse_twice(models, locations)
    target = output.expanduser()
    if any(_is_inside(target, location.model_dir) or _is_inside(location.model_dir, target) for location in locations):
        raise UsageError(f"{output}: is, holds or is inside one of the models being averaged; save the average to a folder of its own")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        saved = (target / "mtcore.json").is_file()
        raise UsageError(f"{output}: is not empty; choose a new folder" + (", or pass --overwrite to replace the model saved there"
                                                                           if saved else " (it holds no saved model to replace)"))
    check_save_target(target)
    where = dict(zip(map(str, models), locations))

    def load(path: str):
        return load_model(where[path], "cpu", trust_remote_code)

    if greedy:
        from mtcore.predict.predictor import resolve_device

        where_scored, data = resolve_device(device), str(models[0])
        _info(f"greedy soup of {len(models)} models, each scored on {data}'s evaluation data (as mt evaluate {data} scores it; "
              "lower-is-better metrics count negated)")
        soup = greedy_soup([str(path) for path in models], load,
                           lambda path, model: _score(data, path, model, trust_remote_code, where_scored))
        _report(soup)
        soup.model.save_pretrained(target, tokenizer=soup.model.tokenizer)
        _info(f"averaged {len(soup.kept)} of {len(models)} models into {output}; score it with: {_scoring(output, soup.model)}")
        return
    model = average_models([str(path) for path in models], load)
    model.save_pretrained(target, tokenizer=model.tokenizer)
    _info(f"averaged {len(models)} models into {output}; score it with: {_scoring(output, model)}")


def _score(data: str, path: str, model, trust_remote_code: bool, device) -> float:
    """The aggregate ``model`` (the one at ``path``, or a soup) scores on what ``data``'s run evaluates, on ``device``: every
    score of one greedy soup on the same rows (the soup is averaged on the CPU and moved there to be scored)."""
    from mtcore.errors import MtError
    from mtcore.predict.evaluate import evaluate_path
    from mtcore.predict.predictor import quiet_datasets

    try:
        with quiet_datasets():
            report = evaluate_path(data, device=device, trust_remote_code=trust_remote_code, model=model.to(device))
    except MtError as exc:
        raise UsageError(f"{path}: cannot be scored on {data}'s evaluation data ({exc}); --greedy compares scores on held-out "
                         "rows: give the run directories (their configs say where the data is), or average without --greedy") from None
    if report.aggregate is None:
        raise UsageError(f"{path}: nothing to score on {data}'s evaluation data ({'; '.join(report.notes) or 'no labelled rows'}); "
                         "--greedy compares scores on held-out rows: average without --greedy")
    return float(report.aggregate)


def _report(soup) -> None:
    best = soup.kept[0]
    _info(f"  best alone: {best} ({soup.scores[best]:.4f})")
    for path, value, kept in soup.soup_scores:
        _info(f"  {'kept' if kept else 'left out'}: {path} ({soup.scores[path]:.4f} alone; the soup with it {value:.4f})")


def _refuse_twice(models: list[Path], locations: list) -> None:
    """One model given twice (a seeds folder and one of its seeds, two spellings of one path) would count double."""
    seen: dict[Path, Path] = {}
    for path, location in zip(models, locations):
        key = location.model_dir.resolve()
        if key in seen:
            raise UsageError(f"{path}: is {seen[key]} again (the same model would count twice); give each model once")
        seen[key] = path


def _scoring(output: Path, model) -> str:
    """How to score the average: ``mt evaluate OUT``, or with ``--input`` for tasks a run's config defined (``define:``):
    no installed plugin reads their data, and the average has no run config beside it."""
    from mtcore.predict.tasks import registered_task

    inline = [task_id for task_id in model.tasks if registered_task(task_id) is None]
    if not inline:
        return f"mt evaluate {output}"
    inline.sort(key=lambda task_id: model.tasks[task_id].get("kind") == "masked_lm")  # a task the model serves first
    rows = "a file of its texts" if model.tasks[inline[0]].get("kind") == "masked_lm" else "a labelled file of its rows"
    return f"mt evaluate {output} --tasks {inline[0]} --input FILE ({rows}: tasks a config defined have no data the model knows of)"


def _is_inside(path: Path, parent: Path) -> bool:
    try:
        return path.expanduser().resolve().is_relative_to(parent.expanduser().resolve())
    except OSError:
        return False


def _seed_runs(path: Path) -> list[Path]:
    """The finished runs of a ``mt train --seeds`` folder (``seeds.json`` beside ``seed-<seed>/``) or ``--grid`` folder
    (``grid.json`` beside a folder per combination), else ``[path]``."""
    kind = "seeds" if (path / "seeds.json").is_file() else "grid" if (path / "grid.json").is_file() else None
    if kind is None:
        return [path]
    from mtcore.train.seeds import seed_runs

    candidates = seed_runs(path) if kind == "seeds" else sorted(path.glob("*"), key=lambda p: p.name)  # seeds.json's seeds
    runs = [p for p in candidates if (p / "model" / "mtcore.json").is_file()]
    if kind == "grid":  # a --grid --seeds folder: each combination holds its seeds' runs
        runs = sorted([*runs, *(seed for p in path.iterdir() if (p / "seeds.json").is_file() for seed in _seed_runs(p))])
    if not runs:
        raise UsageError(f"{path}: a --{kind} folder without a finished run (<run>/model); finish them first")
    return runs


def register(app: typer.Typer) -> None:
    app.command("average")(average)
