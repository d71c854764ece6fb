"""What happens between optimizer steps: logging, evaluation, checkpoints, early stopping, the end.

Every process calls these functions at the same steps (they contain collective operations
under DDP); only the main process writes files and prints.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from mtcore.train.build import Engine
from mtcore.train.checkpoint import write_checkpoint_files, write_rank_files
from mtcore.train.versions import run_versions
from mtcore.train.evaluation import evaluate
from mtcore.train.metrics import aggregate
from mtcore.train.monitor import LossMeter, NonFiniteWatch, diverged_evaluation
from mtcore.train.preemption import EXIT_CODE, Preempted, Preemption
from mtcore.train.progress import Progress, choose_mode
from mtcore.train.run_dir import write_json
from mtcore.train.strategy_checks import checked_weights
from mtcore.train.trackers import end_trackers, log_to_trackers


def say(engine: Engine, progress: Progress, line: str) -> None:
    """A line the run must say even without a display (``logging.progress: none``: on stderr, so that a script's own
    stdout, JSON, stays its own), once (the main process)."""
    if progress.mode == "none" and engine.is_main:
        print(line, file=sys.stderr, flush=True)
    else:
        progress.message(line)


def start_progress(engine: Engine) -> Progress:
    """The progress display, with the engine's notes and a ``start`` event."""
    progress = Progress(choose_mode(engine.config.logging.progress, engine.is_main), engine.total_steps)
    for note in engine.notes:  # what the run decided (a task not evaluated, a resume from nothing): said also without a display
        say(engine, progress, f"note: {note}")
    acc = engine.accelerator
    engine.log.write({"event": "start", "step": engine.state.step, "total_steps": engine.total_steps, "tasks": engine.plan.task_ids,
                      "evaluated_with": dict(engine.eval_heads), "processes": acc.num_processes, "device": str(acc.device), "precision": acc.mixed_precision,
                      "sampler_mode": engine.plan.mode, "loss_strategy": engine.config.loss.strategy, "notes": list(engine.notes),
                      "versions": run_versions(acc.device), "time": time.time()})
    engine.started_at, engine.seconds_before = time.perf_counter(), engine.state.train_seconds
    return progress


def _gather(engine: Engine) -> Any:
    return engine.accelerator.gather if engine.accelerator.num_processes > 1 else None


def _reduce(engine: Engine, op: str) -> Any:
    acc = engine.accelerator
    return (lambda t: acc.reduce(t, op)) if acc.num_processes > 1 else None


def count_examples(engine: Engine, meter: LossMeter, preemption: Preemption | None = None) -> None:
    """Add the examples and tokens every process read since the last call to the run's counters.

    Under DDP with ``preemption``, each process's signal flag rides along the same sum (no extra
    collective): every rank learns at this step whether any of them was asked to stop.
    """
    reduce = _reduce(engine, "sum")
    if reduce is not None and preemption is not None:
        import torch

        def reduce_with_flag(counts: Any) -> Any:
            values = reduce(torch.cat([counts, counts.new_tensor([preemption.flag()])])).tolist()  # take_counts reads it anyway
            preemption.agree(int(values[-1]))
            return torch.tensor(values[:-1], dtype=torch.long)

        examples, tokens = meter.take_counts(reduce_with_flag)
    else:
        examples, tokens = meter.take_counts(reduce)
    engine.state.examples_seen += examples
    engine.state.tokens_seen += tokens


def _last_checkpoint(engine: Engine) -> str | None:
    latest = engine.checkpoints.latest()
    return str(latest) if latest is not None else None


def logging_due(engine: Engine, step: int) -> bool:
    """Whether ``step`` writes ``train`` events (every ``logging.every`` steps, and the last step)."""
    return step % engine.config.logging.every == 0 or step >= engine.total_steps


