"""Finding the model behind a path: a run directory or a saved model directory.

* a **run directory** (what ``mt train`` writes): ``config.yaml`` and ``model/`` — the config
  says where each task's data is (source, ``data_dir``), its batch sizes and precision;
* a **model directory** (``MultitaskModel.save_pretrained``): ``mtcore.json``, ``encoder/``,
  ``heads/`` — tasks come from the manifest, data from the installed plugins. A run's
  ``model/`` is recognised as part of its run;
* a **checkpoint** of a run (``RUN/checkpoints/step-000300``, also while the run is training):
  the model is built from the run's config and takes the checkpoint's weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtcore.errors import ModelFileError, ModelPathError, did_you_mean_path
from mtcore.model.quiet_bars import transformers_bars_off

RUN_CONFIG = "config.yaml"
RUN_MODEL = "model"
MANIFEST = "mtcore.json"
CHECKPOINT_WEIGHTS = "model.safetensors"
CHECKPOINT_DONE = "state.json"


@dataclass
class ModelLocation:
    """Where the model is, and the run it belongs to (``None`` for a standalone model directory)."""

    model_dir: Path
    run_dir: Path | None = None
    checkpoint: bool = False

    @property
    def config_path(self) -> Path | None:
        return self.run_dir / RUN_CONFIG if self.run_dir is not None else None


def locate(path: str | os.PathLike) -> ModelLocation:
    """Classify ``path``; a one-line :class:`ModelPathError` (exit 2) when it is neither kind of directory."""
    root = Path(path).expanduser()
    if not root.exists():
        raise ModelPathError(f"{root}: no such directory{did_you_mean_path(root, folders=True)}; pass a run directory (config.yaml "
                             "and model/) or a model directory (mtcore.json)")
    if not root.is_dir():
        raise ModelPathError(f"{root}: is a file; pass a run directory (config.yaml and model/) or a model directory (mtcore.json)")
    full = Path(os.path.abspath(root))  # "." or "model/.." have a name and a parent only when spelled out (links kept)
    if (root / MANIFEST).is_file():
        run = full.parent if full.name == RUN_MODEL and (full.parent / RUN_CONFIG).is_file() else None
        return ModelLocation(root, run)
    if (root / RUN_MODEL / MANIFEST).is_file():
        return ModelLocation(root / RUN_MODEL, root if (root / RUN_CONFIG).is_file() else None)
    if (root / CHECKPOINT_WEIGHTS).is_file() and (root / CHECKPOINT_DONE).is_file():
        run = full.parent.parent
        if full.parent.name != "checkpoints" or not (run / RUN_CONFIG).is_file():
            raise ModelPathError(f"{root}: a checkpoint is read with its run's config; pass it inside its run directory (RUN/checkpoints/step-N)")
        return ModelLocation(root, run, checkpoint=True)
    if (root / CHECKPOINT_WEIGHTS).is_file() and full.parent.name == "checkpoints":
        raise ModelPathError(f"{root}: an unfinished checkpoint (no {CHECKPOINT_DONE}: still being written, or cut short); "
                             "pass a finished one of the same run, or its run directory")
    for model in (root / RUN_MODEL, root):  # a model folder of the files save_pretrained writes, without its manifest
        if (model / "encoder").is_dir() and (model / "heads").is_dir() and not (model / MANIFEST).exists():
            raise ModelFileError(f"{model / MANIFEST}: missing; the model directory is incomplete (copy or save it again)")
    if (root / RUN_CONFIG).is_file():
        from mtcore.train.checkpoint import Checkpoints

        from mtcore.train.run_status import unfinished

        latest = Checkpoints(root / "checkpoints").latest()
        hint = f"; pass a checkpoint ({latest})" if latest is not None else ""
        why = unfinished(root, "wait for it to finish", "train it again")
        raise ModelPathError(f"{root}: this run has no {RUN_MODEL}/ yet (it is written when training ends){hint}; {why}")
    if (root / "seeds.json").is_file() or (root / "grid.json").is_file():
        grid = (root / "grid.json").is_file()
        runs = sorted(p.name for p in root.iterdir() if p.is_dir() and (grid or p.name.startswith("seed-")))
        raise ModelPathError(f"{root}: holds {'the runs of a grid (mt train --grid)' if grid else 'runs of several seeds (mt train --seeds)'}; "
                             "pass one of them: " + ", ".join(str(root / name) for name in runs[:3]) + (", ..." if len(runs) > 3 else ""))
    raise ModelPathError(f"{root}: is neither a run directory (config.yaml and model/) nor a model directory saved by "
                         f"MultitaskModel.save_pretrained ({MANIFEST} missing)")


@transformers_bars_off()
def load_model(location: ModelLocation, device: Any = None, trust_remote_code: bool = False, check_labels: bool = True) -> Any:
    """The :class:`~mtcore.model.MultitaskModel` at ``location``, on ``device`` (GPU when present); an encoder with code
    of its own loads only with ``trust_remote_code`` (``--trust-remote-code``). A checkpoint whose tasks' labels are
    other now is refused; ``check_labels=False`` takes it with the labels it recorded in ``model.tasks``, as a saved model
    (a warm start; ``mt evaluate`` and ``mt predict``, which check the tasks they score, so the others still can be)."""
    from mtcore.model import MultitaskModel
    from mtcore.predict.predictor import resolve_device

    if location.checkpoint:
        model = _checkpoint_model(location, check_labels)
    else:
        model = MultitaskModel.from_pretrained(location.model_dir, **({"trust_remote_code": True} if trust_remote_code else {}))
    return model.to(resolve_device(device))


def _checkpoint_model(location: ModelLocation, check_labels: bool = True) -> Any:
    """The run's model (built from its config) with a checkpoint's weights, in evaluation mode. The weights file is
    opened first and held open: a checkpoint that a live run deletes meanwhile (``checkpoint.keep_last``) is still
    read (Linux); one deleted before is a one-line error naming the run's latest checkpoint."""
    config = run_config(location)
    assert config is not None and location.run_dir is not None
    weights = location.model_dir / CHECKPOINT_WEIGHTS
    try:
        held = open(weights, "rb")  # noqa: SIM115 - closed below, however the model is built
    except FileNotFoundError:
        raise ModelPathError(_checkpoint_gone(location)) from None
    with held:
        return _built_with(location, config, weights, held, check_labels)


