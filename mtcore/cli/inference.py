"""``mt evaluate`` and ``mt predict``: using a trained multitask model (``mt export``: :mod:`mtcore.cli.export`).

This module imports nothing heavy at import time (``mt --help`` stays fast): the model, data
and transformers code is imported inside the commands. Every user mistake is one line on
stderr with a non-zero exit code (see :mod:`mtcore.cli.app`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer

from mtcore.cli.inference_options import (TRUST_HELP, data_dir_option, device_option, input_file_option, input_format_option,
                                         precision_option, one_process)
from mtcore.errors import UsageError

STDOUT_FORMATS = ("jsonl", "csv")
NULL_THRESHOLD_HELP = ("Extractive QA with no_answer: answer \"\" when the no-answer score beats the best span's by more than this "
                       "(default: the model's, e.g. a run's squad_best_f1_threshold).")


def _info(message: str) -> None:
    """Progress and result notes go to stderr, so stdout carries only predictions / tables / JSON."""
    print(message, file=sys.stderr, flush=True)


def _predictions(count: int) -> str:
    return f"{count} prediction{'' if count == 1 else 's'}"


def evaluate(
    path: Path = typer.Argument(..., metavar="RUN_OR_MODEL_DIR", help="A run directory (config.yaml, model/) or a saved model directory."),
    tasks: Optional[List[str]] = typer.Option(None, "--tasks", "-t", help="Tasks to score (ids or bare names; repeat or comma-separate). Default: all."),
    split: Optional[str] = typer.Option(None, "--split", help="Split to score: train, validation or test (labelled); default: "
                                        "the split the run evaluated on, else validation."),
    source: Optional[str] = typer.Option(None, "--source", help="Data source: sample, local or hub (default: the run's, else sample)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the official files (implies --source local unless --source is given)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Evaluation batch size (default: the run's, else 32)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: the GPU when there is one)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto, fp32, bf16 or fp16 (default: the run's, else fp32)."),
    null_threshold: Optional[float] = typer.Option(None, "--null-threshold", help=NULL_THRESHOLD_HELP),
    with_head: Optional[str] = typer.Option(None, "--head", help="Score the task(s) with this head instead (zero-shot transfer: "
                                       "a task of the same kind and labels the model has no head for); needs --task(s)."),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="Score one task on this labelled file of its raw fields "
                                         "(JSONL / CSV / TSV / JSON / Parquet / CoNLL) instead of a split of its data."),
    input_format: str = typer.Option("auto", "--input-format", help="Format of --input: auto (from the file name), jsonl, csv, tsv, json, parquet, conll."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
) -> None:
    """Score a trained model on a split (or a labelled file): per-task metrics and the aggregate."""
    one_process("evaluate")
    from mtcore.cli.output import print_json
    from mtcore.predict.evaluate import evaluate_path

    precision_option(precision)
    device_option(device)
    input_format_option(input, input_format)
    data_dir_option(data_dir)
    if input is not None:
        input_file_option(input)
    if tasks is not None and not [name for given in tasks for name in given.split(",") if name.strip()]:
        raise UsageError("--tasks is empty; name the tasks to score (ids or bare names, comma-separated), or leave it out for all")
    if with_head is not None and not tasks:
        raise UsageError("--head scores tasks with another task's head: name them with --tasks (e.g. --tasks nli:nli --head nli:xnli-ru)")
    report = evaluate_path(path, tasks=tasks, split=split, source=source, data_dir=data_dir, batch_size=batch_size,
                           device=device, precision=precision, null_threshold=null_threshold, head=with_head,
                           input=input, input_format=input_format, trust_remote_code=trust_remote_code)
    for note in report.notes:
        _info(f"note: {note}")
    if as_json:
        print_json(report.to_dict())
        return
    _print_table(report)


def _print_table(report: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mtcore.cli.output import stdout

    table = Table(title=escape(f"{f'--input {report.input}' if report.input else f'{report.split} split'} - {report.run_dir or report.model_dir}"))
    for column, justify in (("task", "left"), ("metric", "left"), ("value", "right"), ("rows", "right"), ("data", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for task_id, info in report.tasks.items():
        data = info["source"] + (f" {info['data_dir']}" if info.get("data_dir") else "")
        about = [f"head {info['head']}"] if info.get("head") and info["head"] != task_id else []  # LiDiRus by the TERRa head, --head
        if info.get("split", report.split) != report.split:  # an evaluate-only task of the run: its own split
            about.append(f"{info['split']} split")
        if info.get("weight") == 0:
            about.append("not in the aggregate")
        task_id = f"{task_id} ({'; '.join(about)})" if about else task_id
        first = True
        for metric, value in info["metrics"].items():
            mark = " *" if metric == info["main_metric"] else ""
            table.add_row(escape(task_id) if first else "", escape(metric) + mark, f"{value:.4f}", str(info["rows"]) if first else "",
                          escape(data) if first else "")
            first = False
        if first:
            table.add_row(escape(task_id), "-", "no labels", str(info["rows"]), escape(data))
    stdout.print(table)
    aggregate = "n/a" if report.aggregate is None else f"{report.aggregate:.4f}"
    lower = any(info.get("lower_is_better") for info in report.tasks.values())
    stdout.print(f"aggregate (mean of main metrics *{', lower-is-better ones negated' if lower else ''}): {aggregate}")


def _writer(name: str, output: Optional[Path]) -> tuple[Any, str, bool]:
    """The writer registered as ``name``, its id, and whether it writes the rows' ids as a submission's."""
    from mtcore.plugins import load_registry
    from mtcore.predict.writers import needs_ids

    component = load_registry(warn=False).component("writer", name)
    if output is None and name not in STDOUT_FORMATS:
        raise UsageError(f"--format {name} writes files: pass --output <file or folder> (only {', '.join(STDOUT_FORMATS)} can go to stdout)")
    return component.load(), component.id, needs_ids(component)


def _same_file(output: str, input: str) -> bool:
    """Whether ``output`` is the file ``input`` (the same path, or a link to it)."""
    a, b = Path(output).expanduser(), Path(input).expanduser()
    try:
        return a.resolve() == b.resolve() or (a.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _is_stream(path: str) -> bool:
    """``/dev/stdout``, a FIFO or another device: written directly, never a folder."""
    target = Path(path).expanduser()
    return target.exists() and not target.is_file() and not target.is_dir()


def _pick_task(model: Any, task: Optional[str], several: str = "", predicting: bool = True) -> str:
    """``task``, or the model's one task (``predicting``: masked_lm ones, which predict nothing, left out when others are
    there); ``several``: how the command takes several tasks instead (for the message)."""
    if task is not None:
        return task
    heads = [t for t, info in model.tasks.items() if info.get("kind") != "masked_lm" or not predicting] or list(model.tasks)
    if len(heads) == 1:
        return heads[0]
    raise UsageError(f"this model has heads for several tasks ({', '.join(heads)}); choose one with --task{several}")


def _names(task: Optional[str]) -> list[str]:
    """``--task``'s names: comma-separated, spaces and empty items dropped, each once."""
    return list(dict.fromkeys(name.strip() for name in (task or "").split(",") if name.strip()))