def log_training(engine: Engine, meter: LossMeter, watch: NonFiniteWatch, progress: Progress,
                 preemption: Preemption | None = None, grad_norm: Any = None, lr: float | None = None) -> None:
    """Read the loss sums (the step's host sync), check for NaN, write ``train`` events; under DDP
    the processes also agree here whether a preemption signal came (``preemption.agreed``).

    ``grad_norm``: this step's total gradient norm before clipping (a device tensor, read here), or None. ``lr``: the
    learning rate this step trained at (the first parameter group's, before the schedule moved on); None: the
    schedule's current one."""
    step = engine.state.step
    rows, totals = meter.flush(_reduce(engine, "sum"))
    count_examples(engine, meter, preemption)
    watch.check(_last_checkpoint(engine), _gather(engine))
    lr = engine.scheduler.get_last_lr()[0] if lr is None else lr
    norm = {} if grad_norm is None else {"grad_norm": float(grad_norm)}  # inf/NaN (an fp16 step skipped): null in the log
    taught = engine.distiller.teachers if engine.distiller is not None else {}  # distill: the teacher's share of the loss
    for task, row in rows.items():
        share = {"teacher_weight": engine.distiller.share(step)} if task in taught else {}
        engine.log.write({"event": "train", "step": step, "task": task, **row, "lr": lr, **norm,
                          "data_wait_share": totals["data_wait_share"], **share})
    weights = checked_weights(engine.strategy, engine.strategy.task_weights()) if getattr(engine.strategy, "logs_weights", False) else None
    if weights:
        engine.log.write({"event": "loss_weights", "step": step, "weights": weights})
    if engine.config.logging.trackers:
        values = {f"train/{task}/loss": row["loss"] for task, row in rows.items()}
        values.update({f"train/{key}": value for key, value in norm.items() if math.isfinite(value)})
        log_to_trackers(engine, {**values, "train/lr": lr, "train/examples_per_s": totals["examples_per_s"]}, step)
    progress.update(step, rows, f"lr {lr:.2e}, {totals['examples_per_s']:.1f} ex/s")


def run_evaluation(engine: Engine, watch: NonFiniteWatch, progress: Progress) -> bool:
    """Evaluate every task; update best score and patience; returns True on a new best."""
    config, state = engine.config, engine.state
    watch.check(_last_checkpoint(engine), _gather(engine))
    batch_size = config.batching.eval_batch_size or 2 * config.batching.batch_size
    from mtcore.train.eval_tasks import HeadAliases

    model = HeadAliases(engine.model, engine.eval_heads) if engine.eval_heads else engine.model
    metrics = evaluate(model, engine.eval_data, engine.scored, engine.accelerator, split=config.evaluation.split,
                       batch_size=batch_size, metric_fn=lambda name: engine.metric_fns[name], splits=engine.eval_splits)
    diverged = diverged_evaluation(metrics, state.step, config.evaluation.split, _last_checkpoint(engine))
    if diverged is not None:  # not logged as an evaluation, let alone the best one, and no checkpoint of these weights
        raise diverged
    score = aggregate(metrics, engine.scored.values(), engine.plan.eval_weights)
    improved = not math.isnan(score) and (state.best_score is None or score > state.best_score)
    state.last_metrics, state.last_eval_step = metrics, state.step
    if improved:
        state.best_score, state.best_step, state.best_metrics = score, state.step, dict(metrics)
        state.evals_without_improvement = 0
    elif not math.isnan(score):  # nothing scored (no labelled validation data) is not "no improvement"
        state.evals_without_improvement += 1
    engine.log.write({"event": "eval", "step": state.step, "metrics": metrics, "aggregate": score, "best": improved})
    if config.logging.trackers:
        log_to_trackers(engine, {f"eval/{k}": v for k, v in metrics.items()} | {"eval/aggregate": score}, state.step)
    unweighted = [t for t in engine.eval_heads if not engine.plan.eval_weights.get(t, engine.plan.eval_weights.get(t.split(":")[-1], 1.0))]
    progress.message(eval_line(state.step, metrics, score, improved, list(engine.eval_data), config.evaluation.split, unweighted))
    return improved


