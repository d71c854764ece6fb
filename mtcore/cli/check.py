"""``mt check CONFIG [KEY=VALUE ...]``: the checks ``mt train`` makes before it builds the model, without training.

The config is read and resolved against the installed plugins (the same one-line errors as
``mt train``); then, unless ``--no-data``, the encoder's tokenizer is loaded and every task's
data read and tokenized (a data error names the file and row), and the batch plan is counted:
rows per split, steps per epoch and the run's total steps, and every task's metrics are called once as
the run's evaluation calls them (:func:`mtcore.cli.check_metrics.check_metrics`). Nothing is written to the output
directory (a tiny demo encoder is built in a temporary folder; tokenized data go to the usual
cache, which the real run then reuses). A task whose head ``mt export`` could not export as a plain
transformers model gets a ``note:`` naming the head options that would (:func:`mtcore.export.hf.export_refusals`).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer


class _OneProcess:
    """What the build helpers ask of an accelerator, for a check in this one process."""

    is_main_process = True
    process_index = 0
    num_processes = 1

    def wait_for_everyone(self) -> None:
        pass

    @contextlib.contextmanager
    def main_process_first(self) -> Iterator[None]:
        yield

    @property
    def device(self) -> Any:
        import torch

        return torch.device("cpu")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        yield


def check(
    config: Path = typer.Argument(..., metavar="CONFIG", help="Training config (YAML file)."),
    overrides: Optional[List[str]] = typer.Argument(None, metavar="KEY=VALUE", help="Config overrides, as for mt train."),
    data: bool = typer.Option(True, "--data/--no-data", help="Also load the tokenizer and every task's data, and count the steps."),
) -> None:
    """Check a training config without training: plugins, tasks and keys, then the data and the step count."""
    from rich.markup import escape
    from rich.table import Table

    from mtcore.cli.output import stdout
    from mtcore.train.config_io import anchor_paths, load_config
    from mtcore.train.teachers import check_teachers, untaught
    from mtcore.train.validate import plan_run

    loaded = anchor_paths(load_config(config, overrides or []), Path.cwd())
    plan = plan_run(loaded, base_dir=Path.cwd())
    taught = check_teachers(plan)  # distill: what the teachers' manifests tell (their weights load when the run starts)
    for teacher in dict.fromkeys(taught.values()):
        print(f"note: distill: {', '.join(t for t, path in taught.items() if path == teacher)} taught by {teacher}")
    for line in untaught(plan, taught) if plan.config.distill is not None else []:
        print(f"note: {line}")
    if loaded.deterministic:
        from mtcore.train.determinism import NOTE

        print(f"note: {NOTE}")
    if not data:
        _check_heads(plan)
    counts = _count(plan) if data else None
    scored = f" + {len(plan.evaluated)} evaluated only" if plan.evaluated else ""
    table = Table(title=escape(f"{config}: {len(plan.tasks)} task(s){scored}, sampler {loaded.sampler.name} ({plan.mode}), loss {loaded.loss.strategy}"))
    draws = (counts or {}).get("draws") or {}
    for column in ("task", "kind", "source", "data") + (("train rows", f"{loaded.evaluation.split} rows") if counts else ()) \
            + (("drawn",) if draws else ()):
        table.add_column(column, justify="right" if column.endswith("rows") or column == "drawn" else "left")
    for p in plan.tasks:
        where = p.data_dir or _hub_data(p) or _sample_folder(p)
        if p.entry.define is not None and p.entry.data_dir is None:  # an inline task: where its files are
            where = _files_folder(p.entry.define.get("files")) or where
        rows = counts["rows"][p.id] if counts else None
        table.add_row(escape(p.id), str(p.task.kind), escape(p.source), escape(str(where)), *([str(v) for v in rows] if rows else []),
                      *([draws[p.id]] if draws else []))
    for e in plan.evaluated:  # scored with a trained task's head, not trained
        rows = counts["rows"][e.id] if counts else None
        where = e.data_dir or _hub_data(e) or _sample_folder(e)
        table.add_row(escape(f"{e.id} (evaluated with {e.head})"), str(e.task.kind), escape(e.source), escape(str(where)),
                      *([str(v) for v in rows] if rows else []))
    stdout.print(table)
    if counts:
        run = "schedule.max_steps" if loaded.schedule.max_steps is not None else f"{loaded.schedule.epochs} epoch(s)"
        batches, every = counts["epoch_batches"], counts["accumulation"]
        if every == 1:
            print(f"steps: {batches} in the first epoch, {counts['total_steps']} in the run ({run})")
        else:  # optimizer steps of `every` batches: the first epoch's batches would mislead beside the run's steps
            print(f"steps: {-(-batches // every)} in the first epoch ({batches} batches, {every} a step), "
                  f"{counts['total_steps']} in the run ({run})")
    print("config ok" + ("" if data else " (data not read: --no-data)"))


def _hub_data(planned: Any) -> str:
    """What a hub source reads (``RussianNLP/russian_super_glue (terra)``): its description, else its path."""
    source = planned.task.sources.get(planned.source)
    if source is None or source.kind != "hub":
        return ""
    return source.description.removeprefix("hub ").strip() or str(source.options.get("path", ""))


def _sample_folder(planned: Any) -> str:
    """Where a sample source reads: the folder that defined the task (a task defined in a config or YAML file), or the plugin."""
    source = planned.task.sources.get(planned.source)
    if source is None or source.kind != "sample":
        return ""
    return str(source.options.get("base_dir") or "(in the plugin)")


def _files_folder(files: Any) -> str | None:
    """The folder of an inline task's first file (its paths are absolute once the config is read)."""
    first = files if isinstance(files, str) else next(iter(files.values()), None) if isinstance(files, dict) else (files or [None])[0]
    first = first[0] if isinstance(first, list) and first else first
    return str(Path(first).parent) if isinstance(first, str) else None