def _task_names(model: Any, names: list[str], location: Any) -> list[str]:
    """The tasks of ``names``: one, several, or ``all`` (every head, every registered task another head
    serves, e.g. rsg:lidirus with the rsg:terra head, and the run's tasks scored with another's head)."""
    if names != ["all"]:
        return names or [_pick_task(model, None, ", or several: --task all, or --task A,B")]
    from mtcore.plugins import load_registry
    from mtcore.predict.evaluate import scored_heads

    served = [t.id for t in load_registry(warn=False).tasks.values()
              if t.id not in model.tasks and (t.metadata or {}).get("predict_with") in model.tasks]
    scored = [name for name, head in scored_heads(location).items() if ":" in name and head in model.tasks]
    heads = [t for t, info in model.tasks.items() if info.get("kind") != "masked_lm"]  # an auxiliary task predicts nothing
    return list(dict.fromkeys([*heads, *served, *scored]))


def _setup(model: Any, location: Any, name: str, source: Optional[str], data_dir: Optional[Path], head: Optional[str] = None) -> Any:
    from mtcore.predict.evaluate import task_setups
    from mtcore.predict.locate import run_config

    folder = str(data_dir.expanduser()) if data_dir is not None else None
    return task_setups(model, location, run_config(location), [name], source=source, data_dir=folder, head=head)[0]


