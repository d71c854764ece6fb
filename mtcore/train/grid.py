"""A grid of runs from one config: ``mt train CONFIG --grid optimizer.lr=1e-5,3e-5 --grid sampler.options.temperature=1,2``.

Every combination of the ``--grid`` values is one ordinary run (``mt evaluate``, ``mt predict``,
``mt compare`` and ``--resume`` work on it) in ``OUTPUT/<key=value,key=value>/``; with ``--seeds``
that folder holds the combination's seed runs and their ``seeds.json``. Every combination's config
is checked before the first run starts, so a typo in the last value costs no training. After every
run, ``OUTPUT/grid.json`` lists the combinations with their run folders and final and best
aggregates (means over seeds). With ``resume`` a finished run is kept as it is, an interrupted one
continues from its checkpoint and a missing one starts; a run preempted by SIGTERM/SIGUSR1/SIGHUP stops the
whole command (``--resume`` continues from it).
"""

from __future__ import annotations

import collections
import itertools
import math
import random
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, MtError
from mtcore.train.distributed import is_main_process, world_size
from mtcore.train.preemption import Preempted, TrainingInterrupted, take_late_interrupt

SUMMARY = "grid.json"
#: More runs than this from one command is a typo (each is a whole training run).
MAX_RUNS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+,:-]")


def parse_grid(axes: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``["optimizer.lr=1e-5,3e-5", ...]`` -> ``[("optimizer.lr", ["1e-5", "3e-5"]), ...]``: each value's text as
    written, passed on as an override's (``key=value``: typed like the schema, ``null`` is null). The values may
    be in brackets (``key=[1e-5, 3e-5]``); a comma inside brackets, braces or quotes does not split
    (``key=[a, b],[c]`` is two lists)."""
    out: list[tuple[str, list[str]]] = []
    for axis in axes:
        key, sep, text = str(axis).partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(f"--grid {axis!r} must look like key=value,value (e.g. --grid optimizer.lr=1e-5,3e-5)")
        body = text.strip()
        if body.startswith("[") and body.endswith("]") and _closing(body) == len(body) - 1:
            body = body[1:-1]  # key=[v1, v2]: the list of values
        values = _split_top_level(body, axis)
        if any(not value for value in values):
            raise ConfigError(f"--grid {axis!r}: an empty value in the list; give values like 1e-5,3e-5 (null for none)")
        read = [repr(_parsed(key, value)) for value in values]
        if len(set(values)) != len(values) or len(set(read)) != len(read):  # 1e-4 and 1.0e-4 are one value
            raise ConfigError(f"--grid {axis!r}: a value is listed twice")
        if any(key == k for k, _ in out):
            raise ConfigError(f"--grid {key}: the key is given twice; list all its values in one --grid {key}=a,b")
        out.append((key, values))
    return out


_PAIRS = {"[": "]", "{": "}"}


def _closing(text: str) -> int:
    """Where the bracket opening ``text`` closes (-1 when it does not)."""
    depth, quote = 0, None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top_level(text: str, axis: str) -> list[str]:
    """``text`` split at the commas outside brackets, braces and quotes, each part stripped."""
    parts, current, stack, quote = [], [], [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in _PAIRS:
            stack.append(_PAIRS[ch])
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                raise ConfigError(f"--grid {axis!r}: unbalanced brackets; write lists as [a, b]")
        elif ch == "," and not stack:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if stack or quote:
        raise ConfigError(f"--grid {axis!r}: unbalanced brackets or quotes; write lists as [a, b], text with commas in quotes")
    parts.append("".join(current).strip())
    return parts


def _parsed(key: str, text: str) -> Any:
    """A grid value of ``key`` as the config reads it (``1e-3`` and ``0.001`` are one number), for comparing values;
    a text key's value is its text (``encoder.revision=1.10`` is not ``1.1``)."""
    import yaml

    from mtcore.train.overrides import _kind, schema_at

    if _kind(schema_at(key.split("."))[0]) == "text":
        return text.strip()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text; the schema makes it a number
        try:
            return float(value)
        except ValueError:
            return value
    return value


def align_grid(base: str | Path, grid: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, list[str]]]:
    """``grid`` spelled as the runs that ``base/grid.json`` lists already are: the same keys in their order, a value
    that reads the same as one written before (``0.001`` for ``1e-3``) in its earlier text. A combination's folder is
    named by that text, so ``--resume`` with the axes in another order, or a value spelled another way, continues
    those runs instead of training them again in new folders."""
    import json

    try:
        runs = json.loads((Path(base) / SUMMARY).read_text(encoding="utf-8")).get("runs") or []
    except (OSError, ValueError, AttributeError):
        return [(key, list(values)) for key, values in grid]
    earlier: list[list[tuple[str, str]]] = [[tuple(o.partition("=")[::2]) for o in run.get("overrides") or []]  # type: ignore[misc]
                                            for run in runs if isinstance(run, dict)]
    axes = {key: list(values) for key, values in grid}
    order = next(([key for key, _ in pairs] for pairs in earlier if sorted(k for k, _ in pairs) == sorted(axes)), list(axes))
    written: dict[str, list[str]] = {}
    for pairs in earlier:
        for key, text in pairs:
            written.setdefault(key, []).append(text)
    aligned = []
    for key in order:
        values = [next((old for old in written.get(key, []) if old != value and _parsed(key, old) == _parsed(key, value)), value)
                  for value in axes[key]]
        aligned.append((key, values))
    return aligned


