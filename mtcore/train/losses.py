"""Loss strategies: how the per-task losses of one step become parameter gradients.

A :class:`LossStrategy` tells the training loop three things:

* ``batches``: ``"single"`` — the loop hands it one batch (one task) per micro-step; ``"all"`` —
  one batch of every task per micro-step (the sampler runs in mode ``all``);
* whether it has parameters (uncertainty weighting's log-variances, IMTL-L's loss scales): they join the optimizer
  (no weight decay, head learning rate) and the checkpoint through ``state_dict()``; under DDP the
  loop averages their gradients with :meth:`LossStrategy.sync_gradients`;
* ``begin_step``: called before each optimizer step, where weights that change with the step
  (random or dynamic weighting, :mod:`mtcore.train.loss_balancers`) are fixed;
* ``after_step`` (when ``needs_losses_after_step``): called after each optimizer step with the step's
  losses before and after the update, the step's batches run forward again (FAMO, :mod:`mtcore.train.famo`);
  ``before_step`` (when ``needs_losses_before_step``): called before each step's micro-steps with its losses, its
  batches run forward first (GLS, STCH: weights from the step's own losses, :mod:`mtcore.train.scalarizations`);
* ``owns_backward``: when false (the default) the step's loss is a sum of per-task terms and the
  loop back-propagates each task's :meth:`LossStrategy.term` as soon as that task's forward is
  done (one graph alive at a time); when true (PCGrad) the loop keeps every task's loss and calls
  :meth:`LossStrategy.backward` each micro-step and :meth:`LossStrategy.end_backward` once per optimizer step,
  which write the gradients themselves (:class:`GradientCombiner`: per-task gradients summed over micro-steps and
  averaged over processes, then combined). A strategy that cannot accumulate or run under DDP says so
  (``supports_accumulation`` / ``supports_distributed`` false): refused before training starts.

Strategies are built as ``Strategy(task_ids, weights=..., **options)`` where ``options`` come
from ``loss.options`` in the config.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError, did_you_mean
from mtcore.sampling.base import suggest_task


class LossStrategy(nn.Module):
    """Base class: combine a ``{task_id: loss}`` mapping into one loss (see module docstring)."""

    #: "single": one batch per micro-step; "all": one batch of every task per micro-step.
    batches: str = "single"
    #: True when the strategy computes gradients itself (the loop then calls ``backward``).
    owns_backward: bool = False
    supports_accumulation: bool = True
    supports_distributed: bool = True
    #: Whether the strategy applies ``weights`` (``loss.weights``, the tasks' ``weight``); None: unknown
    #: (a plugin's strategy), so a config giving weights is not checked against it.
    uses_weights: bool | None = None
    #: Whether :meth:`task_weights` change during training, so the loop logs them (``loss_weights`` events).
    logs_weights: bool = False
    #: Whether the loop runs the step's batches forward again after the optimizer step, for :meth:`after_step`.
    needs_losses_after_step: bool = False
    #: Whether the loop runs the step's batches forward before it trains on them, for :meth:`before_step`.
    needs_losses_before_step: bool = False

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, **options: Any) -> None:
        super().__init__()
        if options:
            name, accepted = sorted(options)[0], self.option_names()
            raise TypeError(f"unexpected option {name!r}{did_you_mean(name, accepted)}; it accepts: {', '.join(accepted) or 'none'}")
        self.task_ids = list(task_ids)
        self.weights = {t: 1.0 for t in self.task_ids}
        for task, value in (weights or {}).items():
            if task not in self.weights:
                raise ConfigError(f"loss.weights: unknown task {task!r}{suggest_task(str(task), self.task_ids)}; tasks: {', '.join(self.task_ids)}")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"loss.weights: the weight of task {task!r} must be a number >= 0, got {value!r}")
            self.weights[task] = float(value)

    @classmethod
    def option_names(cls) -> list[str]:
        """The options (``loss.options``) the constructor takes."""
        skip = {"self", "task_ids", "weights"}
        return [name for name, p in inspect.signature(cls.__init__).parameters.items()
                if name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def attach(self, model: nn.Module) -> None:
        """Called once by the engine with the model it trains (on its device, not yet wrapped for DDP), after the
        constructor and before a checkpoint's state is loaded, so a strategy can size its state to the model
        (``gradvac``'s per-layer targets). Loops of their own that never call it get the default: nothing."""

    def begin_step(self, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Called by the loop before optimizer step ``step`` (from 1) starts, on every process, so a strategy
        can fix that step's weights (:mod:`mtcore.train.loss_balancers`). ``reduce_mean`` averages a tensor
        over processes (None on one process). Plain loops that only call :meth:`combine` never call it."""

    def after_step(self, before: Any, after: Any, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Called after optimizer step ``step`` on every process, only when ``needs_losses_after_step``: ``before`` and
        ``after`` (:class:`~mtcore.train.step_losses.StepLosses`) hold the step's losses as trained on and again at the new
        parameters (same batches, train mode, no gradients), each batch's divided as in training and summed over
        micro-steps; ``reduce_mean`` of the sums (None on one process) is each task's mean over the step's items."""

    def before_step(self, losses: Any, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Called before optimizer step ``step``'s micro-steps on every process, only when ``needs_losses_before_step``:
        ``losses`` (:class:`~mtcore.train.step_losses.StepLosses`) holds the step's losses, its batches run forward
        without gradients on the random streams the training forwards then use (the same dropout masks: the same
        losses); ``reduce_mean`` of its sums (None on one process) is each task's mean over the step's items."""

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        """What to back-propagate for one task's loss (the strategies here are sums of such terms,
        so the loop runs one backward per task and keeps one graph alive at a time)."""
        raise NotImplementedError

    def combine(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The step's total loss: the sum of :meth:`term` over tasks (for plain loops). Weights that change per step
        (``rlw``, ``dwa``, ``famo``) change only through :meth:`begin_step` and ``after_step``, which the engine calls:
        a loop of its own that calls only this gets fixed weights. Gradient combiners (``pcgrad``, ``mgda``, ...)
        have their own ``combine(grads, step)`` of gradients, not of losses."""
        return torch.stack([self.term(t, loss) for t, loss in losses.items()]).sum()

    def backward(self, losses: Mapping[str, torch.Tensor], shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter],
                 scale: Callable[[torch.Tensor], torch.Tensor], step: int) -> None:
        """Write gradients into ``.grad``, or collect them for :meth:`end_backward` (only for ``owns_backward``
        strategies). Called once per micro-step with each task's loss, already divided so that the step's sum over
        micro-steps, averaged over processes, is the task's mean over the step's items (:mod:`mtcore.train.step_weights`)."""
        raise NotImplementedError(f"{type(self).__name__} does not compute gradients itself")

    def end_backward(self, shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter], step: int,
                     reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Called once per optimizer step, after the last micro-step's :meth:`backward` (only for ``owns_backward``
        strategies), on every process: a strategy that collects the step's gradients in :meth:`backward` writes them
        here. ``reduce_mean`` averages a tensor over processes (None on one process): the loop runs an
        ``owns_backward`` strategy's forwards outside DDP's gradient sync, so the strategy averages what it needs."""

    def sync_gradients(self, reduce_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Average this strategy's own parameter gradients across processes (DDP)."""
        for p in self.parameters():
            if p.grad is not None:
                p.grad = reduce_mean(p.grad)

    def task_weights(self) -> dict[str, float]:
        """Current per-task weights, for logs (reads parameters: call only at logging steps)."""
        return dict(self.weights)


