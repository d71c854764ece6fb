"""``mt train CONFIG.yaml [key=value ...] [--output-dir DIR] [--resume]``.

This module imports nothing heavy: the engine is imported inside the command, so ``mt --help``
stays fast. Config mistakes exit with code 2 and one line; training failures (NaN loss, out of
memory) with code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def train(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Training config (YAML file)."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", help="Config overrides: dotted keys, e.g. optimizer.lr=1e-4 tasks.0.max_length=64."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Run directory (default: output_dir in the config, else runs/<config stem>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output directory from its latest checkpoint."),
) -> None:
    """Train a multitask model from a YAML config; artefacts go to the run directory."""
    from mtcore.train.trainer import Trainer

    trainer = Trainer(config, output_dir, overrides=overrides or [], resume=resume)
    summary = trainer.train()  # a run that fails while starting leaves nothing behind (build_engine)
    engine = trainer.engine
    if engine is not None and engine.is_main:
        best = summary.get("best") or {}
        final = summary.get("final") or {}
        parts = [f"steps {summary['steps']}"]
        if final.get("aggregate") is not None:
            parts.append(f"final aggregate {final['aggregate']:.4f}")
        if best.get("aggregate") is not None:
            parts.append(f"best {best['aggregate']:.4f} at step {best['step']}")
        print("trained: " + ", ".join(parts) + f"; run directory {summary['run_dir']}", flush=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