def _built_with(location: ModelLocation, config: Any, weights: Path, held: Any, check_labels: bool = True) -> Any:
    from mtcore.train.build import build_model
    from mtcore.train.encoder_source import load_tokenizer
    from mtcore.train.checkpoint import load_weights
    from mtcore.train.checkpoint_checks import check_task_labels
    from mtcore.train.validate import plan_run
    from mtcore.train.warm_start import run_encoder_source

    assert location.run_dir is not None
    source = run_encoder_source(config, location.run_dir)  # as the run loaded it (a model mtcore saved: its encoder/)
    options = dict(config.encoder.options)
    if options.pop("flash_attention", None) is not None:  # kernels only (FA4 needs its package and a Hopper GPU): same results
        config = config.model_copy(update={"encoder": config.encoder.model_copy(update={"options": options})})
    plan, tokenizer = plan_run(config), load_tokenizer(source, config)
    recorded = _recorded_state(location)
    if not check_labels:  # a warm start: each head as it trained, with the labels it trained with (also another number)
        _as_trained(plan, recorded.get("task_labels"))
    model = build_model(plan, source, tokenizer)
    balanced = [p for p in plan.tasks if (p.task.head_options or {}).get("class_weights") == "balanced"]
    if balanced:  # weights the run computed from its train labels (the cached data: read again quickly)
        from mtcore.data import load_task_data
        from mtcore.train.class_balance import apply_balanced_weights

        data = {p.id: load_task_data(p.task, tokenizer, source=p.source, data_dir=p.data_dir, splits=("train",), max_length=p.task.max_length,
                                     encoder_config=model.encoder.config, holdout=p.entry.holdout) for p in balanced}
        apply_balanced_weights(model, balanced, data)
    if check_labels:
        check_task_labels(location.model_dir, model, recorded)
    load_weights(model, _readable(weights, held))
    return model.eval()


