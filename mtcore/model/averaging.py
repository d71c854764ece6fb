"""Averaging the weights of trained models of one shape: a "uniform soup" (Wortsman et al. 2022) of seeds or of a run's
last checkpoints (``mt average``).

Every tensor of the models' state dicts is averaged (in float32, stored back in its dtype); integer buffers must be equal.
The models must have the same tasks (kind, labels, head and its options), the same tensors and the same vocabulary: the
average of models fine-tuned from one pretrained encoder is one model, usually as good as the best of them and steadier
(several seeds of a small task), while models of other shapes have no average. Per-task LoRA adapters are refused: the
average of ``B`` and of ``A`` is not the average of ``B @ A``; shared adapters (a checkpoint of a LoRA run) are merged into
the weights first, as ``model/`` holds them.

:func:`greedy_soup` is the paper's greedy soup: the models in order of their held-out score, each kept only when the
soup with it scores at least as well as without (models of other learning rates or schedules, a ``--grid``'s runs, whose
uniform average can be worse than its best member).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtcore.errors import UsageError
from mtcore.model.heads.base import TRAINING_ONLY_OPTIONS as _TRAINING_ONLY  # heads that differ in them average (a sweep)

#: What of a task's saved description must match for two heads to be averaged (head options: :func:`_shape_options`).
_TASK_KEYS = ("kind", "labels", "head", "head_id", "head_options")


def average_models(paths: Sequence[Any], load: Callable[[Any], Any]) -> Any:
    """The model at ``paths[0]`` with every weight the mean over all ``paths`` (``load(path)``: a MultitaskModel). Loads
    one model at a time: memory for two models and the sums."""
    if len(paths) < 2:
        raise UsageError(f"averaging needs two models or more, got {len(paths)}; give the runs, models or checkpoints to average")
    load = _merged(load)
    first = load(paths[0])
    _check_averageable(first, paths[0])
    reference = first.state_dict()
    sums = _floats(reference)
    for path in paths[1:]:
        sums = _added(sums, _state_of(first, reference, load(path), paths[0], path))
    first.load_state_dict(_mean(sums, reference, len(paths)))
    return first


@dataclass
class Soup:
    """What :func:`greedy_soup` made: the model, the paths kept (best first) and every score it saw."""

    model: Any
    kept: list[Any] = field(default_factory=list)
    scores: dict[Any, float] = field(default_factory=dict)  # each model alone
    soup_scores: list[tuple[Any, float, bool]] = field(default_factory=list)  # (path tried, the soup's score with it, kept)


def greedy_soup(paths: Sequence[Any], load: Callable[[Any], Any], score: Callable[[Any, Any], float]) -> Soup:
    """The greedy soup of ``paths``: ``score(path, model)`` scores a model (alone, or a soup; ``path``: the model's, for
    messages) on one held-out set, higher is better; every model is checked against the first and scored alone before
    any soup, then tried from the best down, each kept when the soup with it scores at least the soup without."""
    if len(paths) < 2:
        raise UsageError(f"averaging needs two models or more, got {len(paths)}; give the runs, models or checkpoints to average")
    load = _merged(load)
    reference = load(paths[0])
    _check_averageable(reference, paths[0])
    scores = {paths[0]: score(paths[0], reference)}
    for path in paths[1:]:  # every model's mistake (shape, options) before the soups are scored
        model = load(path)
        _check_averageable(model, path)
        _check_same_shape(reference, model, paths[0], path)
        scores[path] = score(path, model)
        del model
    del reference
    order = sorted(paths, key=lambda path: -scores[path])  # stable: ties keep the order given
    first = load(order[0])
    _check_averageable(first, order[0])
    reference = first.state_dict()
    sums, best = _floats(reference), scores[order[0]]
    soup = Soup(first, [order[0]], scores)
    for path in order[1:]:
        candidate = _added(dict(sums), _state_of(first, reference, load(path), order[0], path))
        first.load_state_dict(_mean(candidate, reference, len(soup.kept) + 1))
        value = score(path, first)
        keep = value >= best
        soup.soup_scores.append((path, value, keep))
        if keep:
            sums, best = candidate, value
            soup.kept.append(path)
    first.load_state_dict(_mean(sums, reference, len(soup.kept)))
    return soup


def _merged(load: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``load`` with a model of shared LoRA adapters (a checkpoint of such a run: ``model/`` has them merged already) turned
    into the plain model its ``save_pretrained`` writes, adapters merged into the weights: averaging the adapters' ``A`` and
    ``B`` apart would not average what they add."""

    def plain(path: Any) -> Any:
        model = load(path)
        lora = getattr(model, "lora", None) or {}
        if not lora or lora.get("per_task"):  # per-task adapters: refused by _check_averageable
            return model
        import tempfile

        from mtcore.model.quiet_bars import transformers_bars_off

        with tempfile.TemporaryDirectory(prefix="mt-average-") as folder, transformers_bars_off():
            model.save_pretrained(folder)
            return type(model).from_pretrained(folder, verify=False)

    return plain


def _floats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() if v.is_floating_point() else v for k, v in state.items()}


def _added(sums: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v + state[k].detach().float() if v.is_floating_point() else v for k, v in sums.items()}