def combinations(grid: Sequence[tuple[str, Sequence[str]]], trials: int | None = None, trial_seed: int = 0) -> list[list[str]]:
    """Every combination as a list of overrides (``key=value``), the first axis varying slowest; with ``trials``, that many
    of them drawn at random without repeats (random search, Bergstra and Bengio 2012), in grid order: the same ones for
    the same grid and ``trial_seed`` (the config's seed), so ``--resume`` finds them again, and a larger ``trials`` draws
    the same ones and more (one sequence of draws per seed: ``--trials 12 --resume`` after 8 adds four runs)."""
    keys = [key for key, _ in grid]
    total = math.prod(len(values) for _, values in grid)
    if trials is None or trials >= total:
        return [[f"{key}={value}" for key, value in zip(keys, chosen)] for chosen in itertools.product(*(values for _, values in grid))]
    draw, drawn = random.Random(f"mt-grid-trials:{trial_seed}"), {}  # one sequence per seed, whatever trials is: nested
    while len(drawn) < trials:
        drawn.setdefault(draw.randrange(total), None)
    picked = []
    for index in sorted(drawn):
        chosen = []
        for _, values in reversed(grid):  # the last axis varies fastest
            index, digit = divmod(index, len(values))
            chosen.append(values[digit])
        picked.append([f"{key}={value}" for key, value in zip(keys, reversed(chosen))])
    return picked


def run_name(overrides: Sequence[str]) -> str:
    """The folder of one combination: its overrides joined by commas, characters a path cannot hold as ``_``."""
    return _UNSAFE.sub("_", ",".join(overrides))[:200]