def _recorded_state(location: ModelLocation) -> dict[str, Any]:
    """The checkpoint's ``state.json`` ({} when gone or damaged: the weights say so, or the labels cannot be checked)."""
    import json

    try:
        recorded = json.loads((location.model_dir / CHECKPOINT_DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _as_trained(plan: Any, task_labels: Any) -> None:
    """Give the plan's tasks whose labels are other now the labels the checkpoint recorded (its heads' outputs), so their
    heads are built as they trained (class weights left out: they weigh the loss only and are not in the weights)."""
    if not isinstance(task_labels, dict):
        return
    for planned in plan.tasks:
        labels = task_labels.get(planned.id)
        if isinstance(labels, list) and planned.task.labels and [str(x) for x in labels] != list(planned.task.labels):
            options = {k: v for k, v in planned.task.head_options.items() if k != "class_weights"}
            planned.task = planned.task.replace(labels=tuple(str(x) for x in labels), label_values=None, label_aliases={},
                                                head_options=options)


def _readable(weights: Path, held: Any) -> Path:
    """A path that reads the file ``held`` open: ``weights`` while it is there, else (Linux) the open file's own,
    which still reads it after the file was deleted (``/proc/self/fd/N``)."""
    own = Path(f"/proc/self/fd/{held.fileno()}")
    return own if not weights.is_file() and own.exists() else weights


def _checkpoint_gone(location: ModelLocation) -> str:
    """A checkpoint deleted between being named and being read: a live run keeps only its last ``keep_last``."""
    from mtcore.train.checkpoint import Checkpoints

    latest = Checkpoints(location.model_dir.parent).latest()
    now = f"; its latest is now {latest}" if latest is not None else ""
    return (f"{location.model_dir}: this checkpoint was deleted as it was about to be read (a run that is training keeps only its "
            f"last checkpoint.keep_last checkpoints){now}")


def run_config(location: ModelLocation) -> Any:
    """The run's resolved :class:`~mtcore.train.config.TrainConfig`, or ``None`` for a model directory."""
    if location.config_path is None:
        return None
    from mtcore.train.config_io import load_config

    return load_config(location.config_path)


def refuse_left_out(config: Any, wanted: Any = None) -> None:
    """A :class:`~mtcore.predict.tasks.PluginLeftOut` for the first task of the run's ``config`` (of ``wanted``, ids or
    bare names; None: every task) whose plugin is installed but left out by ``MT_LOAD_PLUGINS``."""
    if config is None:
        return
    from mtcore.predict.tasks import left_out_error

    for entry in config.tasks:
        if entry.id is None or entry.define is not None:
            continue
        if wanted is not None and not {entry.id, entry.id.split(":", 1)[-1]} & set(wanted):
            continue
        error = left_out_error(entry.id)
        if error is not None:
            raise error


def run_plan(config: Any) -> Any:
    """The :class:`~mtcore.train.validate.RunPlan` of a run's ``config`` (None for ``None``), or None with a warning
    when a task of it is registered by no installed plugin (one registered from Python with ``register_task`` in the
    training session): the model's saved tasks (``mtcore.json``) still predict, and score a file given with ``--input``."""
    if config is None:
        return None
    from mtcore.errors import MtError
    from mtcore.plugins import load_registry
    from mtcore.predict.tasks import left_out_error
    from mtcore.train.validate import plan_run

    registry = load_registry(warn=False)
    missing = []
    for entry in config.tasks:
        if entry.id is not None and entry.define is None:
            try:
                registry.task(entry.id)
            except MtError:
                missing.append(entry.id)
    if missing:
        import warnings

        left_out = left_out_error(missing[0])
        if left_out is not None:  # installed: not "registered from Python"
            warnings.warn(f"{left_out}; using the tasks the model saved for the others", UserWarning, stacklevel=2)
            return None
        named = ", ".join(repr(m) for m in missing)
        warnings.warn(f"the run's config names task{'s' if len(missing) > 1 else ''} {named}, which no installed plugin registers "
                      "(registered from Python in the training session?): using the tasks the model saved; register "
                      f"{'them' if len(missing) > 1 else 'it'} again, or install the plugin, to read the data the run's config "
                      "names", UserWarning, stacklevel=2)
        return None
    import warnings

    with warnings.catch_warnings():  # what it says about training (an unused sampler, test selection) was said when it trained
        warnings.simplefilter("ignore", UserWarning)
        return plan_run(config, base_dir=Path.cwd())