def _predict_split(model: Any, setup: Any, split: str, batch_size: int, n_best: int = 0,
                   ids: list[Any] | None = None) -> tuple[Any, str, Iterator[list[dict[str, Any]]]]:
    """``(Task, head, prediction rows a chunk at a time)`` of one task's ``split`` (``ids``: see
    :func:`~mtcore.predict.chunks.predict_split_chunks`)."""
    from mtcore.data import load_raw
    from mtcore.predict.chunks import predict_split_chunks
    from mtcore.predict.inputs import raw_dataset
    from mtcore.predict.predictor import quiet_datasets

    with quiet_datasets():
        loaded = load_raw(setup.task, setup.source, data_dir=setup.data_dir, splits=(split,), holdout=setup.holdout)
        raw = raw_dataset(loaded[split], setup.task)
    numbers = (loaded.positions or {}).get(split)  # a holdout's rows without an id: their places in the train rows, not 0..N-1
    return setup.task, setup.head, predict_split_chunks(model, setup.head, setup.task, raw, batch_size=batch_size, n_best=n_best,
                                                        origin=f"{setup.source} {split}", row_numbers=numbers, ids=ids)


def _warn_repeats(ids: list[Any], setup: Any, split: str) -> None:
    from mtcore.predict.chunks import warn_repeated_ids

    warn_repeated_ids(ids, f"task {setup.task.id}'s {split} split ({setup.source})")


def _with_run_sources(location: Any, spec: Any) -> Any:
    """``spec`` (rebuilt from the model file, without sources) with the sources the run's config gives
    its task: how the run read its files (a nested layout's ``row_expand``) applies to ``--input`` too."""
    from mtcore.predict.locate import run_config

    from mtcore.predict.locate import refuse_left_out, run_plan

    if spec.sources:
        return spec
    config = run_config(location)
    refuse_left_out(config, [spec.id])  # its plugin installed but left out: refused saying so, not "not registered"
    plan = run_plan(config)
    if plan is None:
        return spec
    planned = next((p for p in plan.tasks if p.id == spec.id), None)
    return spec.replace(sources=planned.task.sources) if planned is not None and planned.task.sources else spec