def check_grid(config: Any, grid: Sequence[tuple[str, Sequence[str]]], overrides: Sequence[str], runs_per_combination: int = 1,
               seeds: bool = False, trials: int | None = None, trial_seed: int = 0, search: str = "random") -> list[list[str]]:
    """Every combination's overrides (``trials``: those :func:`combinations` draws), each checked as a config (key, type,
    plugins, tasks) before any run."""
    from mtcore.train.config_io import anchor_paths, load_config
    from mtcore.train.distributed import main_process_warnings
    from mtcore.train.teachers import check_teachers
    from mtcore.train.validate import plan_run

    if seeds and any(key == "seed" for key, _ in grid):
        raise ConfigError("--grid seed=... and --seeds both set the seed (--seeds would win in every combination); "
                          "use one: --seeds N, or --grid seed=1,2,3")
    _refuse_overlaps(config, grid, overrides)
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"--trials must be a number of runs >= 1, got {trials!r}")
    from mtcore.train.tpe_search import check_search

    check_search(search, trials, world_size())
    combos = combinations(grid, None if search == "tpe" else trials, trial_seed)  # tpe: any may be chosen, every one checked
    runs = min(trials, len(combos)) if search == "tpe" and trials else len(combos)
    if trials is not None and trials >= math.prod(len(values) for _, values in grid):
        warnings.warn(f"--trials {trials}: the grid has {len(combos)} combination(s), so every one trains (nothing is drawn)",
                      UserWarning, stacklevel=2)
    if runs * runs_per_combination > MAX_RUNS:
        drawn = "; --trials N trains N of the combinations, drawn at random" if trials is None else ""
        raise ConfigError(f"--grid: {runs} combinations x {runs_per_combination} seed(s) is {runs * runs_per_combination} "
                          f"runs; at most {MAX_RUNS} from one command (each is a whole training run){drawn}")
    names = collections.Counter(run_name(c) for c in combos)
    clash = next((n for n, count in names.items() if count > 1), None)
    if clash is not None:
        raise ConfigError(f"--grid: two combinations would share the folder {clash!r}; give values that differ in letters or digits")
    if search == "tpe":
        from mtcore.train.tpe_search import check_tpe_scores

        check_tpe_scores(config, overrides)
    for combo in _checked(combos, grid):
        try:
            with main_process_warnings():  # checked as the Trainer will (paths not anchored by the file: from here)
                check_teachers(plan_run(anchor_paths(load_config(config, [*overrides, *combo]), Path.cwd()), base_dir=Path.cwd()))
        except MtError as exc:
            raise type(exc)(f"--grid {' '.join(combo)}: {exc}{_list_value_hint(grid, str(exc))}") from None
    return combos


#: Combinations checked whole before a search; a larger grid checks each value of each axis (the others at their first).
_CHECKED_WHOLE = 500


def _checked(combos: list[list[str]], grid: Sequence[tuple[str, Sequence[str]]]) -> list[list[str]]:
    """The combinations whose configs are checked before any run: all of them, or (a grid of more than 500, which only
    a search trains part of) every value of every axis, the other axes at their first value."""
    if len(combos) <= _CHECKED_WHOLE:
        return combos
    first = [values[0] for _, values in grid]
    chosen = [[*first[:i], value, *first[i + 1:]] for i, (_, values) in enumerate(grid) for value in values]
    return [[f"{key}={value}" for (key, _), value in zip(grid, values)] for values in chosen]


def _list_value_hint(grid: Sequence[tuple[str, Sequence[str]]], error: str) -> str:
    """For the key of ``error`` when it takes a list and its grid values are not lists (``--grid 'optimizer.betas=[0.9,
    0.99]'`` is two values, 0.9 and 0.99): how to grid over lists."""
    from mtcore.train.overrides import _kind, schema_at

    for key, values in grid:
        if f"config key {key!r}" in error and _kind(schema_at(key.split("."))[0]) == "list" \
                and not all(v.lstrip().startswith("[") for v in values):
            return (f" (--grid {key}=[a, b] lists the values to try, so each value of a list key is a list of its own: "
                    f"--grid '{key}=[[0.9, 0.99], [0.9, 0.999]]' or '{key}=[0.9, 0.99],[0.9, 0.999]')")
    return ""


