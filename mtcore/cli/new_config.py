"""``mt new-config``: write a starter training config for the installed tasks (after ``pip install`` there is no
checkout and no ``examples/`` folder to copy one from). Nothing heavy is imported: the registry only.

Without ``--task`` it takes, from each installed plugin, its first task (by id) that ships a sample, read from
that sample; with ``--task`` the tasks named, each from its sample when it has one, else from its first source
(``local`` tasks get a ``data_dir`` to fill in). The encoder is a tiny random-init demo one built offline unless
``--encoder`` names a hub id or a local folder. The file passes ``mt check`` as written (tasks from samples).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import typer

from mtcore.errors import UsageError

HEADER = """# mt train {file}
#
# A starter config written by `mt new-config`. Every key is documented in docs/cli.md of mtcore's source
# repository (the settings themselves: mtcore/train/config.py in the installed package); `mt check {file}`
# names a mistaken key with "did you mean", and `mt train {file} KEY=VALUE ...` overrides any key.
# `mt export --task T` (a plain transformers model) needs `head_options: {{pooling: pooler}}` on T's entry with a
# BERT-like encoder: the default head pools the first token without BERT's pooler, which no plain class computes.
# {encoder_note}
"""
TINY_NOTE = ("The encoder is a tiny RANDOM-INIT demo one built on the spot (no download):\n"
             "# its scores only show that the machinery works; give encoder.path a hub id or a local folder\n"
             "# (e.g. --encoder DeepPavlov/rubert-base-cased) for real training.")
BODY = """seed: 42
encoder:
{encoder}
tasks:
{tasks}
sampler: {{name: temperature, options: {{temperature: 2.0}}}}   # one task per step, drawn by size^(1/T)
loss: {{strategy: single}}
optimizer: {{lr: {lr}, head_lr: {head_lr}, weight_decay: 0.01, max_grad_norm: 1.0}}
schedule: {{name: linear, epochs: {epochs}, warmup_ratio: 0.1}}
precision: auto
batching: {{batch_size: 16, group_by_length: true}}
evaluation: {{every: 40, at_end: true}}
checkpoint: {{every: 40, keep_last: 2, keep_best: true}}
logging: {{every: 10}}
"""


def starter_tasks(registry: Any, names: list[str]) -> list[Any]:
    """The tasks of a starter config: ``names`` resolved (ids or unambiguous bare names), else each plugin's first
    trainable task with a sample."""
    if names:
        return [registry.task(name) for name in names]
    chosen: dict[str, Any] = {}
    for task in sorted(registry.tasks.values(), key=lambda t: t.id):
        if task.plugin not in chosen and "sample" in task.sources and not task.evaluate_only:
            chosen[task.plugin] = task
    if not chosen:
        left_out = getattr(registry, "excluded", None)
        why = (f"MT_LOAD_PLUGINS leaves out the installed plugin(s) {', '.join(left_out)}; add them there, or unset it" if left_out
               else "install one (pip install mt-nli)")
        raise UsageError(f"no loaded plugin ships a task with a sample to start from: {why}; or name tasks with --task ID")
    return list(chosen.values())


def task_line(task: Any) -> str:
    """One ``tasks:`` entry: from the sample when the task has one, else from its first source."""
    length = min(int(task.max_length), 128)
    if "sample" in task.sources:
        return f"  - {{id: {task.id}, source: sample, max_length: {length}}}"
    source = next(iter(task.sources), None)
    if source is None:
        raise UsageError(f"task {task.id!r} names no data source; a config cannot read it (see mt show-task {task.id})")
    if source == "local":
        return (f"  - {{id: {task.id}, source: local, data_dir: FOLDER, max_length: {length}}}   "
                f"# FOLDER: where its downloaded files are (mt show-task {task.id})")
    return f"  - {{id: {task.id}, source: {source}, max_length: {length}}}"


def render_config(file: str, tasks: list[Any], encoder: Optional[str]) -> str:
    if encoder is None:
        encoder_lines, note, lr, head_lr, epochs = "  tiny: {arch: bert, hidden_size: 64, num_layers: 2, num_heads: 2}", TINY_NOTE, "1.0e-3", "2.0e-3", 4
    else:
        encoder_lines, note, lr, head_lr, epochs = f"  path: {json.dumps(encoder)}", "", "3.0e-5", "1.0e-3", 3  # JSON is YAML
    header = HEADER.format(file="CONFIG.yaml" if file == "-" else file, encoder_note=note).rstrip() + "\n"
    return header + BODY.format(encoder=encoder_lines, tasks="\n".join(task_line(t) for t in tasks), lr=lr, head_lr=head_lr,
                                epochs=epochs)


def new_config(
    file: Path = typer.Argument(Path("mtcore.yaml"), metavar="[FILE]", help="Where to write it (default: mtcore.yaml); '-' prints it."),
    task: Optional[list[str]] = typer.Option(None, "--task", "-t", help="A task to train (repeat it; default: one with a sample "
                                             "from each installed plugin)."),
    encoder: Optional[str] = typer.Option(None, "--encoder", help="A hub id or local folder (default: a tiny demo encoder, offline)."),
    force: bool = typer.Option(False, "--force", help="Replace FILE when it exists."),
) -> None:
    """Write a starter training config for the installed tasks: mt new-config && mt train mtcore.yaml."""
    from mtcore.outputs import write_error, write_named
    from mtcore.plugins import load_registry

    tasks = starter_tasks(load_registry(), list(task or []))
    if encoder is not None:  # a folder that is not there, a run directory: said now, not by the mt check that follows
        from mtcore.errors import ConfigError
        from mtcore.train.encoder_checks import check_encoder_path

        try:
            check_encoder_path(encoder)
        except ConfigError as exc:
            raise UsageError(str(exc).replace("config key 'encoder.path'", "--encoder")) from None
    text = render_config(str(file), tasks, encoder)
    if str(file) == "-":
        typer.echo(text, nl=False)
        return
    if file.is_dir():
        raise UsageError(f"{file} is a folder; give a file name for the config, e.g. {file / 'mtcore.yaml'}")
    if file.exists() and not force:
        raise UsageError(f"{file} exists; choose another name, or add --force to replace it")
    if not file.parent.is_dir():
        raise UsageError(f"there is no folder {str(file.parent)!r} for {file}; make it first, or choose another path")
    try:
        write_named(file, text)
    except OSError as exc:
        raise write_error(file, exc) from None
    shown = os.path.relpath(file) if not os.path.relpath(file).startswith("..") else str(file)
    print(f"wrote {shown}: {len(tasks)} task(s) ({', '.join(t.id for t in tasks)})")
    print(f"next: mt check {shown} && mt train {shown} --output-dir runs/first")


def register(app: typer.Typer) -> None:
    app.command("new-config")(new_config)