def predict(
    path: Path = typer.Argument(..., metavar="MODEL_DIR", help="A saved model directory (or a run directory)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task id or bare name (optional when the model has one task, masked_lm ones aside); "
                                       "with --split, several comma-separated, or all (then --output is a folder)."),
    input: Optional[str] = typer.Option(None, "--input", "-i", help="JSONL / CSV / TSV / JSON / Parquet / CoNLL file with the task's raw fields; '-' reads stdin."),
    input_format: str = typer.Option("auto", "--input-format", help="Input format: auto (from the file name), jsonl, csv, tsv, json, parquet, "
                                     "conll (a token per line, in the task's columns or alone; a blank line between sentences)."),
    split: Optional[str] = typer.Option(None, "--split", help="Predict a split of the task's own data instead (e.g. test)."),
    source: Optional[str] = typer.Option(None, "--source", help="With --split: sample, local or hub (default: the run's, else sample)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="With --split: folder with the official files."),
    output_arg: Optional[str] = typer.Option(None, "--output", "-o", help="Output file (or folder, for --format rsg or several tasks). Default: stdout."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="Writer: jsonl, csv, conll (token tasks, with --output), or one a plugin registers (rsg: submission files). "
                                         "Default: csv for an --output ending in .csv, else jsonl."),
    batch_size: int = typer.Option(32, "--batch-size", help="Rows per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: the GPU when there is one)."),
    null_threshold: Optional[float] = typer.Option(None, "--null-threshold", help=NULL_THRESHOLD_HELP),
    n_best: int = typer.Option(0, "--n-best", min=0, help="Extractive QA: also list each question's N best answers (field n_best: "
                               "text, answer_start, logit, probability among them), as nbest_predictions.json."),
    with_head: Optional[str] = typer.Option(None, "--head", help="Predict the task(s) with this head instead (zero-shot transfer: "
                                       "a task of the same kind and labels the model has no head for); needs --task(s)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
) -> None:
    """Predict labels and class probabilities for new rows (or a split) of one task, or a split of several."""
    one_process("predict")
    if (input is None) == (split is None):
        raise UsageError("give exactly one of --input FILE (or - for stdin) and --split NAME")
    if split is None and (source is not None or data_dir is not None):
        raise UsageError("--source and --data-dir choose the data of --split; with --input, the file is the data")
    names = _names(task)
    if with_head is not None and (not names or names == ["all"]):
        raise UsageError("--head predicts tasks with another task's head: name them with --task (e.g. --task nli:nli --head nli:xnli-ru)")
    several = names == ["all"] or len(names) > 1
    if several and split is None:
        raise UsageError("several tasks (--task a,b or all) predict their own data: use --split, not --input")
    input_format_option(input, input_format)
    data_dir_option(data_dir)
    if input is not None and input != "-":  # before the model loads: a mistyped name is said at once
        input_file_option(input)
    if several and output_arg is None:
        raise UsageError("several tasks write one file each: pass --output <folder>")
    from mtcore.predict.writers import FILE_SUFFIXES  # (light: no torch)

    if several and (output_arg == "-" or Path(output_arg).suffix.lower() in FILE_SUFFIXES or _is_stream(output_arg)):
        raise UsageError(f"several tasks write one file each into a folder: --output names a folder, not {output_arg!r}")
    if output_arg == "-":  # stdout, as -i - is stdin
        output_arg = None
    if format is None and output_arg is not None and Path(output_arg).suffix.lower() in (".tsv", ".json", ".parquet"):
        raise UsageError(f"--output {output_arg}: predictions are written as JSON Lines (.jsonl) or CSV (.csv); name the file so, "
                         "or pass --format jsonl (or csv) to write that under this name")
    output = Path(output_arg) if output_arg is not None else None  # a str first: Path drops the '/' of "preds/"
    as_folder = output_arg is not None and (output_arg.endswith(("/", os.sep)) or Path(output_arg).expanduser().is_dir())
    if format is None:  # preds.csv gets CSV, not JSON Lines in a file named .csv
        format = "csv" if output_arg is not None and output_arg.lower().endswith(".csv") and not several else "jsonl"
    writer, writer_id, submission = _writer(format, output)
    device_option(device)
    if output_arg is not None:  # jsonl and csv write one file; a plugin's writer may fill a folder
        from mtcore.outputs import check_writable

        check_writable(output_arg, folder=several or format not in STDOUT_FORMATS, what="--output", example=f"predictions.{format}")
        if input is not None and input != "-" and _same_file(output_arg, input):
            raise UsageError(f"--output {output_arg} is the --input file: the predictions would replace your rows; choose another path")
    from mtcore.predict.locate import load_model, locate

    location = locate(path)
    model = load_model(location, device, trust_remote_code, check_labels=False)  # each task it scores is checked
    if input is not None:
        from mtcore.predict.tasks import prediction_task
        from mtcore.predict.writing import predict_input

        from mtcore.predict.tasks import with_null_threshold

        from mtcore.predict.evaluate import scored_tasks

        name = _pick_task(model, names[0] if names else None)
        scored = scored_tasks(location).get(name) if with_head is None else None  # evaluate_with: its head, the run's settings
        head, spec = prediction_task(model, scored.task, scored.head) if scored is not None else prediction_task(model, name, with_head)
        spec = with_null_threshold([_with_run_sources(location, spec)], null_threshold)[0]
        if format not in STDOUT_FORMATS:
            from mtcore.predict.writing import check_writer

            check_writer(writer, spec)
        count, written = predict_input(model, head, spec, input, input_format=input_format, batch_size=batch_size, format=format,
                                       output=output, writer=writer, writer_id=writer_id, needs_ids=submission, n_best=n_best,
                                       output_folder=as_folder)
        if output is not None:
            _info(f"wrote {_predictions(count)} of {spec.id} (head {head}) to {', '.join(str(p) for p in written)}")
        return
    setups = [_setup(model, location, name, source, data_dir, with_head) for name in _task_names(model, names, location)]
    if null_threshold is not None:
        import dataclasses

        from mtcore.predict.tasks import with_null_threshold

        setups = [dataclasses.replace(s, task=t) for s, t in zip(setups, with_null_threshold([s.task for s in setups], null_threshold))]
    if format not in STDOUT_FORMATS:  # --task all: the tasks the writer refuses (rsg: not an RSG task) are left out, saying so
        from mtcore.predict.writing import tasks_the_writer_takes

        setups = tasks_the_writer_takes(writer, format, setups, split, leave_out=names == ["all"])
    sampled = [s.task.id for s in setups if s.source == "sample"]
    if submission and sampled:  # e.g. rsg:lidirus of a run that never had it: its plugin's sample rows, not the official test
        import warnings

        warnings.warn(f"{', '.join(sampled)}: the {split!r} split of the plugin's shipped sample, not your files; for a submission "
                      "pass --source local --data-dir FOLDER (the official files) or --source hub")
    if n_best and not any(setup.task.kind == "extractive_qa" for setup in setups):
        raise UsageError(f"--n-best lists answers of extractive QA tasks, and none of {', '.join(s.task.id for s in setups)} is one: "
                         "leave --n-best out")
    if not several:
        from mtcore.predict.writing import STREAMED, stream_rows, write_rows

        ids: list[Any] = []
        spec, head, chunks = _predict_split(model, setups[0], split, batch_size, n_best, ids=ids)
        if format in STREAMED:  # mtcore's jsonl/csv: written a chunk at a time, as --input is
            count, written = stream_rows(format, spec, chunks, output)
        else:  # a writer that takes every row at once
            rows = [row for chunk in chunks for row in chunk]
            count, written = len(rows), write_rows(writer, format, writer_id, spec, rows, output, folder=as_folder)
        if not submission:  # a submission writer refuses repeated ids itself
            _warn_repeats(ids, setups[0], split)
        if output is not None:
            _info(f"wrote {_predictions(count)} of {spec.id} (head {head}; {setups[0].source} {split} split) to "
                  f"{', '.join(str(p) for p in written)}")
        return
    from mtcore.predict.writing import TaskFolder

    _predict_tasks(model, setups, names, split, batch_size, TaskFolder(output, format, writer, writer_id), n_best, not submission)


def _predict_tasks(model: Any, setups: list[Any], names: list[str], split: str, batch_size: int, folder: Any, n_best: int = 0,
                   warn_repeats: bool = True) -> None:
    """Several tasks' splits into one folder, all or none (``folder``: a :class:`~mtcore.predict.writing.TaskFolder`);
    with ``--task all``, a task only another head serves (rsg:lidirus) whose data cannot be read is left out with a warning."""
    import warnings

    from mtcore.data.task_data import MissingSplit
    from mtcore.errors import DataError
    from mtcore.predict.writing import STREAMED

    with folder:
        for setup in setups:
            ids: list[Any] = []
            try:
                spec, head, chunks = _predict_split(model, setup, split, batch_size, n_best if setup.task.kind == "extractive_qa" else 0,
                                                    ids=ids)
                if folder.format in STREAMED:  # mtcore's jsonl/csv: a chunk at a time
                    folder.write_chunks(spec, head, chunks)
                else:
                    folder.write(spec, head, [row for chunk in chunks for row in chunk])
            except MissingSplit:
                if names != ["all"]:
                    raise
                _info(f"note: skipped {setup.task.id}: its {setup.source} source has no {split!r} split")
                continue
            except DataError as error:
                if names != ["all"] or setup.task.id in model.tasks:
                    raise
                warnings.warn(f"left out {setup.task.id} (predicted with the {setup.head} head): {error}; name it with --task "
                              "and its files with --source/--data-dir")
                continue
            if warn_repeats:
                _warn_repeats(ids, setup, split)
        if not len(folder):
            if not setups:  # every head is a masked_lm one
                raise UsageError(f"no task of this model predicts anything (its heads, {', '.join(model.tasks)}, are masked_lm ones); "
                                 "mt evaluate scores them")
            raise UsageError(f"no task of --task all has a {split!r} split; name the split of some (e.g. --split test)")
    sources = {setup.task.id: setup.source for setup in setups}
    for spec, head, count, written in folder.written:
        _info(f"wrote {_predictions(count)} of {spec.id} (head {head}; {sources.get(spec.id)} {split} split) to "
              f"{', '.join(str(p) for p in written)}")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