def eval_line(step: int, metrics: dict[str, float], score: float, improved: bool, evaluated: list[str], split: str,
              outside: list[str] = ()) -> str:
    """``eval step 20: aggregate 0.7500 (best); t/accuracy 0.7500, ...``. The tasks of ``evaluated`` (those with the
    split) that got no metric are named as not scored; an evaluation that scored nothing says so, not "aggregate nan".
    Metrics of the tasks of ``outside`` (evaluate-only at weight 0) come last, said to be outside the aggregate."""
    if not any(not k.endswith("/loss") for k in metrics):
        why = f"no labelled rows in the {split} split" if evaluated else f"no task has a {split} split"
        return f"eval step {step}: no task was scored ({why})"
    head = f"aggregate {score:.4f}{' (best)' if improved else ''}" if not math.isnan(score) else "no aggregate (every main metric is NaN)"
    apart = tuple(f"{task_id}/" for task_id in outside)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if not k.endswith("/loss") and not k.startswith(apart))
    aside = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if not k.endswith("/loss") and apart and k.startswith(apart))
    aside = f"not in the aggregate: {aside}" if aside else ""
    unscored = [task_id for task_id in evaluated if not any(k.startswith(f"{task_id}/") for k in metrics)]
    missing = f"not scored (no labelled {split} rows): {', '.join(unscored)}" if unscored else ""
    return f"eval step {step}: " + "; ".join(part for part in (head, shown, aside, missing) if part)


def save_checkpoint(engine: Engine, progress: Progress, meter: LossMeter | None = None) -> None:
    """A full-state checkpoint of the current step (all processes take part), with the logging window so far
    (``meter``'s sums), so that a run resumed from it logs the losses the uninterrupted run logs."""
    acc, state = engine.accelerator, engine.state
    state.log_window = meter.window(_reduce(engine, "sum")) if meter is not None else {}
    state.train_seconds = engine.train_seconds() or 0.0

    def shared(directory: Any) -> None:
        write_checkpoint_files(directory, model=engine.unwrapped, optimizer=engine.optimizer, scheduler=engine.scheduler,
                               scaler=getattr(acc, "scaler", None), strategy=engine.strategy, sampler=engine.sampler, state=state)

    state.last_checkpoint_step = state.step
    path = engine.checkpoints.save(state.step, acc, shared, lambda d: write_rank_files(d, acc.process_index), state.best_step)
    progress.message(f"checkpoint: {path}")


def after_step(engine: Engine, meter: LossMeter, watch: NonFiniteWatch, progress: Progress,
               preemption: Preemption | None = None, grad_norm: Any = None, lr: float | None = None) -> None:
    """Run the events due after the optimizer step just taken (``grad_norm``, ``lr``: see :func:`log_training`)."""
    config, state = engine.config, engine.state
    step = state.step
    if logging_due(engine, step):
        log_training(engine, meter, watch, progress, preemption, grad_norm, lr)
    improved = False
    paused = time.perf_counter()  # evaluation and checkpoints are not training: keep them out of ex/s
    if config.evaluation.every and step % config.evaluation.every == 0:
        improved = run_evaluation(engine, watch, progress)
        patience = config.evaluation.early_stopping_patience
        if patience is not None and state.evals_without_improvement >= patience:
            state.stopped_early = True
            if not logging_due(engine, step):  # the run's last step: its window's losses are logged, as a last step's are
                meter.exclude(time.perf_counter() - paused)
                paused = time.perf_counter()
                log_training(engine, meter, watch, progress, preemption, None, lr)
            progress.message(f"early stopping at step {step}: no better aggregate score in {patience} evaluations")
    due = bool(config.checkpoint.every) and step % int(config.checkpoint.every) == 0
    if due or (improved and config.checkpoint.keep_best):
        checkpoint_now(engine, meter, watch, progress)
    meter.exclude(time.perf_counter() - paused)


