"""Building a training run from a checked config: accelerator, encoder, data, model, optimiser.

:func:`build_engine` does everything heavy, in order: accelerator (device, precision, DDP),
seed, tokenizer (a tiny demo encoder is built first when asked), model, distillation teachers, data of every task,
loss strategy, batch sampler, optimiser and schedule, ``accelerator.prepare``; then it starts
the run directory or restores the latest checkpoint (``resume=True``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtcore.errors import ConfigError, OutputError
from mtcore.train.checkpoint import Checkpoints, TrainState, read_checkpoint, warn_about_cpu_threads
from mtcore.train.class_balance import apply_balanced_weights
from mtcore.train.config import TrainConfig
from mtcore.train.config_io import check_same_config, config_to_dict, dump_config
from mtcore.train.distributed import is_peer_failure, let_the_main_process_report
from mtcore.train.encoder_source import encoder_source, load_tokenizer
from mtcore.train.run_dir import MetricsLog, RunDir, StartGuard
from mtcore.train.teachers import check_teachers, load_teachers
from mtcore.train.run_lock import RunLock
from mtcore.train.steps import build_sampler, check_frozen_steps, long_epoch_note, run_batches, run_steps
from mtcore.train.encoder_checks import check_packed_attention_device
from mtcore.train.accelerator import make_accelerator
from mtcore.train.validate import RunPlan

@dataclass
class Engine:
    """Everything the training loop works with."""

    config: TrainConfig
    plan: RunPlan
    run: RunDir
    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    strategy: Any
    sampler: Any
    train_data: dict[str, Any]
    eval_data: dict[str, Any]
    tasks: dict[str, Any]
    tokenizer: Any
    total_steps: int
    checkpoints: Checkpoints
    log: MetricsLog
    state: TrainState = field(default_factory=TrainState)
    rng_to_restore: dict[str, Any] | None = None
    resumed_from: Path | None = None
    nan_at_step: int | None = None
    last_step_batches: int | None = None  # the run's last optimizer step's: those left after accumulation (None: all of them)
    notes: list[str] = field(default_factory=list)
    metric_fns: dict[str, Any] = field(default_factory=dict)
    scored: dict[str, Any] = field(default_factory=dict)  # every task evaluated: ``tasks`` and the evaluate-only ones
    eval_heads: dict[str, str] = field(default_factory=dict)  # evaluate-only task -> the trained task whose head scores it
    eval_splits: dict[str, str] = field(default_factory=dict)  # evaluate-only task -> its split
    started_at: float | None = None
    seconds_before: float = 0.0  # seconds the run trained before the checkpoint it resumed from
    timing: dict[str, float] = field(default_factory=dict)
    lock: RunLock | None = None  # the run folder's, held by the main process until train() ends
    summary: dict[str, Any] | None = None  # set once summary.json is written: the run has finished
    distiller: Any = None  # distill: the teachers' share of the distilled tasks' losses (mtcore.train.distill)
    r3f: Any = None  # loss.r3f: the smoothness term (mtcore.train.regularization)

    def train_seconds(self) -> float | None:
        """Seconds of training so far: this process's and, resumed, the run's up to its checkpoint."""
        import time

        return self.seconds_before + time.perf_counter() - self.started_at if self.started_at is not None else None

    @property
    def unwrapped(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    @property
    def is_main(self) -> bool:
        return bool(self.accelerator.is_main_process)


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Silence the ``transformers`` progress bars, and ``datasets``' unless stderr is a terminal: there its
    "Preparing <task> <split>" / "Tokenizing ..." bars are the progress of a first run on a large set
    (minutes, with nothing else to show); in logs they would be noise."""
    import sys

    from datasets.utils.tqdm import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled
    from transformers.utils import logging as hf_logging

    datasets_on, transformers_on = is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    if not sys.stderr.isatty():
        disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            enable_progress_bars()
        if transformers_on:
            hf_logging.enable_progress_bar()