def _count(plan: Any) -> dict[str, Any]:
    """Read every task's data as the run would and count rows and steps."""
    from transformers import AutoConfig

    from mtcore.train.build import load_data, quiet_progress_bars
    from mtcore.train.encoder_source import encoder_source, load_tokenizer
    from mtcore.train.class_balance import balanced_class_weights, balanced_note
    from mtcore.train.steps import build_sampler, check_frozen_steps, long_epoch_note, run_batches, run_steps
    from mtcore.train.run_dir import RunDir
    from mtcore.cli.check_metrics import check_metrics

    config, accelerator, notes = plan.config, _OneProcess(), []
    with tempfile.TemporaryDirectory(prefix="mt-check-") as scratch, quiet_progress_bars():
        source = encoder_source(config, RunDir(scratch), accelerator)
        tokenizer = load_tokenizer(source, config)
        encoder_config = AutoConfig.from_pretrained(source, trust_remote_code=bool(config.encoder.trust_remote_code))
        _check_encoder_kwargs(config, source)
        _check_heads(plan, encoder_config)
        _check_encoder_structure(config, encoder_config)
        _check_attention(config, encoder_config)
        _check_flash_attention(config, encoder_config)
        notes.extend(_export_notes(plan, encoder_config, tokenizer))
        train, evaluation, splits = load_data(plan, tokenizer, encoder_config, accelerator, notes)
        tasks = {p.id: p.task for p in plan.tasks}
        notes.extend(balanced_note(tasks[t], w) for t, w in balanced_class_weights(plan.tasks, train).items())
        sampler = build_sampler(plan, train, accelerator)
        total, last = run_steps(sampler, config)
        check_frozen_steps(config, total)
        notes.extend(note for note in [long_epoch_note(sampler, run_batches(total, last, config))] if note)
        split = config.evaluation.split
        rows = {p.id: (train[p.id].rows_text("train"), evaluation[p.id].rows_text(split) if p.id in evaluation else "-")
                for p in plan.tasks}
        rows.update({e.id: ("-", f"{evaluation[e.id].rows_text(splits[e.id])}" + (f" ({splits[e.id]})" if splits[e.id] != split else ""))
                     for e in plan.evaluated})
        check_metrics(plan, evaluation, split, splits)
        counts = {"rows": rows, "epoch_batches": sampler.steps_in_epoch(0), "total_steps": total,
                  "accumulation": config.optimizer.gradient_accumulation_steps, "draws": _draw_shares(sampler, plan.mode)}
    for note in notes:
        print(f"note: {note}")
    return counts