def checkpoint_now(engine: Engine, meter: LossMeter, watch: NonFiniteWatch, progress: Progress) -> None:
    """Check for NaN (no checkpoint of broken weights), update the counters, write the checkpoint."""
    watch.check(_last_checkpoint(engine), _gather(engine))
    count_examples(engine, meter)
    save_checkpoint(engine, progress, meter)


def preempt(engine: Engine, meter: LossMeter, watch: NonFiniteWatch, progress: Progress, preemption: Preemption) -> Preempted:
    """Stop on a preemption signal: a checkpoint of this step (unless one was just written), a
    ``preempted`` event, trackers closed; returns the :class:`Preempted` error for the loop to raise."""
    state = engine.state
    if state.last_checkpoint_step != state.step:
        checkpoint_now(engine, meter, watch, progress)
    checkpoint = engine.checkpoints.path(state.step)
    name = preemption.signal_name or "a signal to another process"
    engine.log.write({"event": "preempted", "step": state.step, "signal": name, "checkpoint": str(checkpoint),
                      "examples_seen": state.examples_seen, "time": time.time()})
    if engine.config.logging.trackers:
        end_trackers(engine, exit_code=EXIT_CODE)
    return Preempted(state.step, checkpoint, engine.run.root, name)


def finish(engine: Engine, meter: LossMeter, watch: NonFiniteWatch, progress: Progress) -> dict[str, Any]:
    """Final evaluation and checkpoint, ``model/``, ``summary.json``, ``curves.png``."""
    from mtcore.train.plots import plot_curves

    config, state, acc, run = engine.config, engine.state, engine.accelerator, engine.run
    watch.check(_last_checkpoint(engine), _gather(engine))
    count_examples(engine, meter)
    if config.evaluation.at_end and state.last_eval_step != state.step:
        run_evaluation(engine, watch, progress)
    if config.checkpoint.at_end and state.last_checkpoint_step != state.step:
        save_checkpoint(engine, progress, meter)
    model_step = best_weights_into_model(engine, progress) if config.checkpoint.best_to_model else state.step
    if engine.is_main:
        from mtcore.train.build import quiet_progress_bars

        with quiet_progress_bars():
            engine.unwrapped.save_pretrained(run.model, tokenizer=engine.tokenizer)
    if config.debug.save_rank_weights:
        _save_rank_weights(engine)
    acc.wait_for_everyone()
    summary = build_summary(engine, model_step)
    if engine.is_main:
        write_json(run.summary, summary)
        engine.summary = summary  # finished: a Ctrl-C from here on stops only the plot and the trackers
        note = plot_curves(run.metrics, run.curves) if config.logging.plot else None
        if note:
            progress.message(f"note: {note}")
        progress.message(f"done: {state.step} steps; model in {run.model}; summary in {run.summary}")
    if config.logging.trackers:
        end_trackers(engine)  # not acc.end_training(): it ends the process group, which the next --seeds run needs
    return summary


def _save_rank_weights(engine: Engine) -> None:
    """Test hook: this process's final weights, to check that DDP ranks agree."""
    from safetensors.torch import save_file

    acc = engine.accelerator
    folder = engine.run.root / "rank-weights"
    folder.mkdir(exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in engine.unwrapped.state_dict().items()}
    save_file(state, str(folder / f"rank{acc.process_index}-of-{acc.num_processes}.safetensors"))


def best_weights_into_model(engine: Engine, progress: Progress) -> int:
    """``checkpoint.best_to_model``: load the best checkpoint's weights into the model (every process, so the ranks
    agree; the main one then writes ``model/``), after the final evaluation and checkpoint; returns the step whose
    weights the model now holds. Without a best checkpoint, the final weights stay, and a line says why."""
    from mtcore.train.checkpoint import best_checkpoint_for_model, load_weights

    state = engine.state
    best, why = best_checkpoint_for_model(engine.checkpoints, state)
    if best is None:
        line = f"checkpoint.best_to_model: {why}, so model/ holds the final weights (step {state.step})"
        if state.best_step is not None and state.best_step != state.step:  # the best weights were wanted and are gone
            import warnings

            if engine.is_main:
                warnings.warn(line, UserWarning, stacklevel=2)
        else:
            say(engine, progress, line)
        return state.step
    load_weights(engine.unwrapped, best / "model.safetensors")
    say(engine, progress, f"checkpoint.best_to_model: model/ holds the weights of the best checkpoint, step {state.best_step} "
                     f"(aggregate {state.best_score:.4f}), not those of the final step {state.step}")
    return int(state.best_step)