def distributed_alternatives(registry: Any, refused: type) -> str:
    """The registered loss strategies that run under DDP (``supports_distributed``) and, like ``refused``,
    train on the same batches (``batches``), as ``"'sum', 'weighted' or 'dwa'"``: for the message refusing
    ``refused`` under DDP. Strategies that fail to load are left out."""
    names: list[str] = []
    for component in registry.components["loss"].values():
        try:
            cls = component.load()
        except Exception:  # noqa: BLE001 - a broken plugin's strategy is just not suggested
            continue
        if (isinstance(cls, type) and issubclass(cls, LossStrategy) and cls.supports_distributed
                and cls.batches == getattr(refused, "batches", "all") and component.name not in names):
            names.append(component.name)
    quoted = [f"'{name}'" for name in names]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted) or "'single'"


class SingleTaskLoss(LossStrategy):
    """One task per step (the sampler picks it); its loss as is."""

    batches = "single"
    uses_weights = False

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return loss


class SumLoss(LossStrategy):
    """One batch of every task per step; the losses summed (the seed's "metabatch")."""

    batches = "all"
    uses_weights = False

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return loss


class WeightedLoss(LossStrategy):
    """One batch of every task per step; ``sum_i w_i * L_i`` with static weights.

    Weights come from ``loss.weights`` (task id -> weight), else from each task entry's ``weight``.
    """

    batches = "all"
    uses_weights = True

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if self.task_ids and not any(self.weights.values()):
            raise ConfigError("loss.weights: every task has weight 0 (loss.weights, else each task's weight), so loss strategy "
                              "'weighted' would train nothing; give at least one task a positive weight")

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return self.weights[task_id] * loss