def _draw_shares(sampler: Any, mode: str) -> dict[str, str] | None:
    """Each task's chance of being drawn at a step (``"52.9%"``; an annealed sampler: its first epoch's, then the run's last's,
    ``"52.9% → 40.1%"``), or None when no task is drawn (every task each step) or the sampler gives no probabilities."""
    from mtcore.errors import MtError

    if mode != "single":
        return None
    inner = sampler.sampler
    annealing = int(inner.options.get("num_epochs", 1) or 1) if isinstance(inner.options, dict) else 1
    last = min(annealing, int(getattr(sampler, "num_epochs", 1) or 1)) - 1  # the run's last epoch, if the annealing lasts longer
    try:
        first, final = inner.normalized_probabilities(0), inner.normalized_probabilities(max(last, 0))
    except (NotImplementedError, MtError):  # a plugin's sampler that only chooses
        return None
    shown = {}
    for task, a, b in zip(inner.tasks, first, final):
        shown[task] = f"{100 * a:.1f}%" + (f" → {100 * b:.1f}%" if f"{100 * a:.1f}" != f"{100 * b:.1f}" else "")
    return shown


NOMINAL_WIDTH = 768  # the heads' input width when the encoder's config is not read (--no-data)


def _check_heads(plan: Any, encoder_config: Any = None) -> None:
    """Build every task's head as ``mt train`` will (head options, label counts): their mistakes are found here too.

    Without ``encoder_config`` (``mt check --no-data``) each head is built on the meta device at a nominal
    width (no memory): a registered head that is no ``nn.Module`` or rejects its options is still named,
    and an error that only the real width or real tensors could cause is left to ``mt train``."""
    from types import SimpleNamespace

    from mtcore.errors import MtError
    from mtcore.model.encoder import hidden_size
    from mtcore.model.heads.factory import as_spec, build_head

    if encoder_config is not None:
        width = hidden_size(SimpleNamespace(config=encoder_config))
        for task in plan.tasks:
            build_head(task.id, as_spec(task.id, task.task), width)
        return
    import torch

    for task in plan.tasks:
        try:
            with torch.device("meta"):
                build_head(task.id, as_spec(task.id, task.task), NOMINAL_WIDTH)
        except MtError:
            raise
        except Exception:  # noqa: BLE001 - e.g. a head reading a tensor's value while it is built: mt train builds it for real
            continue


def _export_notes(plan: Any, encoder_config: Any, tokenizer: Any) -> list[str]:
    """A note per task whose head ``mt export`` will not export as a plain transformers model (its own refusal,
    naming the head that would), found now rather than after the training; nothing when that cannot be tried."""
    from mtcore.export.hf import export_refusals

    try:
        refusals = export_refusals(encoder_config, {p.id: p.task for p in plan.tasks}, tokenizer)
    except Exception:  # noqa: BLE001 - advice only: an encoder this cannot build is for mt train to report
        return []
    if len(refusals) > EXPORT_NOTES:  # forty tasks: forty lines of the same advice
        first, *_ = refusals.values()
        names = ", ".join(list(refusals)[:EXPORT_NOTES]) + ", ..."
        return [f"mt export (after training): {len(refusals)} tasks cannot be exported as plain transformers models ({names}); "
                f"the first: {first}"]
    return [f"mt export (after training): {line}" for line in refusals.values()]


#: The tasks ``mt check`` gives an export note each; more get one note together.
EXPORT_NOTES = 3