def _refuse_overlaps(config: Any, grid: Sequence[tuple[str, Sequence[str]]], overrides: Sequence[str]) -> None:
    """A key set both by an override and by ``--grid``, or by two ``--grid`` axes, however spelled (``tasks.0.x`` and
    ``tasks.rsg:terra.x``; a section and a key inside it, ``optimizer={...}`` and ``optimizer.lr``): one would silently
    replace the other (the grid's overrides come last)."""
    from mtcore.train.config_io import read_yaml
    from mtcore.train.overrides import apply_overrides, key_path, keys_overlap

    try:
        raw = dict(config) if isinstance(config, Mapping) else read_yaml(config)
        raw = apply_overrides(raw, overrides)  # task ids as the combinations see them
    except (MtError, OSError, TypeError, ValueError):  # an unreadable config is said when the combinations are checked
        raw = {}
    axes = [(key, key_path(raw, key)) for key, _ in grid]
    for key, path in axes:
        if path and path[0] == "output_dir":  # each combination's folder is OUTPUT/<key=value,...>: the key would do nothing
            raise ConfigError(f"--grid {key}: every combination's run goes to OUTPUT/<key=value,...>, so output_dir changes nothing; "
                              "choose the grid's folder with --output-dir")
    given = [(o.partition("=")[0].strip(), key_path(raw, o.partition("=")[0])) for o in overrides]
    for key, path in axes:
        same = next((name for name, other in given if keys_overlap(path, other)), None)
        if same is not None:
            what = f"{same} is given both as an override and with --grid" if same == key else (
                f"the override {same} and --grid {key} set the same key")
            raise ConfigError(f"{what}; keep one (the grid's values, or the override)")
    for i, (key, path) in enumerate(axes):
        same = next((name for name, other in axes[i + 1:] if keys_overlap(path, other)), None)
        if same is not None:
            raise ConfigError(f"--grid {key} and --grid {same} set the same key; list all its values in one --grid")


