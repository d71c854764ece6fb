"""``mt export``: a trained task as a plain Hugging Face model, every task, or the encoder alone.

Imports nothing heavy at import time (``mt --help`` stays fast); user mistakes are one line (see :mod:`mtcore.cli.app`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mtcore.cli.inference import _info, _pick_task
from mtcore.cli.inference_options import TRUST_HELP, one_process
from mtcore.errors import UsageError


def export(
    path: Path = typer.Argument(..., metavar="MODEL_DIR", help="A saved model directory (or a run directory)."),
    out_dir: Path = typer.Argument(..., metavar="OUT_DIR", help="Where to write the plain Hugging Face model (new or empty)."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="The task to export (optional when the model has one task); all: every "
                                       "task that exports, each in OUT_DIR/<plugin>_<task>, and the encoder in OUT_DIR/encoder."),
    encoder_only: bool = typer.Option(False, "--encoder-only", help="Export the shared encoder alone (AutoModel), for any head."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT_DIR when it holds an earlier export (mtcore_export.json)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", metavar="ORG/NAME", help="Then upload OUT_DIR to this model "
                                              "repo on the Hugging Face hub (created when missing; needs a login: hf auth login)."),
    private: bool = typer.Option(False, "--private", help="With --push-to-hub: create the repo private."),
) -> None:
    """Export one task as a standard transformers model (pipeline-ready), every task, or the encoder alone."""
    one_process("export")
    if private and push_to_hub is None:
        raise UsageError("--private is for the repo --push-to-hub creates; add --push-to-hub ORG/NAME, or leave --private out")
    if push_to_hub is not None:
        from mtcore.export.hub import check_hub_target

        check_hub_target(push_to_hub)  # before any work
    _export(path, out_dir, task, encoder_only, overwrite, trust_remote_code)
    if push_to_hub is not None:
        from mtcore.export.hub import push_folder

        what = f" --task {task}" if task else " --encoder-only" if encoder_only else ""
        url = push_folder(out_dir.expanduser(), push_to_hub, private=private, message=f"mt export{what}")
        _info(f"pushed {out_dir} to {url}")


def _export(path: Path, out_dir: Path, task: Optional[str], encoder_only: bool, overwrite: bool, trust_remote_code: bool) -> None:
    from mtcore.export.hf import check_export_target, export_all, export_encoder, export_task
    from mtcore.predict.locate import load_model, locate

    location = locate(path)
    if _is_inside(out_dir, location.model_dir) or _is_inside(location.model_dir, out_dir):
        raise UsageError(f"{out_dir}: is or holds the model being exported; export to a folder beside it")
    check_export_target(out_dir, overwrite)  # before the model is loaded
    if encoder_only:
        if task is not None:
            raise UsageError("--encoder-only exports the shared encoder, not a task; leave out --task")
        result = export_encoder(load_model(location, "cpu", trust_remote_code), out_dir, overwrite=overwrite, source=location.model_dir)
        _info(f"exported the encoder ({result.model_class}) to {result.path}; load it with AutoModel.from_pretrained({str(result.path)!r})")
        return
    model = load_model(location, "cpu", trust_remote_code)
    if task is not None and task.strip() == "all":
        import warnings

        results, skipped = export_all(model, out_dir, overwrite=overwrite, source=location.model_dir)
        for head_id, reason in skipped.items():
            warnings.warn(f"left out {head_id}: {reason}")
        for result in results:
            _info(f"exported {result.task or 'the encoder'} as {result.model_class} to {result.path}")
        return
    name = _pick_task(model, task, ", or --task all (each task's model, and the encoder the tasks share)", predicting=False)
    result = export_task(model, name, out_dir, overwrite=overwrite, source=location.model_dir)
    how = f'pipeline("{result.pipeline}", model={str(result.path)!r})' if result.pipeline else f"{result.model_class}.from_pretrained({str(result.path)!r})"
    _info(f"exported {result.task} as {result.model_class} to {result.path} (logits match within {result.max_difference:.1e}); load it with {how}")


def _is_inside(path: Path, parent: Path) -> bool:
    try:
        return path.expanduser().resolve().is_relative_to(parent.expanduser().resolve())
    except OSError:
        return False


def register(app: typer.Typer) -> None:
    app.command("export")(export)