def load_data(plan: RunPlan, tokenizer: Any, encoder_config: Any, accelerator: Any, notes: list[str]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Tokenized train / evaluation data of every task (the main process fills caches first), and the split of each
    evaluate-only task (:mod:`mtcore.train.eval_tasks`), whose data joins the evaluation data."""
    from mtcore.data import load_task_data
    from mtcore.data.task_data import MissingSplit
    from mtcore.train.eval_tasks import check_span_readers, load_evaluated

    config = plan.config
    split = config.evaluation.split
    train, evaluation = {}, {}
    options = {"encoder_config": encoder_config, "pad_to_multiple_of": config.batching.pad_to_multiple_of,
               "padding_free": config.batching.padding_free}
    with accelerator.main_process_first():
        for p in plan.tasks:
            options["holdout"] = p.entry.holdout
            try:
                data = load_task_data(p.task, tokenizer, source=p.source, data_dir=p.data_dir, splits=("train", split),
                                      max_length=p.task.max_length, **options)
            except MissingSplit as exc:
                if exc.split != split:
                    raise
                hint = " (set its holdout, e.g. 0.1, to hold out a share of train as validation)" if split == "validation" else ""
                notes.append(f"task {p.id!r} has no {split!r} split in source {p.source!r}: it is trained but not evaluated{hint}")
                data = load_task_data(p.task, tokenizer, source=p.source, data_dir=p.data_dir, splits=("train",),
                                      max_length=p.task.max_length, **options)
            held = data.info.get("held_out")
            if held:
                because = f" ({held['because']})" if held["because"] else ""
                notes.append(f"task {p.id!r}: validation = {p.entry.holdout:g} of train held out "
                             f"({held['rows']} rows, the same in every run){because}")
            train[p.id] = data
            if split in data.splits:
                evaluation[p.id] = data
                _warn_if_unlabelled(p.id, data, split)
            if p.entry.source is None and p.source == "sample" and p.entry.define is None:  # a bare id: say whose rows they are
                notes.append(f"task {p.id!r} reads the sample its plugin ships ({data.rows_text('train')} train rows): it has no "
                             "hub source and no data_dir was given; set source: local and data_dir for your files")
        scored, splits = load_evaluated(plan, tokenizer, options, notes)
    for task_id, data in scored.items():
        _warn_if_unlabelled(task_id, data, splits[task_id])
    check_span_readers(plan, {**train, **scored})  # before training: evaluate_with's and teachers' heads read these rows too
    return train, {**evaluation, **scored}, splits


def _warn_if_unlabelled(task_id: str, data: Any, split: str) -> None:
    """A warning when no row of the evaluation split has a label: evaluation would score nothing, silently."""
    import warnings

    if data.task.kind.value == "extractive_qa":  # scored: the questions with gold answers (also those cut off)
        labelled = "answers" in data.splits[split].column_names and any(data.splits[split].with_format("arrow")["answers"].to_pylist())
    else:
        labelled = data.is_labelled(split)
    if not labelled:  # a masked_lm task's rows: blank texts, no token to mask
        said = ("no row with a token to mask (blank texts), so it will not be scored" if data.task.kind.value == "masked_lm" else "no labelled "
                f"rows, so it will not be scored (evaluation.split={split}); evaluate on a split with labels, e.g. evaluation.split=validation")
        warnings.warn(f"task {task_id!r}: its {split} split has {said}", UserWarning, stacklevel=2)


def build_model(plan: RunPlan, source: str, tokenizer: Any) -> Any:
    from mtcore.model import MultitaskModel

    enc = plan.config.encoder
    kwargs: dict[str, Any] = dict(enc.options)
    if enc.revision:
        kwargs.setdefault("encoder_kwargs", {})["revision"] = enc.revision
    try:
        model = MultitaskModel(source, {p.id: p.task for p in plan.tasks}, tokenizer=tokenizer, attn_implementation=enc.attn_implementation,
                               gradient_checkpointing=enc.gradient_checkpointing, freeze_encoder=enc.freeze_encoder,
                               freeze_layers=enc.freeze_layers, task_layers=enc.task_layers, trust_remote_code=enc.trust_remote_code,
                               padding_free=plan.config.batching.padding_free, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"config key 'encoder.options': {exc}") from None
    pooler = getattr(model.encoder, "pooler", None)
    if model.has_pooler and pooler is not None and not any(getattr(h, "uses_pooler", False) for h in model.heads.values()):
        # no head reads it: it gets no gradient either way, and DDP (one task: no unused-parameter search) fails on it
        pooler.requires_grad_(False)
    return model


def build_strategy(plan: RunPlan, model: Any = None) -> Any:
    """The loss strategy, attached to ``model`` when given; one that takes a ``seed`` option gets the run's seed
    unless it is given."""
    import inspect

    options = dict(plan.config.loss.options)
    if "seed" in inspect.signature(plan.strategy_cls).parameters:
        options.setdefault("seed", plan.config.seed)
    strategy = plan.strategy_cls(plan.task_ids, weights=plan.strategy_weights, **options)
    if model is not None:
        strategy.attach(model)
    return strategy


def _nan_step(config: TrainConfig) -> int | None:
    env = os.environ.get("MT_INJECT_NAN_AT_STEP", "").strip()
    if env:
        try:
            return int(env)
        except ValueError:
            raise ConfigError(f"MT_INJECT_NAN_AT_STEP must be a step number, got {env!r}") from None
    return config.debug.inject_nan_at_step


def _start_run_dir(config: TrainConfig, run: RunDir, resume: bool, accelerator: Any) -> None:
    """Check and create the run directory; on resume, refuse a changed config.

    Every process runs the (read-only) checks, so under DDP all of them stop together.
    """
    run.held_a_run = run.config.is_file()  # before this start writes its config.yaml
    if resume and run.held_a_run:
        run.check_config_is_ours(resume=True)
        check_same_config(config, run)
    elif not resume:
        run.check_new()
    else:  # --resume of a folder with no run yet: it starts one there
        run.check_location()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        run.create()
        root = run.root.absolute()  # its output_dir is this folder: mt train RUN/config.yaml --resume continues this run
        try:
            dump_config(config.model_copy(update={"output_dir": str(root)}), run.config,
                        header=f"{RunDir.CONFIG_HEADER}; resume with: mt train {root / 'config.yaml'} --output-dir {root} --resume")
        except OSError as exc:  # a full disk or quota, the file-size limit: nothing has trained yet
            from mtcore.outputs import write_error, write_fix

            fix = write_fix(exc.errno, run.root)
            raise OutputError(f"{write_error(run.config, exc)}{'; ' + fix if fix else ''}", errno=exc.errno) from None
    accelerator.wait_for_everyone()


def build_engine(plan: RunPlan, output_dir: str | Path, *, resume: bool = False) -> Engine:
    """Build every object of the run (see the module docstring).

    When building fails (bad data, an encoder that cannot be loaded) everything the start wrote
    is removed again (:class:`~mtcore.train.run_dir.StartGuard`: the files it added to a folder
    that was there, the folders it made): nothing half-written stays on disk.
    """
    config = plan.config
    run = RunDir(output_dir)
    run.check_location("--output-dir")
    if config.distill is not None:  # the teachers' manifests, before the run folder exists (a missing one's near names) and the model
        check_teachers(plan)
    made = StartGuard.missing(run.root)
    guard: StartGuard | None = None  # taken once the lock is held: what another process writes meanwhile is not ours
    accelerator = make_accelerator(config, run, len(plan.tasks))
    if accelerator.num_processes > 1 and not getattr(plan.strategy_cls, "supports_distributed", True):
        from mtcore.plugins import load_registry
        from mtcore.train.losses import distributed_alternatives

        raise ConfigError(f"config key 'loss.strategy': {config.loss.strategy!r} does not run under DDP "
                          f"({accelerator.num_processes} processes); use {distributed_alternatives(load_registry(), plan.strategy_cls)}")
    lock = RunLock(run.root)
    try:
        if accelerator.is_main_process:  # one training process per run folder, from before its checks to its end
            run.make_root()
            lock.acquire()
            guard = StartGuard(run.root, made=made)
        _start_run_dir(config, run, resume, accelerator)
        engine = _build(plan, run, accelerator, resume)
    except BaseException as error:
        if accelerator.is_main_process and guard is not None:  # a run that failed while starting leaves nothing behind
            guard.undo()
            lock.release()
        elif accelerator.is_main_process:  # refused by the lock: the folder is another process's, only empty ones we made go
            from mtcore.outputs import remove_empty

            remove_empty(made)
        else:  # the main process fails too: let it undo and report before the launcher stops this one
            let_the_main_process_report(error)
        if accelerator.num_processes > 1 and is_peer_failure(error):  # a collective of the start: another process failed
            from mtcore.train.monitor import TrainingError

            raise TrainingError("another process of this launch stopped while the run was starting (its own error, when it "
                                "printed one, is above), so this one cannot go on; fix that and start the run again") from None
        raise
    engine.lock = lock
    return engine


def _build(plan: RunPlan, run: RunDir, accelerator: Any, resume: bool) -> Engine:
    import torch
    from accelerate.utils import set_seed

    from mtcore.plugins import component_ref, get_component
    from mtcore.train.distill import build_distiller
    from mtcore.train.optim import build_optimizer, build_scheduler

    config = plan.config
    check_packed_attention_device(config, accelerator.device)
    notes: list[str] = []
    with quiet_progress_bars():
        source = encoder_source(config, run, accelerator)  # a tiny demo encoder is built only the first time
        tokenizer = load_tokenizer(source, config)
        set_seed(config.seed)  # after it, so that a resumed run's heads start from the same random state
        model = build_model(plan, source, tokenizer)
        from mtcore.train.warm_start import warm_start

        notes.extend(warm_start(model, config, {p.id: p.task for p in plan.tasks}))  # a checkpoint's weights, saved heads
        teachers, taught = load_teachers(plan, tokenizer, model, accelerator.device)  # distill: before the data
        notes.extend(taught)
        train_data, eval_data, eval_splits = load_data(plan, tokenizer, model.encoder.config, accelerator, notes)
        notes.extend(apply_balanced_weights(model, plan.tasks, train_data))  # class_weights: balanced, from the train labels
    model.to(accelerator.device)
    model.train()
    if accelerator.device.type == "cuda":
        from mtcore.model.padding_free import note_device
        from mtcore.train.cuda import configure_cuda_kernels

        configure_cuda_kernels()
        note_device(accelerator.device)  # FlashAttention's varlen kernel only where the GPU runs it
    if config.compile.enabled:
        from mtcore.train.compile import compile_encoder

        c = config.compile
        compile_encoder(model, dynamic=c.dynamic, mode=None if c.mode == "default" else c.mode, backend=c.backend, regional=c.regional)
    strategy = build_strategy(plan, model).to(accelerator.device)
    sampler = build_sampler(plan, train_data, accelerator)
    total_steps, last_step_batches = run_steps(sampler, config)
    check_frozen_steps(config, total_steps)
    notes.extend(note for note in [long_epoch_note(sampler, run_batches(total_steps, last_step_batches, config))] if note)
    optimizer = build_optimizer(model, config.optimizer, accelerator.device, extra=strategy.parameters())
    scheduler = build_scheduler(optimizer, config.schedule, total_steps, config.encoder.freeze_encoder_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    engine = Engine(
        config=config, plan=plan, run=run, accelerator=accelerator, model=model, optimizer=optimizer, scheduler=scheduler,
        strategy=strategy, sampler=sampler, train_data=train_data, eval_data=eval_data,
        tasks={p.id: p.task for p in plan.tasks}, tokenizer=tokenizer, total_steps=total_steps, last_step_batches=last_step_batches,
        checkpoints=Checkpoints(run.checkpoints, config.checkpoint.keep_last, config.checkpoint.keep_best),
        log=MetricsLog(run.metrics, enabled=accelerator.is_main_process), nan_at_step=_nan_step(config), notes=notes,
    )
    engine.scored = {**engine.tasks, **{e.id: e.task for e in plan.evaluated}}
    engine.distiller = build_distiller(config, teachers, engine.tasks, engine.unwrapped, total_steps)
    if config.loss.r3f is not None:
        from mtcore.train.regularization import R3F

        engine.r3f = R3F(config.loss.r3f, {t: task.kind.value for t, task in engine.tasks.items()}, engine.unwrapped)
    engine.eval_heads, engine.eval_splits = {e.id: e.head for e in plan.evaluated}, eval_splits
    engine.metric_fns = {ref: get_component("metric", ref) for t in engine.scored.values()  # keyed as compute_metrics asks
                         for ref in (component_ref("metric", name, t.metric_owner) for name in t.all_metrics)}
    if config.encoder.tiny is not None:
        engine.notes.append(f"encoder: {source} is a RANDOM-INIT DEMO ENCODER (not pretrained)")
    engine.notes += [f"task {t!r}: its masked_lm head starts from {source}'s pre-trained one ({h.pretrained})"
                     for t, h in engine.unwrapped.heads.items() if getattr(h, "pretrained", None) and not resume]
    if resume:
        _restore(engine, torch)
    if config.logging.trackers:  # last: a resumed run's trackers continue at its step; one that fails to start leaves nothing
        from mtcore.train.trackers import start_trackers

        start_trackers(engine, _flat(config_to_dict(config)))
    return engine


def _restore(engine: Engine, torch: Any) -> None:
    """Load the latest complete checkpoint, if any, into the engine."""
    accelerator = engine.accelerator
    if accelerator.is_main_process:
        engine.checkpoints.clean_temporary()
        engine.run.clean_temporary()
    accelerator.wait_for_everyone()
    latest = engine.checkpoints.latest()
    if latest is None:
        if engine.run.held_a_run:
            engine.notes.append(f"--resume: no checkpoint in {engine.run.checkpoints}; starting from step 0")
        else:  # a new folder: the first start of a job that always resumes, or a mistyped --output-dir
            engine.notes.append(f"--resume: {engine.run.root} holds no run to continue; a new run starts from step 0 (check "
                                "--output-dir if you meant to continue one)")
        if accelerator.is_main_process:
            engine.log.truncate_after(0)
        return
    scaler = getattr(accelerator, "scaler", None)
    engine.state, engine.rng_to_restore = read_checkpoint(
        latest, model=engine.unwrapped, optimizer=engine.optimizer, scheduler=engine.scheduler, scaler=scaler,
        strategy=engine.strategy, sampler=engine.sampler, rank=accelerator.process_index, processes=accelerator.num_processes)
    engine.resumed_from = latest
    if accelerator.is_main_process:
        engine.log.truncate_after(engine.state.step, evaluated=engine.state.last_eval_step == engine.state.step)
    engine.notes.append(f"resumed from {latest} (step {engine.state.step})")
    warn_about_cpu_threads(engine.state.cpu_threads, torch.get_num_threads(), latest, accelerator.device.type)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[f"{prefix}{key}"] = value if value is not None else "null"
        else:
            out[f"{prefix}{key}"] = str(value)
    return out
