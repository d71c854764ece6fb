"""The training loop: one function, :func:`train_loop`.

Per optimizer step: ``gradient_accumulation_steps`` micro-steps, each one batch (mode
``single``) or one batch of every task (mode ``all``), drawn together at the step's start; each
task's forward and backward run separately (a loss strategy's per-task term, divided so that the
task's loss is the mean over all its items in the step, every process's included:
:mod:`mtcore.train.step_weights`), inside ``no_sync`` except for the very last backward of the
step, so DDP reduces gradients once per step and only one graph is alive at a time. PCGrad-like strategies keep
every task's graph of a micro-step, run outside DDP's sync, and write the gradients themselves once per step
(summed over micro-steps, averaged over processes: :class:`~mtcore.train.losses.GradientCombiner`). Then
clipping, the optimizer and schedule steps; a strategy with ``needs_losses_after_step`` (FAMO) then gets the step's
losses before and after the update, its batches run forward again without gradients (one with ``needs_losses_before_step``
gets them before its micro-steps, to weigh them: GLS, STCH); then the events due at this step (logging,
evaluation, checkpoint, early stopping) from :mod:`mtcore.train.events`.

Nothing in the hot path reads a device value: losses are summed on the device
(:class:`~mtcore.train.monitor.LossMeter`), non-finite losses are flagged on the device
(:class:`~mtcore.train.monitor.NonFiniteWatch`), and both are read at logging, evaluation and
checkpoint steps only; so is the total gradient norm before clipping (``grad_norm`` of the
``train`` events: :func:`gradient_norm` computes it at logging steps when nothing clips).

SIGTERM and SIGUSR1 stop the loop gracefully (:mod:`mtcore.train.preemption`): after the step in
progress (one process) or at the next logging step (DDP: all ranks agree there), with a checkpoint
of that step, then :class:`~mtcore.train.preemption.Preempted` is raised. Under torchrun a signal
sent because a worker died stops the loop at once with a :class:`TrainingError` instead.

Any other error that stops a started run (NaN loss, out of memory, a metric that fails in an
evaluation, a write into the run folder that fails: :mod:`mtcore.train.run_writes`, a bug) first writes an ``error`` event to ``metrics.jsonl`` (the line ``mt train`` prints, and the
step that line names, else the last step completed: :func:`log_error`), so ``mt compare`` tells a failed run from
one still going; Ctrl-C (KeyboardInterrupt) does not.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext, suppress
from typing import Any

from mtcore.data.batch import model_inputs
from mtcore.error_origin import unexpected_line
from mtcore.errors import MtError
from mtcore.train import events
from mtcore.train.build import Engine
from mtcore.train.distill import task_loss
from mtcore.train.checkpoint import restore_rng
from mtcore.train.distributed import is_peer_failure, report_at_once
from mtcore.train.evaluation import head_class_weights
from mtcore.train.monitor import LossMeter, NonFiniteWatch, TrainingError, out_of_memory
from mtcore.train.optim import encoder_groups, split_parameters
from mtcore.train.preemption import Preempted, Preemption, TrainingInterrupted, note_late_interrupt
from mtcore.train.run_writes import run_write_error
from mtcore.train.step_losses import StepLosses, losses_after_step, losses_before_step
from mtcore.train.step_weights import loss_items, step_divisors
from mtcore.train.strategy_checks import checked_term
from mtcore.train.trackers import end_trackers


def batch_stream(sampler: Any) -> Iterator[Any]:
    """The sampler's batches across epochs, forever.

    The sampler moves itself to the next epoch when one is complete, also when it was restored
    exactly at the end of an epoch (that pass yields nothing and only advances it): moving it
    here too would skip a whole epoch.
    """
    empty = 0
    while True:
        got = False
        for item in sampler:
            got = True
            yield item
        empty = 0 if got else empty + 1
        if empty > 1:
            raise RuntimeError("the batch sampler yields no batches")


def step_skipped(optimizer: Any, scaler: Any, scale_before: float | None) -> bool:
    """Whether the optimizer step was skipped for inf/NaN gradients (fp16), so the schedule must not advance.

    Accelerate tells only when ``optimizer.step`` was not called; a fused AdamW is always called
    and skips the update inside, so a drop of the grad scaler's scale (what it does on every skip)
    tells too."""
    if optimizer.step_was_skipped:
        return True
    return scaler is not None and scale_before is not None and scaler.get_scale() < scale_before


def gradient_norm(parameters: list[Any], scaler: Any) -> Any:
    """The total L2 norm of the parameters' gradients, unscaled under fp16 (as ``clip_grad_norm_`` reports it),
    as a device tensor (no host read); None when no parameter has a gradient."""
    import torch

    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return None
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads]))
    return norm / scaler.get_scale() if scaler is not None else norm  # the scale: a host read, at logging steps only


def error_line(error: BaseException) -> str:
    """What ``mt train`` prints for ``error`` (after ``error: ``): an :class:`MtError`'s own line, else the type and text,
    and the plugin or user code it came from (:func:`mtcore.error_origin.unexpected_line`)."""
    return " ".join(str(error).split()) if isinstance(error, MtError) else unexpected_line(error)


def log_error(engine: Engine, error: BaseException) -> None:
    """The ``error`` event of a run that stops on ``error`` (main process only: ``engine.log`` is off elsewhere). Its
    ``step`` is the one the line names (a :class:`TrainingError`'s ``step``: the first step whose loss was NaN or
    infinite, the step in progress when memory ran out or another process stopped), else the last step completed."""
    named = error.step if isinstance(error, TrainingError) else None
    step = named if isinstance(named, int) else engine.state.step
    try:
        engine.log.write({"event": "error", "step": step, "message": error_line(error), "time": time.time()})
    except OSError:  # a full or vanished disk: the error itself is what the user must see
        pass


def train_loop(engine: Engine) -> dict[str, Any]:
    """Train until ``engine.total_steps`` (or early stopping); returns the run summary."""
    import torch

    acc, model, optimizer, scheduler, strategy = engine.accelerator, engine.model, engine.optimizer, engine.scheduler, engine.strategy
    config, state = engine.config, engine.state
    accumulation = config.optimizer.gradient_accumulation_steps
    max_grad_norm = config.optimizer.max_grad_norm
    delay = config.debug.step_delay_s
    pin = acc.device.type == "cuda"
    meter = LossMeter(engine.plan.task_ids, acc.device)
    meter.restore_window(state.log_window, main=acc.is_main_process)  # resumed mid-window: the checkpoint's sums so far
    watch = NonFiniteWatch(engine.plan.task_ids, acc.device, engine.config.loss.strategy)
    progress = events.start_progress(engine)
    shared, others = split_parameters(engine.unwrapped)
    clipped = [p for group in optimizer.param_groups for p in group["params"]]
    frozen_steps = config.encoder.freeze_encoder_steps  # the encoder's gradients are dropped: no update, no Adam moments
    frozen = [p for i in encoder_groups(optimizer) for p in optimizer.param_groups[i]["params"]] if frozen_steps else []
    # ... and, unless the strategy weighs the tasks by their encoder gradients, the backward pass skips the encoder then
    skip_encoder = bool(frozen_steps) and not strategy.owns_backward
    student = engine.unwrapped
    scaler = getattr(acc, "scaler", None)  # fp16's grad scaler
    scale = scaler.scale if scaler is not None else (lambda loss: loss)
    batches = batch_stream(engine.sampler)
    reduce_mean = (lambda tensor: acc.reduce(tensor, "mean")) if acc.num_processes > 1 else None
    reduce_sum = (lambda tensor: acc.reduce(tensor, "sum")) if acc.num_processes > 1 else None
    kinds = {task_id: task.kind.value for task_id, task in engine.tasks.items()}
    class_weights = {task_id: head_class_weights(engine.unwrapped, task_id) for task_id in engine.tasks}
    if engine.rng_to_restore is not None:
        restore_rng(engine.rng_to_restore)
    model.train()
    task, batch = "", None
    started = time.perf_counter()

    in_step: list[int] = []  # the step whose events (evaluation, checkpoint) run now: state.step is already that step

    def peer_stopped() -> TrainingError:
        step = in_step[0] if in_step else state.step + 1
        latest = engine.checkpoints.latest()
        then = (f"the run continues from its last checkpoint ({latest.name}) with --resume under the same launch" if latest is not None
                else "--resume under the same launch starts it again (no checkpoint yet)")
        return TrainingError(f"another process of this launch stopped during step {step} (its own error, when it printed one, is "
                             f"above), so this one cannot go on; {then}", step=step)

    def stuck() -> None:  # the watcher thread, while this one waits for a dead worker (a collective): report, then exit
        error = peer_stopped()
        log_error(engine, error)
        if engine.is_main:
            print(f"error: {error}", file=sys.stderr, flush=True)

    with Preemption(acc.num_processes, on_stuck=stuck) as preemption:  # SIGTERM/SIGUSR1/SIGHUP handlers, for the loop only
        try:
            while state.step < engine.total_steps and not state.stopped_early:
                step = state.step + 1
                strategy.begin_step(step, reduce_mean)
                if skip_encoder:
                    student.encoder_without_grad = step <= frozen_steps
                waited = time.perf_counter()
                drawn = accumulation if step < engine.total_steps else engine.last_step_batches or accumulation  # the last: what is left
                groups = [item if isinstance(item, list) else [item] for item in (next(batches) for _ in range(drawn))]
                meter.waited(time.perf_counter() - waited)
                items = [[loss_items(batch, kinds[batch.name], class_weights[batch.name]) for batch in group] for group in groups]
                divisors = step_divisors(groups, items, engine.plan.task_ids, processes=acc.num_processes, reduce_sum=reduce_sum,
                                         device=acc.device)  # each task's loss: the mean over its items in the step
                if strategy.needs_losses_before_step:  # the step's losses first, on the streams the step then draws from
                    ahead = losses_before_step(model, acc, groups, divisors, strategy.task_ids, engine.distiller, step, engine.r3f)
                    strategy.before_step(ahead, step, reduce_mean)
                before = StepLosses(strategy.task_ids, acc.device) if strategy.needs_losses_after_step else None
                for micro, group in enumerate(groups):
                    losses = {}
                    for k, batch in enumerate(group):
                        task = batch.name
                        syncs = micro == len(groups) - 1 and k == len(group) - 1
                        with nullcontext() if syncs and not strategy.owns_backward else acc.no_sync(model):  # owns_backward: never DDP's
                            if pin:  # asynchronous host-to-device copy: no wait for the GPU's queue
                                batch.data.pin_memory()
                            batch.data.to(acc.device, non_blocking=pin)
                            with acc.autocast():  # model_inputs: no all-ones mask, so no sync; distill: the teacher's share mixed in
                                loss = task_loss(model, task, model_inputs(batch.data), engine.distiller, step, engine.r3f)
                            if engine.nan_at_step == step and k == 0:
                                loss = loss * float("nan")  # test hook: MT_INJECT_NAN_AT_STEP
                            watch.observe(task, loss, step)
                            copy = getattr(batch, "duplicate", False)  # DDP: a lower rank's batch again; trains and counts nothing
                            meter.add(task, loss, 0 if copy else batch.size, 0 if copy else batch.num_tokens, items[micro][k])
                            if before is not None:  # the step's losses before its update, for the strategy's after_step
                                before.add(task, loss, divisors[micro][k])
                            if strategy.owns_backward:
                                losses[task] = loss / divisors[micro][k]
                            else:
                                term = checked_term(strategy, task, strategy.term(task, loss))
                                watch.observe_term(task, term, step)
                                acc.backward(term / divisors[micro][k])
                    if strategy.owns_backward:
                        strategy.backward(losses, shared, others, scale, step)
                if strategy.owns_backward:  # its forwards ran outside DDP's sync: it averages over processes itself
                    strategy.end_backward(shared, others, step, reduce_mean)
                if acc.num_processes > 1:
                    strategy.sync_gradients(lambda g: acc.reduce(g, "mean"))
                if step <= frozen_steps:  # encoder.freeze_encoder_steps: the heads train alone (nor is the encoder in the norm)
                    for p in frozen:
                        p.grad = None
                logs = events.logging_due(engine, step)  # the gradient norm stays on the device; read at logging steps only
                if max_grad_norm is not None:
                    grad_norm = acc.clip_grad_norm_(clipped, max_grad_norm)  # fp16: unscales first; the norm before clipping
                else:
                    grad_norm = gradient_norm(clipped, scaler) if logs else None
                scale_before = scaler.get_scale() if scaler is not None else None  # fp16 only: a host read of the scale
                lr = optimizer.param_groups[0]["lr"]  # the rate this step trains at (the schedule moves on below)
                optimizer.step()
                if not step_skipped(optimizer, scaler, scale_before):
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if before is not None:  # the same batches again at the new parameters, no gradients (FAMO: about a forward per step)
                    after = losses_after_step(model, acc, groups, divisors, strategy.task_ids, engine.distiller, step, engine.r3f)
                    strategy.after_step(before, after, step, reduce_mean)
                if preemption.peer_gone:  # torchrun stopping the workers because one died: no logging step's collective
                    raise peer_stopped()
                state.step = step
                in_step[:] = [step]
                events.after_step(engine, meter, watch, progress, preemption, grad_norm if logs else None, lr)
                in_step.clear()
                if delay:
                    time.sleep(delay)  # test hook: debug.step_delay_s
                if preemption.peer_gone:  # (came during the events of this step)
                    raise peer_stopped()
                if preemption.signum and not preemption.noted:  # a host flag: no device read
                    preemption.noted = True
                    when = "now" if preemption.processes == 1 else "at the next logging step, with the other processes,"
                    progress.message(f"{preemption.signal_name} received: stopping {when} with a checkpoint")
                if preemption.due() and state.step < engine.total_steps:  # the last step's: the run finishes instead
                    raise events.preempt(engine, meter, watch, progress, preemption)
            engine.timing = {"loop_s": time.perf_counter() - started, "data_wait_s": meter.total_data_wait}
            return events.finish(engine, meter, watch, progress)
        except torch.OutOfMemoryError:
            size = batch.size if batch is not None else 0
            tokens = batch.num_tokens if batch is not None else 0
            error = out_of_memory(state.step + 1, task, size, tokens)
            log_error(engine, error)
            raise report_at_once(error) from None  # one GPU's: said now, before the others' "a process stopped"
        except Preempted:
            raise  # its own "preempted" event is written
        except KeyboardInterrupt:  # Ctrl-C: at once, no checkpoint of its own; say which one --resume continues from
            if engine.summary is not None:  # after model/ and summary.json: the run is done, only its plot is not
                progress.message("note: Ctrl-C after the run finished (model/ and summary.json are written); curves.png "
                                 "was not drawn")
                note_late_interrupt()  # a --seeds or --grid sweep stops before its next run
                return engine.summary
            latest = engine.checkpoints.latest()
            with suppress(OSError):
                engine.log.write({"event": "interrupted", "step": state.step, "checkpoint": str(latest) if latest else None,
                                  "time": time.time()})
            raise TrainingInterrupted(state.step, latest, engine.run.root) from None
        except RuntimeError as exc:  # a collective failing: another process of the launch stopped (killed, out of memory)
            if engine.accelerator.num_processes < 2 or not is_peer_failure(exc):
                log_error(engine, exc)
                raise
            error = peer_stopped()
            log_error(engine, error)
            raise error from None
        except Exception as exc:  # any other error ends the run too: mt compare shows it as failed, with this line
            written = run_write_error(engine.run.root, exc, engine.checkpoints)  # a full disk, a folder gone, ...
            log_error(engine, written or exc)
            if written is not None:
                raise written from None
            raise
        finally:
            progress.close()
            if skip_encoder:
                student.encoder_without_grad = False
            if engine.accelerator.trackers:  # still open: the run stopped on an error (finish() ends them otherwise)
                end_trackers(engine, failed=True)
