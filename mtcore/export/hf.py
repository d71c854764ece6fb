"""Exporting one task as a standard Hugging Face model directory (no mtcore needed to use it).

>>> export_task("runs/demo/model", "rsg:terra", "exported/terra")
>>> transformers.pipeline("text-classification", model="exported/terra")({"text": "...", "text_pair": "..."})

The directory holds ``config.json`` (with ``id2label`` / ``label2id``), ``model.safetensors``, the
tokenizer, ``mtcore_export.json`` (where it came from, the verified logit difference) and a short
``README.md``. The weights are mapped and checked as :mod:`mtcore.export.mapping` describes; a
head with no plain equivalent is refused in one line, and :func:`export_encoder` (``mt export
--encoder-only``) still writes the shared encoder for ``AutoModel``. Output is written to a
temporary sibling directory and moved into place, so it is never half-written.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtcore.errors import ModelFileError
from mtcore.export.inputs import describe_inputs, encoded_length, readme, usage_lines
from mtcore.export.mapping import (
    DEFAULT_TOLERANCE,
    ExportError,
    build_plain,
    copy_head,
    load_encoder_into,
    no_shared_encoder,
    plain_config,
    probe_inputs,
    refusal,
    target_for,
    verify,
)
from mtcore.model.lora import plain_state_dict
from mtcore.model.quiet_bars import transformers_bars_off
from mtcore.model.serialization import portable_tokenizer

EXPORT_INFO = "mtcore_export.json"


@dataclass
class ExportResult:
    """What was written: the directory, the plain class, and the verified largest logit difference."""

    path: Path
    task: str | None
    model_class: str
    max_difference: float | None = None
    pipeline: str | None = None
    mapped: list[str] = field(default_factory=list)


def _as_model(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        from mtcore.predict.locate import load_model, locate

        return load_model(locate(model), device="cpu")
    return model


def _float_copy(model: Any, head_id: str | None = None) -> Any:
    """A float32 CPU copy for the comparison (the live model is not changed); with task-specific top layers, one
    whose encoder holds ``head_id``'s own (:meth:`~mtcore.model.task_layers.TaskLayers.install`)."""
    import torch

    first = next(model.parameters())
    own_layers = getattr(model, "task_layers", None) is not None and head_id is not None
    if first.dtype == torch.float32 and first.device.type == "cpu" and not own_layers:
        return model
    working = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    if own_layers:
        working.task_layers.install(head_id)
    return working


def check_export_target(out_dir: str | os.PathLike, overwrite: bool = False, source_dir: Path | None = None) -> None:
    """One line, before any work, when ``out_dir`` cannot take the export (a file, not empty, not writable).

    ``overwrite`` replaces only an earlier export (a folder holding ``mtcore_export.json``), never a
    folder of other files nor the current folder, since the whole folder is replaced.
    """
    from mtcore.outputs import check_writable

    from mtcore.errors import UsageError

    out_dir = Path(out_dir).expanduser()
    if source_dir is not None and out_dir.resolve() == source_dir.resolve():
        raise UsageError(f"{out_dir}: is the model being exported; choose another output directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is a file; choose a directory to export to")
    if out_dir.is_dir() and Path.cwd().resolve().is_relative_to(out_dir.resolve()):
        raise UsageError(f"{out_dir}: is the current folder (or holds it), which the export would replace; export to a new folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise UsageError(f"{out_dir}: is not empty; choose a new directory or pass --overwrite to replace it")
        if not (out_dir / EXPORT_INFO).is_file():  # --overwrite replaces the whole folder: never one of the user's own
            raise UsageError(f"{out_dir}: holds files no mt export wrote (no {EXPORT_INFO}); --overwrite replaces only an earlier "
                             "export, so choose a new or empty directory")
    if out_dir.is_symlink() and not out_dir.exists():
        check_writable(out_dir, folder=True, what="OUT_DIR")  # one line: a broken link (a drive not mounted)
    check_writable(out_dir.absolute().parent, folder=True, what="OUT_DIR")  # the export is built beside it



def _check_still_free(out_dir: Path, overwrite: bool) -> None:
    """At the move: ``out_dir`` is empty, or (``overwrite``) an earlier export; what came there during the export
    (another export, the user's own files) is never replaced."""
    from mtcore.errors import UsageError

    if out_dir.is_dir() and any(out_dir.iterdir()) and not (overwrite and (out_dir / EXPORT_INFO).is_file()):
        raise UsageError(f"{out_dir}: files came there while exporting (another export?); they are left as they are: "
                         "choose a new directory, or pass --overwrite to replace an earlier export")


def _write_atomically(out_dir: Path, write: Any, overwrite: bool = False) -> None:
    from mtcore.outputs import make_parents, remove_empty, share_modes, write_error, write_failures

    out_dir = out_dir.expanduser().absolute()
    if out_dir.is_symlink():  # a link to a folder on another disk: the export goes there, and the link stays
        out_dir = out_dir.resolve()
    try:
        created = make_parents(out_dir.parent)
    except OSError as exc:
        raise write_error(out_dir.parent, exc) from exc
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        remove_empty(created)
        raise write_error(out_dir.parent, exc) from exc
    try:
        write(tmp)
        share_modes(tmp)  # mkdtemp and safetensors make private files
        if out_dir.exists():
            _check_still_free(out_dir, overwrite)  # another export, or the user's files, may have come meanwhile
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)
        if isinstance(exc, write_failures()):
            raise write_error(out_dir, exc) from exc
        raise