def _mean(sums: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    return {k: (v / count).to(reference[k].dtype) if reference[k].is_floating_point() else v for k, v in sums.items()}


def _state_of(first: Any, reference: dict[str, torch.Tensor], model: Any, first_path: Any, path: Any) -> dict[str, torch.Tensor]:
    """``model``'s weights, checked against the first model's (same shape; equal integer buffers)."""
    _check_averageable(model, path)
    _check_same_shape(first, model, first_path, path)
    state = model.state_dict()
    for key, value in state.items():
        if not value.is_floating_point() and not torch.equal(value, reference[key]):
            raise UsageError(f"{path}: its {key} differs from {first_path}'s and cannot be averaged (not a weight); average models "
                             "trained from one encoder with one config")
    return state


#: Options whose default (None) the built head resolves (span pooling's, the masked_lm head's epsilon): compared as the head
#: has them, so one written out at the value it takes anyway is the same head.
_RESOLVED = {"span_pooling": ("pooler", "span_pooling"), "num_spans": ("pooler", "num_spans"), "layer_norm_eps": ("layer_norm", "eps"),
             "activation": ("", "activation_name")}


def _shape_options(info: Any, head: Any = None) -> dict[str, Any]:
    """A saved head's options with its class's defaults filled in (an option written out at its default is the same
    head; ``head``: the built module, for the defaults it resolves itself, :data:`_RESOLVED`) and those of training only
    left out (:data:`_TRAINING_ONLY`)."""
    import inspect

    from mtcore.model.manifest import jsonable

    defaults: dict[str, Any] = {}
    try:
        from mtcore.plugins import load_registry

        head_class = load_registry(warn=False).component("head", str(info.get("head_id") or info.get("head"))).load()
        defaults = {p.name: p.default for p in inspect.signature(head_class).parameters.values() if p.default is not inspect.Parameter.empty}
    except Exception:  # noqa: BLE001 - a custom head: its options as saved
        defaults = {}
    options = {**jsonable(defaults), **dict(info.get("head_options") or {})}
    for option, (part, attribute) in _RESOLVED.items():
        value = getattr(getattr(head, part, None) if part else head, attribute, None)
        if option in options and value is not None:
            options[option] = value
    from mtcore.model.heads.pooling import number_or_text

    return {k: number_or_text(v) for k, v in options.items() if k not in _TRAINING_ONLY and k not in ("hidden_size", "num_labels")}


def _check_averageable(model: Any, path: Any) -> None:
    lora = getattr(model, "lora", None) or {}
    if lora.get("per_task"):
        raise UsageError(f"{path}: has per-task LoRA adapters, whose average is not the average of the weights they add; average "
                         "models without them (a shared LoRA run saves its adapters merged in)")


def _check_same_shape(first: Any, other: Any, first_path: Any, path: Any) -> None:
    """Same tasks, heads, tensors and vocabulary as the first model; else one line naming the first difference."""
    if set(first.tasks) != set(other.tasks):  # the same tasks in another order average alike (weights are keyed by task)
        raise UsageError(f"{path}: has the tasks {', '.join(other.tasks)}, and {first_path} {', '.join(first.tasks)}; average models "
                         "of the same tasks")
    for task_id, info in first.tasks.items():
        theirs = other.tasks[task_id]
        mine_cmp, theirs_cmp = ({**task, "head_options": _shape_options(task, model.heads[task_id])}
                                for task, model in ((info, first), (theirs, other)))
        different = next((key for key in _TASK_KEYS if mine_cmp.get(key) != theirs_cmp.get(key)), None)
        if different == "head_options":  # the option that differs, not every default
            mine_opts, theirs_opts = mine_cmp[different], theirs_cmp[different]
            option = next(k for k in sorted(set(mine_opts) | set(theirs_opts)) if mine_opts.get(k) != theirs_opts.get(k))
            raise UsageError(f"{path}: task {task_id!r} has head option {option} {theirs_opts.get(option)!r}, and {first_path} "
                             f"{mine_opts.get(option)!r}; average models trained with one config")
        if different is not None:
            raise UsageError(f"{path}: task {task_id!r} has {different} {theirs_cmp.get(different)!r}, and {first_path} "
                             f"{mine_cmp.get(different)!r}; average models trained with one config")
    mine, theirs = first.state_dict(), other.state_dict()
    odd = next((k for k in mine if k in theirs and mine[k].shape != theirs[k].shape), None)
    if odd is not None:
        raise UsageError(f"{path}: its tensor {odd} has the shape {tuple(theirs[odd].shape)}, and {first_path}'s "
                         f"{tuple(mine[odd].shape)} (other encoder or settings); average models of one shape")
    odd = next((k for k in mine if k in theirs and mine[k].dtype != theirs[k].dtype), None)
    if odd is not None:  # the average would be stored in the first model's dtype: which one would depend on the order given
        dtypes = (str(t[odd].dtype).removeprefix("torch.") for t in (theirs, mine))
        raise UsageError(f"{path}: holds its weights in {next(dtypes)} ({odd}), and {first_path} in {next(dtypes)}; average models "
                         "of one dtype (trained with the same encoder.options.dtype)")
    lacking = next(((k, path, first_path) for k in mine if k not in theirs), None) or next(((k, first_path, path) for k in theirs if k not in mine), None)
    if lacking is not None:
        key, without, holder = lacking
        raise UsageError(f"{without}: has no tensor {key}, which {holder} has (other encoder or settings); average models of one shape")
    tokenizers = [getattr(m, "tokenizer", None) for m in (first, other)]
    if all(t is not None for t in tokenizers) and tokenizers[0].get_vocab() != tokenizers[1].get_vocab():
        raise UsageError(f"{path}: has another tokenizer than {first_path}; average models of one encoder")