def _check_encoder_kwargs(config: Any, source: str) -> None:
    """``encoder.options.encoder_kwargs`` of the wrong type for the encoder's config (``"0.1"`` for a dropout), as
    ``mt train`` finds when it loads the encoder; other mistakes there ``mt train`` says when it builds the model."""
    from transformers import AutoConfig

    from mtcore.errors import ConfigError
    from mtcore.model.encoder import strict_config_errors, typed_field_error

    kwargs = dict(config.encoder.options.get("encoder_kwargs") or {})
    try:
        if kwargs:
            AutoConfig.from_pretrained(source, trust_remote_code=bool(config.encoder.trust_remote_code), **kwargs)
    except strict_config_errors() as exc:
        raise ConfigError(f"config key 'encoder.options.encoder_kwargs': {typed_field_error(exc)}") from None
    except (TypeError, ValueError, OSError):
        pass


def _check_attention(config: Any, encoder_config: Any) -> None:
    """``encoder.attn_implementation`` other than the default: a name transformers does not know, or one this
    architecture does not support, as ``mt train`` finds when it loads the encoder (with "did you mean"). Whether
    its kernels are installed here is left to the run: a config is often checked on another machine."""
    impl = config.encoder.attn_implementation
    if impl in (None, "sdpa"):
        return
    import torch
    from transformers import AutoModel

    from mtcore.errors import ConfigError
    from mtcore.model.encoder import attention_hint

    try:
        with torch.device("meta"):
            AutoModel.from_config(encoder_config, attn_implementation=impl, trust_remote_code=config.encoder.trust_remote_code)
    except ValueError as exc:
        if impl not in str(exc) and "attention" not in str(exc).lower():  # as mt train tells them ("does not support Flash Attention 2")
            return
        raise ConfigError(f"config key 'encoder.attn_implementation': this encoder cannot use {impl!r}{attention_hint(impl)}: "
                          f"{str(exc).splitlines()[0]}") from None
    except Exception:  # noqa: BLE001 - kernels not installed here, or an encoder this cannot build: mt train says
        return


def _check_flash_attention(config: Any, encoder_config: Any) -> None:
    """``encoder.options.flash_attention`` needs an encoder without attention dropout (its config, with the
    ``encoder_kwargs`` the run gives ``from_pretrained``) and kernels that load, as ``mt train`` finds when it
    builds the model (this process ends after the check: the kernels it activates go with it)."""
    impl = config.encoder.options.get("flash_attention")
    if impl is None:
        return
    from types import SimpleNamespace

    from mtcore.model.flash_impl import activate

    settings = {**encoder_config.to_dict(), **dict(config.encoder.options.get("encoder_kwargs") or {})}
    activate(impl, SimpleNamespace(config=SimpleNamespace(**settings)), padding_free=bool(config.batching.padding_free))


def _check_encoder_structure(config: Any, encoder_config: Any) -> None:
    """The settings that need the encoder's modules (LoRA's ``target_modules``, ``optimizer.layer_decay``,
    ``encoder.task_layers``, ``encoder.freeze_layers``), checked on the encoder built on the meta device: no weights are read or allocated."""
    from mtcore.model.lora import lora_settings

    lora = config.encoder.options.get("lora")
    settings = lora_settings(lora) if lora is not None and lora is not False else None
    decay = config.optimizer.layer_decay not in (None, 1) and not config.encoder.freeze_encoder
    frozen = config.encoder.freeze_layers and not config.encoder.freeze_encoder
    if settings is None and not decay and not config.encoder.task_layers and not frozen:
        return
    import torch
    from transformers import AutoModel

    try:
        with torch.device("meta"):
            encoder = AutoModel.from_config(encoder_config, trust_remote_code=config.encoder.trust_remote_code)
    except Exception:  # noqa: BLE001 - an encoder this cannot build is reported by mt train, which loads it for real
        return
    if settings is not None:
        from mtcore.model.lora import lora_targets

        lora_targets(encoder, settings)
    if decay:
        from mtcore.train.optim import check_layer_decay

        check_layer_decay(encoder)
    if config.encoder.task_layers:
        from mtcore.model.task_layers import check_count, layer_stack

        check_count(config.encoder.task_layers, len(layer_stack(encoder)[1]), where="config key 'encoder.task_layers'")
    if frozen:
        from mtcore.model.encoder import check_freeze_layers

        check_freeze_layers(encoder, config.encoder.freeze_layers)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
