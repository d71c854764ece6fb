"""``Trainer``: the notebook entry point, the same engine as ``mt train``.

::

    from mtcore import Trainer
    summary = Trainer("examples/quickstart.yaml", output_dir="runs/demo").train()
    trainer = Trainer({"encoder": {"tiny": "bert"}, "tasks": [{"id": "rsg:terra", "source": "sample"}]},
                      output_dir="runs/t", overrides=["schedule.max_steps=50"])
    summary = trainer.train()
    model = trainer.model            # the trained MultitaskModel

The config is validated (and checked against the installed plugins) when the Trainer is built;
nothing heavy happens until :meth:`Trainer.train`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtcore.train.config import TrainConfig
from mtcore.train.config_io import anchor_paths, load_config, read_yaml
from mtcore.train.distributed import main_process_warnings
from mtcore.train.run_dir import run_of_config
from mtcore.train.validate import RunPlan, plan_run


def resolve_output_dir(config: TrainConfig, output_dir: str | Path | None, config_path: str | Path | None) -> Path:
    """``--output-dir``, else the run folder when ``config_path`` is a run's own ``config.yaml`` (the run it sits in, also
    when moved since: :func:`~mtcore.train.run_dir.run_of_config`; unless an ``output_dir=`` override changed it),
    else the config's ``output_dir``, else ``runs/<config file stem>``."""
    if output_dir is not None:
        if not str(output_dir).strip():
            from mtcore.errors import ConfigError

            raise ConfigError("--output-dir is empty; give the folder the run goes to (output_dir=)")
        return Path(output_dir).expanduser()
    if config_path is not None and (run := run_of_config(config_path)) is not None:
        if config.output_dir == read_yaml(config_path).get("output_dir"):  # not overridden
            return run
    if config.output_dir:
        return Path(config.output_dir).expanduser()
    stem = Path(config_path).stem if config_path is not None else "run"
    return Path("runs") / stem


class Trainer:
    """Train a multitask model from a config (path, mapping or :class:`TrainConfig`).

    :param config: a YAML path, a mapping with the same keys, or a ``TrainConfig``.
    :param output_dir: the run directory (default: the run folder of a run's own ``config.yaml``, else the config's
        ``output_dir`` or ``runs/<stem>``).
    :param overrides: ``key=value`` strings applied on top of the config.
    :param resume: continue the run in ``output_dir`` from its latest checkpoint.
    """

    def __init__(self, config: str | Path | Mapping[str, Any] | TrainConfig, output_dir: str | Path | None = None, *,
                 overrides: Iterable[str] = (), resume: bool = False) -> None:
        from mtcore.errors import ConfigError

        if not isinstance(config, (str, Path, Mapping, TrainConfig)):
            raise ConfigError(f"config must be a YAML path, a mapping or a TrainConfig, got {type(config).__name__}")
        if isinstance(overrides, str):
            overrides = [overrides]  # one key=value
        config_path = Path(config) if isinstance(config, (str, Path)) else None
        with main_process_warnings():  # under DDP every process plans the same run: the main one warns
            self.config: TrainConfig = load_config(config, overrides)
            self.output_dir = resolve_output_dir(self.config, output_dir, config_path)
            # paths from the file start at its folder (load_config); what is still relative came from
            # overrides or a mapping and starts at the current folder
            base_dir = Path.cwd()
            self.config = anchor_paths(self.config, base_dir)  # the run's saved config works from any folder
            self.plan: RunPlan = plan_run(self.config, base_dir=base_dir)
        self.resume = resume
        self.engine: Any = None
        self.summary: dict[str, Any] | None = None

    def train(self) -> dict[str, Any]:
        """Run the training; returns the summary (also written to ``summary.json``). A SIGTERM, SIGUSR1 or SIGHUP while it
        trains writes a checkpoint of the current step and raises :class:`mtcore.train.preemption.Preempted`
        (continue with ``resume=True``). With ``deterministic: true`` the run uses deterministic kernels only, and the
        process's previous torch flags are back when it returns or raises (:mod:`mtcore.train.determinism`)."""
        from mtcore.train.build import build_engine
        from mtcore.train.determinism import deterministic_run
        from mtcore.train.loop import train_loop

        if self.resume and (finished := self.finished_summary()) is not None:
            self.summary = finished  # resume=True of a finished run: nothing to continue, nothing rewritten
            return finished
        _reset_accelerate_state()
        # deterministic: true: its flags are set before the run touches CUDA, and restored when train() returns or raises
        with main_process_warnings(), deterministic_run(self.config.deterministic):
            self.engine = build_engine(self.plan, self.output_dir, resume=self.resume)
            try:
                self.summary = train_loop(self.engine)
            finally:  # the run folder is free again, however the run ended
                if self.engine.lock is not None:
                    self.engine.lock.release()
        self.engine.model.eval()  # as a new or loaded model: trainer.model scores without dropout
        return self.summary

    def finished_summary(self) -> dict[str, Any] | None:
        """The saved summary when ``output_dir`` holds a finished run of this config (its ``summary.json``), else None.

        ``resume=True`` of such a run trains nothing: training it again would rewrite its model, its summary (with the
        time of the resume alone) and its tracker runs for nothing. A run of another config is refused, as for any
        resume; a damaged summary counts as unfinished.
        """
        import json

        from mtcore.train.config_io import check_same_config
        from mtcore.train.run_dir import RunDir

        run = RunDir(self.output_dir)
        if not (run.summary.is_file() and run.config.is_file() and not (run.root / "seeds.json").is_file()):
            return None
        check_same_config(self.config, run)
        try:
            summary = json.loads(run.summary.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        return summary if isinstance(summary, dict) else None

    @property
    def model(self) -> Any:
        """The trained :class:`~mtcore.model.MultitaskModel` (after :meth:`train`), in evaluation mode."""
        if self.engine is None:
            from mtcore.errors import UsageError

            if self.summary is not None:
                raise UsageError(f"the run in {self.output_dir} had already finished, so train() trained nothing: load its model "
                                 f"with MultitaskModel.from_pretrained({str(Path(self.output_dir) / 'model')!r})")
            raise UsageError("Trainer.model is the trained model: call train() first")
        # without the autocast wrapper of a bf16/fp16 run: it predicts in float32, as the saved model does
        return self.engine.accelerator.unwrap_model(self.engine.model, keep_fp32_wrapper=False)


def _reset_accelerate_state() -> None:
    """Let a second Trainer in the same (single) process choose its own precision and device."""
    from accelerate.state import AcceleratorState, GradientState, PartialState

    if PartialState._shared_state and PartialState().num_processes > 1:
        return  # a distributed run: the process group stays
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