def train_grid(config: Any, output_dir: str | Path, grid: Sequence[tuple[str, Sequence[str]]], *, overrides: Iterable[str] = (),
               seeds: Sequence[int] | None = None, resume: bool = False,
               report: Callable[[list[str], dict[str, Any]], None] | None = None, trials: int | None = None,
               trial_seed: int = 0, search: str = "random") -> list[dict[str, Any]]:
    """Train every combination of ``grid`` (``trials``: that many drawn at random, see :func:`combinations`; with ``search``
    ``tpe``, chosen one after another from the scores before, :mod:`mtcore.train.tpe_search`) sequentially;
    returns (and writes to ``OUTPUT/grid.json``) one entry per run.
    A combination whose loss goes NaN (or, in one process, that runs out of memory) gets an entry with its ``error``
    line and no scores, and the others still train; any other error stops the grid."""
    from mtcore.train.run_dir import write_json
    from mtcore.train.seeds import _refuse_a_run_directory, refuse_another_kind, train_seeds
    from mtcore.train.sweep_checks import between_runs, refuse_trained_combinations
    from mtcore.train.trainer import Trainer

    overrides, base = list(overrides), Path(output_dir)
    grid = align_grid(base, grid)
    if resume:
        from mtcore.train.tpe_search import refuse_another_search

        refuse_another_search(base, search)
    combos = check_grid(config, grid, overrides, len(seeds) if seeds else 1, seeds=bool(seeds), trials=trials, trial_seed=trial_seed,
                        search=search)
    _refuse_a_run_directory(base, "--grid puts one run per combination in OUTPUT/<key=value,...> and their list in OUTPUT/grid.json",
                            suffix="grid")
    refuse_another_kind(base, "seeds.json", "runs of several seeds", "--grid puts one run per combination in OUTPUT/<key=value,...> "
                        "and their list in OUTPUT/grid.json", "grid")
    refuse_trained_combinations(base, combos, seeds, resume)
    take_late_interrupt()  # a Ctrl-C noted before this sweep (another run of this process) is not this sweep's
    entries: list[dict[str, Any]] = []
    chooser = None
    if search == "tpe":
        from mtcore.train.tpe_search import TpeSearch

        chooser = TpeSearch(grid, trials or len(combos), trial_seed)
    planned = min(trials or len(combos), len(combos))  # TPE's trials: at most the grid's combinations
    order, run, entry = iter(chooser if chooser is not None else combos), None, {}
    while True:
        try:
            combo = next(order)  # TPE chooses here, from the runs before
        except StopIteration:
            break
        except KeyboardInterrupt:
            if run is None:
                raise
            raise between_runs(run, finished=int(entry.get("steps") or 0), grid_run=run) from None
        run = base / run_name(combo)
        try:
            if seeds:
                spread = train_seeds(config, run, seeds, overrides=[*overrides, *combo], resume=resume)
                entry = {"overrides": combo, "run_dir": str(run), "seeds": list(seeds),
                         "final": _mean(spread, "final"), "best": _mean(spread, "best")}
            else:
                trainer = Trainer(config, output_dir=run, overrides=[*overrides, *combo], resume=resume and run.is_dir())
                summary = trainer.train()
                if trainer.engine is not None and not trainer.engine.is_main:
                    continue
                trainer = None
                entry = {"overrides": combo, "run_dir": str(run), "steps": summary.get("steps"),
                         "final": (summary.get("final") or {}).get("aggregate"), "best": (summary.get("best") or {}).get("aggregate")}
        except (Preempted, TrainingInterrupted) as exc:  # the remaining combinations are not started; --resume continues this one, then the rest
            exc.grid_run = run  # type: ignore[attr-defined]
            raise
        except KeyboardInterrupt:  # Ctrl-C while the combination's run was being built: --resume starts it again
            raise between_runs(run, grid_run=run) from None
        except MtError as exc:
            if not _fails_alone(exc):
                raise type(exc)(f"--grid {' '.join(combo)}: {exc}") from None
            # a learning rate that diverges is a result of the sweep: recorded, and the other combinations still train
            entry = {"overrides": combo, "run_dir": str(run), "final": None, "best": None, "error": " ".join(str(exc).split())}
        try:  # a Ctrl-C from here on comes after the combination's run finished
            entries.append(entry)
            if chooser is not None:
                from mtcore.train.tpe_search import run_score

                chooser.tell(run_score(entry))
            if report is not None and is_main_process():  # a failed or already-trained combination reaches every process
                report(combo, entry)
            if is_main_process():  # after every run: a later failure keeps the finished ones, and earlier grids' runs stay listed
                write_json(base / SUMMARY, {"grid": [{"key": k, "values": list(v)} for k, v in grid], **({"trials": trials} if trials else {}),
                                            **({"search": search} if search != "random" else {}), "runs": _merged(base, entries)})
        except KeyboardInterrupt:
            raise between_runs(run, finished=int(entry.get("steps") or 0), grid_run=run) from None
        if len(entries) < planned and take_late_interrupt():  # Ctrl-C as the run finished: no next one
            raise between_runs(run, finished=int(entry.get("steps") or 0), grid_run=run)
    return entries


def _fails_alone(error: MtError) -> bool:
    """Whether ``error`` ends its combination only: a loss that went NaN (every process raises it together), or memory
    running out in a one-process run (under DDP the other processes stop on their own error)."""
    from mtcore.train.monitor import NonFiniteLossError, OutOfMemory

    return isinstance(error, NonFiniteLossError) or (isinstance(error, OutOfMemory) and world_size() == 1)


def _merged(base: Path, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` after the runs an earlier grid.json of ``base`` lists in other folders."""
    import json

    try:
        earlier = json.loads((base / SUMMARY).read_text(encoding="utf-8")).get("runs") or []
    except (OSError, ValueError, AttributeError):
        earlier = []
    mine = {entry["run_dir"] for entry in entries}
    return [e for e in earlier if isinstance(e, dict) and e.get("run_dir") not in mine] + entries


def _mean(spread: dict[str, Any], part: str) -> float | None:
    stats = (spread.get(part) or {}).get("aggregate")
    return stats["mean"] if stats else None
