"""Experiment trackers (``logging.trackers``): TensorBoard and W&B through Accelerate, main process only.

* TensorBoard writes to ``RUN/<logging.project>/``. A resumed run starts a new event file with
  ``purge_step`` = its checkpoint's step + 1, so TensorBoard drops what the interrupted run logged
  after that checkpoint and shows every step once.
* W&B writes its files to ``RUN/wandb/`` (not the current folder), names the run after the run
  directory (the runs of ``--seeds``: ``OUTPUT/seed-<seed>``, in the group ``OUTPUT``) and keeps
  its id in ``RUN/wandb/mtcore-run.json``: ``--resume`` continues the same W&B run.
  W&B refuses steps below the last one it has, so after resuming from an earlier checkpoint the
  steps the run already sent are not sent again. Offline (``WANDB_MODE=offline``) W&B cannot say
  which steps it has, so the last step it was given is kept in ``mtcore-run.json`` too, written
  when the run is finished (ended, failed or preempted: W&B has saved every step by then), and the
  later of the two decides: ``wandb sync`` of both starts' folders then shows every step once. A
  process killed outright (SIGKILL) keeps no record: its resume sends the steps after the
  checkpoint again, which W&B may then hold twice, rather than lose some.

The trackers start when the run has been built (after a resume, so that they know its step),
inside the start's clean-up: a tracker that cannot start leaves nothing behind. They are
finished without ending the process group (``Accelerator.end_training`` would destroy it, and
``--seeds`` trains the next seed in the same processes).
"""

from __future__ import annotations

import json
from typing import Any

from mtcore.errors import MtError

#: The W&B run id of a run directory, in ``RUN/wandb/``.
WANDB_ID_FILE = "mtcore-run.json"


def start_trackers(engine: Any, config_values: dict[str, Any]) -> None:
    """Start ``logging.trackers`` with the run's config; all processes call it, the main one starts them."""
    acc, config = engine.accelerator, engine.config
    trackers = list(config.logging.trackers)
    if not trackers or not acc.is_main_process:
        return
    options: dict[str, dict[str, Any]] = {}
    if "tensorboard" in trackers and (engine.run.root / config.logging.project).is_dir():
        options["tensorboard"] = {"purge_step": engine.state.step + 1}  # an earlier start wrote events there
    if "wandb" in trackers:
        options["wandb"] = _wandb_options(engine)
        sent = _saved_wandb(engine).get("last_step")
    try:
        acc.init_trackers(config.logging.project, config=config_values, init_kwargs=options)
    except Exception as exc:
        for tracker in acc.trackers:  # the ones that started
            try:
                tracker.finish()
            except Exception:
                pass
        acc.trackers = []
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise MtError(f"config key 'logging.trackers': {', '.join(trackers)} could not start ({type(exc).__name__}: {detail}); "
                      "fix the tracker's setup (W&B: `wandb login`, or WANDB_MODE=offline) or remove it") from None
    if "wandb" in trackers:
        tracker = engine.accelerator.get_tracker("wandb")
        tracker.mtcore_last_step = sent if isinstance(sent, int) else -1
        tracker.mtcore_first_step = tracker.mtcore_last_step + 1  # what an earlier start sent is not sent again
        _save_wandb(engine, tracker)


def _wandb_options(engine: Any) -> dict[str, Any]:
    root = engine.run.root.resolve()
    folder = root / "wandb"
    folder.mkdir(exist_ok=True)
    options: dict[str, Any] = {"dir": str(root), "name": root.name}
    if root.name == f"seed-{engine.config.seed}":  # mt train --seeds: OUTPUT/seed-<seed>
        options.update(name=f"{root.parent.name}/{root.name}", group=root.parent.name)
    saved = _saved_wandb(engine)
    if "id" in saved:  # an earlier start of this run directory: continue its W&B run
        options.update(id=saved["id"], resume="allow")
    return options


def _saved_wandb(engine: Any) -> dict[str, Any]:
    """``RUN/wandb/mtcore-run.json``: the W&B run's id and the last step sent to it ({} before the first start)."""
    path = engine.run.root / "wandb" / WANDB_ID_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _save_wandb(engine: Any, tracker: Any) -> None:
    from mtcore.train.run_dir import write_json

    write_json(engine.run.root / "wandb" / WANDB_ID_FILE, {"id": tracker.run.id, "last_step": tracker.mtcore_last_step})


def log_to_trackers(engine: Any, values: dict[str, Any], step: int) -> None:
    """Send ``values`` at ``step`` to every tracker (main process)."""
    acc = engine.accelerator
    if not acc.is_main_process:
        return
    for tracker in acc.trackers:
        if tracker.name == "wandb":
            if step < max(getattr(tracker.run, "starting_step", 0), tracker.mtcore_first_step):
                continue  # a resume from an earlier checkpoint: W&B has this step and refuses lower ones
            tracker.log(values, step=step)
            tracker.mtcore_last_step = max(tracker.mtcore_last_step, step)  # kept once W&B has finished (end_trackers)
            continue
        tracker.log(values, step=step)


def end_trackers(engine: Any, failed: bool = False, exit_code: int | None = None) -> None:
    """Finish the trackers (flush, close); the process group stays. ``failed``: the run stopped on an error
    (W&B marks it failed; otherwise a later run in the same Python process would log into it).
    ``exit_code``: the run was preempted (SIGTERM/SIGUSR1/SIGHUP, checkpoint written): W&B marks it preempting
    and finishes it with that code; ``--resume`` continues the same W&B run."""
    acc = engine.accelerator
    code = exit_code if exit_code is not None else (1 if failed else None)
    if acc.is_main_process:
        for tracker in acc.trackers:
            run = getattr(tracker, "run", None) if code is not None and getattr(tracker, "name", "") == "wandb" else None
            if run is not None:
                if exit_code is not None and hasattr(run, "mark_preempting"):
                    try:
                        run.mark_preempting()
                    except Exception:  # a nicety: the exit code still says it
                        pass
                run.finish(exit_code=code)
            else:
                tracker.finish()
            if getattr(tracker, "name", "") == "wandb" and hasattr(tracker, "mtcore_last_step"):
                _save_wandb(engine, tracker)  # finished: W&B has every step logged, so a resume need not send them again
    acc.trackers = []