def _forward_inputs(module: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """The probe inputs ``module.forward`` accepts (DistilBERT takes no token_type_ids)."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return inputs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return inputs
    return {k: v for k, v in inputs.items() if k in params}


def map_head(model: Any, head_id: str, spec: Any, tokenizer: Any, tolerance: float = DEFAULT_TOLERANCE) -> tuple[Any, list[str], float]:
    """The rule of :func:`export_task`: the plain model for ``model``'s head ``head_id`` (a float32 CPU model in eval
    mode; ``spec``: the task), with the encoder and head copied in and checked on probe inputs; returns it, the
    classifier layers filled and the largest logit difference, or raises the one-line :class:`ExportError`."""
    target = target_for(spec.kind, head_id)
    num_labels = int(model.tasks[head_id].get("num_labels") or spec.num_labels)
    plain = build_plain(plain_config(model.encoder.config, spec, num_labels, target), target, head_id)
    load_encoder_into(plain, model.encoder, head_id)
    described = f"'{model.tasks[head_id].get('head')}' with options {model.tasks[head_id].get('head_options') or {}}"
    if (model.tasks[head_id].get("head_options") or {}).get("pooling") == "spans":
        raise refusal(head_id, described, plain, spec.kind, " pools spans of its rows, which no plain classifier reads")
    mapped = copy_head(plain, model.heads[head_id], head_id, spec.kind, described)
    inputs = _forward_inputs(plain, probe_inputs(tokenizer, spec.kind, spec.is_pair))
    difference = verify(model, head_id, plain, inputs, spec.kind)
    if not difference <= tolerance:
        raise refusal(head_id, described, plain, spec.kind, f" computes something else (logits differ by {difference:.3g} on probe inputs, tolerance {tolerance:g})")
    return plain, mapped, difference


def export_refusals(encoder_config: Any, tasks: dict[str, Any], tokenizer: Any) -> dict[str, str]:
    """Which of ``tasks`` (id -> :class:`~mtcore.task.Task`, heads as configured) ``mt export`` will refuse, with its
    line, before any training (``mt check``): :func:`map_head` on an untrained one-layer model of the encoder's
    architecture, since whether a head maps depends on its structure, not on the weights or the depth."""
    import torch
    from transformers import AutoModel

    from mtcore.model import MultitaskModel
    from mtcore.predict.tasks import manifest_task

    config = copy.deepcopy(encoder_config)
    config.num_hidden_layers = 1
    refusals: dict[str, str] = {}
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(0)  # the same untrained weights every time: the same line
        encoder = AutoModel.from_config(config, attn_implementation="eager").float()
        model = MultitaskModel(encoder, tasks, tokenizer=tokenizer).float().eval()
    for task_id in tasks:
        spec = manifest_task(model, task_id, without_unsaved=True) if model.tasks[task_id].get("kind") else None
        if spec is None:
            refusals[task_id] = f"task {task_id!r} has a custom head with no task kind; export the encoder alone with --encoder-only"
            continue
        try:
            map_head(model, task_id, spec, tokenizer)
        except ExportError as exc:
            refusals[task_id] = str(exc)
    return refusals


@transformers_bars_off()
def export_task(model: Any, task: str, out_dir: str | os.PathLike, *, overwrite: bool = False, tolerance: float = DEFAULT_TOLERANCE,
                source: str | os.PathLike | None = None) -> ExportResult:
    """Export ``task``'s head and the shared encoder as one plain ``transformers`` task model.

    ``model`` is a :class:`~mtcore.model.MultitaskModel` or a run / model directory. Raises
    :class:`ExportError` (one line: which head/pooling would export) when no plain class computes
    what the head computes within ``tolerance`` on the probes. ``source`` is the model's folder
    recorded in ``mtcore_export.json`` when ``model`` is a loaded model (a path records itself).
    """
    source_dir = Path(model).expanduser() if isinstance(model, (str, os.PathLike)) else None
    out = Path(out_dir).expanduser()
    check_export_target(out, overwrite, source_dir)
    recorded = str(Path(source_dir or source).expanduser().absolute()) if (source_dir or source) is not None else None
    write, result = _task_export(_as_model(model), task, out, tolerance, recorded)
    _write_atomically(out, write, overwrite)
    return result


def _task_export(model: Any, task: str, out: Path, tolerance: float, recorded: str | None) -> tuple[Any, ExportResult]:
    """:func:`_mapped_task`; for a model with task-specific top layers, whose encoder cannot be exported alone, its
    refusal leaves out the "--encoder-only" way."""
    try:
        return _mapped_task(model, task, out, tolerance, recorded)
    except ExportError as exc:
        if no_shared_encoder(model) is None:
            raise
        text = str(exc)
        for hint in ("; or export the encoder alone with --encoder-only", "; export the encoder alone with --encoder-only"):
            text = text.replace(hint, "")
        raise ExportError(text) from None


def _mapped_task(model: Any, task: str, out: Path, tolerance: float, recorded: str | None) -> tuple[Any, ExportResult]:
    """Map and check ``task``'s head (an :class:`ExportError` when no plain class computes it); returns the function
    that writes the export into a folder, and its result (``out``: where it will be, for its README)."""
    from mtcore.predict.tasks import manifest_task

    head_id = model.resolve_task(task)
    spec = manifest_task(model, head_id, without_unsaved=True) if model.tasks[head_id].get("kind") else None
    if spec is None:
        raise ExportError(f"task {head_id!r} has a custom head with no task kind; export the encoder alone with --encoder-only")
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ModelFileError(f"task {head_id!r}: the model was saved without a tokenizer, and an exported model needs one; save it with tokenizer=...")
    target = target_for(spec.kind, head_id)
    working = _float_copy(model, head_id)
    was_training = working.training
    working.eval()
    try:
        plain, mapped, difference = map_head(working, head_id, spec, tokenizer, tolerance)
    finally:
        working.train(was_training)
    dtype = next(model.encoder.parameters()).dtype
    plain.to(dtype)
    info = {"task": head_id, "kind": spec.kind.value, "labels": list(spec.labels), "label_values": list(spec.label_values) if spec.label_values is not None else None,
            "model_class": type(plain).__name__, "pipeline": target.pipeline, "max_logit_difference": difference, "tolerance": tolerance,
            "mapped_layers": mapped, "max_length": encoded_length(spec, tokenizer, model.encoder.config),
            "truncation": spec.truncation, "source": recorded, "inputs": describe_inputs(spec, model.tasks[head_id].get("preprocess_not_saved"))}
    if spec.kind.value == "extractive_qa":  # how mtcore turned the logits into answers: a user decoding by hand needs it
        info.update(stride=spec.stride, no_answer=spec.no_answer, **({"null_threshold": spec.null_threshold} if spec.no_answer else {}),
                    decoding="the context span with the best start + end logit (at most head_options.max_answer_tokens tokens), "
                             "over windows of max_length sharing stride tokens" +
                             (f"; '' (no answer) when [CLS]'s lowest start + end over the windows exceeds the best span's by more than "
                              f"null_threshold ({spec.null_threshold!r})" if spec.no_answer else ""))

    def write(tmp: Path) -> None:
        plain.save_pretrained(tmp)
        portable_tokenizer(tokenizer).save_pretrained(tmp)  # not the probes' max_length
        _no_custom_code(tmp)
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        usage = usage_lines(target.auto_class, target.pipeline, out, spec.is_pair, info["max_length"], spec.truncation)
        (tmp / "README.md").write_text(readme(f"{head_id} ({type(plain).__name__})", usage, info), encoding="utf-8")

    return write, ExportResult(out, head_id, type(plain).__name__, difference, target.pipeline, mapped)


@transformers_bars_off()
def export_all(model: Any, out_dir: str | os.PathLike, *, overwrite: bool = False, tolerance: float = DEFAULT_TOLERANCE,
               source: str | os.PathLike | None = None) -> tuple[list[ExportResult], dict[str, str]]:
    """Export every task of ``model`` that a plain class computes into ``out_dir/<plugin>_<task>/``, and the
    shared encoder into ``out_dir/encoder/``, all at once (written beside ``out_dir``, moved into place);
    returns the results (the encoder's last) and the tasks left out with each one's :class:`ExportError` line."""
    source_dir = Path(model).expanduser() if isinstance(model, (str, os.PathLike)) else None
    out = Path(out_dir).expanduser()
    check_export_target(out, overwrite, source_dir)
    recorded = str(Path(source_dir or source).expanduser().absolute()) if (source_dir or source) is not None else None
    model = _as_model(model)
    writers, results, skipped = {}, [], {}
    from mtcore.model.manifest import safe_stem

    taken = {"encoder"}  # folder names, lower-case: ids one safe name apart ('a b', 'a-b') or a case apart get their own
    for head_id in model.tasks:
        stem = name = safe_stem(head_id.replace(":", "_"))  # a folder of out_dir, whatever a crafted manifest's task ids say
        n = 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name.lower())
        try:
            writers[name], result = _task_export(model, head_id, out / name, tolerance, recorded)
        except ExportError as error:
            skipped[head_id] = str(error)
            continue
        results.append(result)
    encoder = None
    try:
        writers["encoder"], encoder = _encoder_export(model, out / "encoder", recorded)
    except ExportError as error:  # task-specific top layers: no one shared encoder
        skipped["encoder"] = str(error)
    if not writers:
        raise ExportError("nothing of this model exports: " + "; ".join(f"{name}: {reason}" for name, reason in skipped.items()))
    info = {"tasks": {r.task: r.path.name for r in results}, "encoder": "encoder" if encoder else None, "skipped": skipped, "source": recorded}

    def write(tmp: Path) -> None:
        for name, write_one in writers.items():
            (tmp / name).mkdir()
            write_one(tmp / name)
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    _write_atomically(out, write, overwrite)
    return [*results, *([encoder] if encoder else [])], skipped


@transformers_bars_off()
def export_encoder(model: Any, out_dir: str | os.PathLike, *, overwrite: bool = False, source: str | os.PathLike | None = None) -> ExportResult:
    """Write the shared encoder (and tokenizer) alone, for ``AutoModel`` / feature extraction or fine-tuning."""
    source_dir = Path(model).expanduser() if isinstance(model, (str, os.PathLike)) else None
    out = Path(out_dir).expanduser()
    check_export_target(out, overwrite, source_dir)
    recorded = str(Path(source_dir or source).expanduser().absolute()) if (source_dir or source) is not None else None
    write, result = _encoder_export(_as_model(model), out, recorded)
    _write_atomically(out, write, overwrite)
    return result


def _no_custom_code(folder: Path) -> None:
    """Drop ``auto_map`` (custom code of the source encoder's folder, which an export does not ship) from the exported
    configs: the export is plain classes, loaded without ``trust_remote_code``."""
    for name in ("config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.pop("auto_map", None) is not None:
                path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _encoder_export(model: Any, out: Path, recorded: str | None) -> tuple[Any, ExportResult]:
    why = no_shared_encoder(model)
    if why is not None:
        raise ExportError(why)
    encoder, tokenizer = model.encoder, model.tokenizer
    info = {"encoder_only": True, "model_class": type(encoder).__name__, "tasks_trained": list(model.tasks),
            "source": recorded}

    def write(tmp: Path) -> None:
        encoder.save_pretrained(tmp, state_dict=plain_state_dict(encoder))  # LoRA (a checkpoint's, a live model's): merged
        if tokenizer is not None:
            portable_tokenizer(tokenizer).save_pretrained(tmp)
        _no_custom_code(tmp)
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(readme(f"shared encoder ({type(encoder).__name__})", usage_lines("AutoModel", None, out, False), info),
                                       encoding="utf-8")

    return write, ExportResult(out, None, type(encoder).__name__, None, "feature-extraction")