class GradientCombiner(LossStrategy):
    """Base of strategies that combine the tasks' gradients on the shared encoder parameters
    (PCGrad, MGDA, CAGrad, GradNorm): one backward pass per task, the shared parameters' flat gradients handed
    to :meth:`combine`, whose result becomes their gradient; head parameters get their own task's
    gradient (times :meth:`head_scale`).

    :meth:`backward` runs once per micro-step and adds each task's gradients to the step's sums; :meth:`end_backward`,
    once per optimizer step, averages those sums over processes (DDP: the loop runs these forwards outside DDP's own
    gradient sync) and combines them. So gradient accumulation and DDP combine the gradient of the whole step's
    batch — every micro-step's and every process's rows — as one process with that batch would, and every process
    takes the same update (``combine`` must be deterministic in its inputs and the step)."""

    batches = "all"
    uses_weights = False
    owns_backward = True

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        """The shared parameters' flat gradient from the tasks' flat gradients (one per task, in task order)."""
        raise NotImplementedError

    #: While :meth:`combine` runs in training: the indices in :attr:`task_ids` of its gradients (None: every task's), and
    #: the factor the gradients carry, fp16's loss scale (a float64 0-d tensor; None: 1).
    step_tasks: list[int] | None = None
    loss_unit: torch.Tensor | None = None

    def head_scale(self, index: int) -> torch.Tensor | None:
        """What the head gradients of the task at ``index`` are multiplied by (None: left as they are), read before
        :meth:`combine` is called."""
        return None

    def step_losses(self, losses: torch.Tensor) -> None:
        """Given the step's loss of each task (float64, in :attr:`task_ids` order; averaged over processes) before
        :meth:`combine` is called. GradNorm reads them; the others ignore them."""

    def backward(self, losses: Mapping[str, torch.Tensor], shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter],
                 scale: Callable[[torch.Tensor], torch.Tensor], step: int) -> None:
        shared, others = list(shared), list(others)
        params = shared + others
        pending = getattr(self, "_pending", None)
        if pending is None:
            pending = self._pending = _StepSums(len(self.task_ids), len(shared), len(others))
        items = list(losses.items())
        if items:  # the factor the gradients carry (fp16's loss scale; else 1), for combine()
            self.loss_unit = scale(torch.ones((), device=items[0][1].device)).detach().double()
        for n, (task, loss) in enumerate(items):
            i = self.task_ids.index(task)
            grads = torch.autograd.grad(scale(loss), params, retain_graph=n < len(items) - 1, allow_unused=True)
            pending.add_shared(i, grads[: len(shared)], shared)
            pending.loss_sums[i] = loss.detach().double() if pending.loss_sums[i] is None else pending.loss_sums[i] + loss.detach().double()
            head_scale = self.head_scale(i)
            for k, g in enumerate(grads[len(shared):]):
                if g is not None:
                    g = g if head_scale is None else g * head_scale.to(g.dtype)
                    pending.others[k] = g if pending.others[k] is None else pending.others[k] + g

    def end_backward(self, shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter], step: int,
                     reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        pending, self._pending = getattr(self, "_pending", None), None
        if pending is None:
            return
        shared, others = list(shared), list(others)
        tasks = [i for i, g in enumerate(pending.shared) if g is not None]
        flat_shared = [pending.shared[i] for i in tasks]
        losses = torch.stack([pending.loss_sums[i] for i in tasks]) if tasks else torch.zeros(0, dtype=torch.float64)
        used, others_used = pending.used, [g is not None for g in pending.others]
        head_grads = pending.others
        if reduce_mean is not None and tasks:
            flat_shared, losses, head_grads, used, others_used = _averaged(reduce_mean, flat_shared, losses, head_grads, others,
                                                                           used, others_used)
        if tasks:
            full = torch.ones(len(self.task_ids), dtype=torch.float64, device=losses.device)
            full[tasks] = losses
            self.step_losses(full)
        finite = bool(torch.stack([g.isfinite().all() for g in flat_shared]).all()) if flat_shared else True
        # a NaN/inf gradient (fp16 overflow, a diverged task) has nothing to combine: its sum goes on, for the grad
        # scaler to skip the step or the NaN check to stop the run with its own message
        if flat_shared:
            from mtcore.train.strategy_checks import checked_combined

            self.step_tasks = tasks  # combine()'s gradients are these tasks' (a loop of one's own may leave some out)
            try:
                combined = checked_combined(self, self.combine(flat_shared, step), flat_shared, step) if finite else torch.stack(flat_shared).sum(0)
            finally:
                self.step_tasks, self.loss_unit = None, None
            _assign(combined, shared, used)
        for p, g, reached in zip(others, head_grads, others_used):
            if reached and g is not None:
                p.grad = g.clone() if p.grad is None else p.grad + g  # a copy: g may be a broadcast view (clipped in place)