def own_bests(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each task's own best evaluation by its main metric (``{"step", "metric", "value"}``), from the ``eval``
    events of ``metrics.jsonl`` (so a resumed run counts its evaluations before the resume too); the first
    of equal values wins. Empty where this process writes no log (DDP's other ranks)."""
    from mtcore.plugins import lower_is_better
    from mtcore.train.run_dir import read_events

    if not engine.log.enabled:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for event in read_events(engine.run.metrics):
        if event.get("event") != "eval" or not isinstance(event.get("metrics"), dict):
            continue
        for task_id, task in engine.scored.items():
            value = event["metrics"].get(f"{task_id}/{task.main}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                continue
            known = found.get(task_id)
            lower = lower_is_better(task.main, task.metric_owner)
            if known is None or (value < known["value"] if lower else value > known["value"]):
                found[task_id] = {"step": event.get("step"), "metric": task.main, "value": value}
    return found


def build_summary(engine: Engine, model_step: int | None = None) -> dict[str, Any]:
    """Final and best metrics per task, and the run's facts; ``model`` says which step's weights ``model/`` holds
    (``final`` metrics are always those of the final weights, ``best`` those of the best checkpoint).

    A task's ``best`` is its metrics at the evaluation whose *aggregate* was best (``best.step``), not its own
    best; ``own_best`` is that (:func:`own_bests`)."""
    state = engine.state
    per_task: dict[str, Any] = {}
    own = own_bests(engine)
    for task_id, task in engine.scored.items():
        prefix = f"{task_id}/"
        per_task[task_id] = {
            "main_metric": task.main,
            "final": {k[len(prefix):]: v for k, v in state.last_metrics.items() if k.startswith(prefix)},
            "best": {k[len(prefix):]: v for k, v in state.best_metrics.items() if k.startswith(prefix)},
            "best_step": state.best_step,  # the best *aggregate*'s step, which "best" is taken at
            "own_best": own.get(task_id),
        }
        if task_id in engine.eval_heads:  # scored, not trained
            per_task[task_id].update(evaluated_with=engine.eval_heads[task_id], split=engine.eval_splits.get(task_id))
    best_dir = engine.checkpoints.path(state.best_step) if state.best_step is not None else None
    return {
        "status": "early_stopped" if state.stopped_early else "completed",
        "steps": state.step,
        "total_steps": engine.total_steps,
        "final": {"step": state.last_eval_step, "aggregate": aggregate(state.last_metrics, engine.scored.values(), engine.plan.eval_weights)
                  if state.last_metrics else None, "metrics": state.last_metrics},
        "best": {"step": state.best_step, "aggregate": state.best_score, "metrics": state.best_metrics,
                 "checkpoint": str(best_dir) if best_dir is not None and best_dir.is_dir() else None},
        "tasks": per_task,
        "examples_seen": state.examples_seen,
        "tokens_seen": state.tokens_seen,
        "train_seconds": engine.train_seconds(),  # resumed: with the seconds before the checkpoint it resumed from
        "train_seconds_this_process": time.perf_counter() - engine.started_at if engine.started_at is not None else None,
        "timing": dict(engine.timing),
        "resumed_from": str(engine.resumed_from) if engine.resumed_from else None,
        "model_dir": str(engine.run.model),
        "model": {"step": state.step if model_step is None else model_step,  # the weights model/ holds
                  "weights": "best" if engine.config.checkpoint.best_to_model and model_step == state.best_step else "final"},
        "run_dir": str(engine.run.root),
    }