class _StepSums:
    """One optimizer step's per-task gradient sums of a :class:`GradientCombiner`, over its micro-steps."""

    def __init__(self, tasks: int, shared: int, others: int) -> None:
        self.shared: list[torch.Tensor | None] = [None] * tasks
        self.loss_sums: list[torch.Tensor | None] = [None] * tasks
        self.others: list[torch.Tensor | None] = [None] * others
        self.used = [False] * shared  # a shared parameter no task reached keeps no gradient (as with 'sum')

    def add_shared(self, task: int, grads: Sequence[torch.Tensor | None], params: Sequence[nn.Parameter]) -> None:
        self.used = [u or g is not None for u, g in zip(self.used, grads)]
        flat = _flatten(grads, params)
        self.shared[task] = flat if self.shared[task] is None else self.shared[task] + flat


def _averaged(reduce_mean: Callable[[torch.Tensor], torch.Tensor], flat_shared: list[torch.Tensor], losses: torch.Tensor,
              head_grads: list[torch.Tensor | None], others: list[nn.Parameter], used: list[bool], others_used: list[bool]) -> tuple:
    """Everything a process summed over the step, averaged over processes in one collective; a parameter reached on any
    process counts as reached."""
    device = losses.device  # the losses' device: a frozen encoder's empty flat gradients are CPU tensors
    dtype = flat_shared[0].dtype if flat_shared[0].numel() else torch.float32
    heads = [(g if g is not None else torch.zeros_like(p)).reshape(-1).to(dtype) for g, p in zip(head_grads, others)]
    flags = torch.tensor([float(u) for u in used + others_used], dtype=dtype, device=device)
    parts = [*(g.to(device) for g in flat_shared), *heads, losses.to(device=device, dtype=dtype), flags]
    total = reduce_mean(torch.cat(parts))
    out, offset = [], 0
    for part in parts:
        out.append(total[offset: offset + part.numel()])
        offset += part.numel()
    k = len(flat_shared)
    shared_avg = out[:k]
    head_avg = [g.view_as(p).to(p.dtype) for g, p in zip(out[k: k + len(heads)], others)]
    losses_avg = out[k + len(heads)].double()
    reached = (out[-1] > 0).tolist()
    return shared_avg, losses_avg, head_avg, reached[: len(used)], reached[len(used):]


class PCGradLoss(GradientCombiner):
    """Projecting conflicting gradients (Yu et al. 2020) on the shared encoder parameters.

    Each task's gradient loses its component along any other task's gradient it conflicts with
    (negative dot product), tasks visited in a random order seeded by ``(seed, step)``; the
    projected gradients are summed. Head parameters get their own task's gradient unchanged.
    Needs one backward pass per task (see :class:`GradientCombiner` for accumulation and DDP).
    """

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, seed: int = 0, eps: float = 0.0,
                 **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ConfigError(f"loss strategy 'pcgrad': option 'seed' must be an integer, got {seed!r}")
        if _finite(eps, "pcgrad", "eps", "added to squared gradient norms") < 0:
            raise ConfigError(f"loss strategy 'pcgrad': option 'eps' must be a number >= 0, got {eps!r}")
        self.seed = int(seed)
        self.eps = float(eps)

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        return project_conflicting(grads, torch.Generator().manual_seed(self.seed * 1_000_003 + step), self.eps)


def _finite(value: Any, strategy: str, option: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"loss strategy {strategy!r}: option {option!r} ({what}) must be a finite number, got {value!r}")
    return float(value)


def project_conflicting(grads: list[torch.Tensor], generator: torch.Generator, eps: float = 0.0) -> torch.Tensor:
    """PCGrad's projection of flat task gradients; returns their projected sum (no host sync).

    ``eps`` is added to each squared norm; at 0 the projection is the paper's at any scale of the gradients
    (a fixed 1e-12 shrank it for gradients of norm 1e-6 and below), and a zero gradient, which no gradient
    conflicts with, is divided by the smallest normal float instead of 0."""
    n = len(grads)
    projected = [g.clone() for g in grads]
    norms_sq = [(g.dot(g) + eps).clamp_min(torch.finfo(g.dtype).tiny) for g in grads]
    for i in range(n):
        for j in torch.randperm(n, generator=generator).tolist():
            if j == i:
                continue
            dot = projected[i].dot(grads[j])
            projected[i] = projected[i] - torch.clamp(dot, max=0.0) / norms_sq[j] * grads[j]
    return torch.stack(projected).sum(0)


def _flatten(grads: Iterable[torch.Tensor | None], params: Sequence[nn.Parameter]) -> torch.Tensor:
    parts = [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]
    return torch.cat(parts) if parts else torch.zeros(0)


def _assign(flat: torch.Tensor, params: Sequence[nn.Parameter], used: Sequence[bool]) -> None:
    offset = 0
    for p, reached in zip(params, used):
        n = p.numel()
        if reached:
            g = flat[offset: offset + n].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad + g
        offset += n
