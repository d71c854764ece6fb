"""DB-MTL: Dual-Balancing Multi-Task Learning (Lin et al. 2023, arXiv 2308.12029), a gradient combiner.

Like ``imtl`` or ``nash_mtl`` (:mod:`mtcore.train.gradient_surgery`) it is a
:class:`~mtcore.train.losses.GradientCombiner`: one batch of every task per step, one backward pass per task, the
flat gradients ``gᵢ`` of the shared parameters summed over the step's micro-steps and averaged over processes before
they are combined, so every process takes the same update. It balances the tasks twice:

* loss scales — it trains on ``log Lᵢ``, not ``Lᵢ``: each task's gradient is ``∇ log(Lᵢ + ε) = gᵢ / (Lᵢ + ε)``,
  ``ε = 1e-8`` (:data:`EPS`, LibMTL's), so a loss of 0 (whose gradient is 0 too) divides nothing by 0. ``Lᵢ`` is the
  task's loss of the whole step (its mean over the step's items, every micro-step and process: what
  :meth:`~mtcore.train.losses.GradientCombiner.step_losses` gets) and ``gᵢ`` that step's gradient, so this is the
  gradient of the log of the step's loss: 2 micro-steps of 4 rows train as one step of 8, DDP as one process with the
  global batch. (Back-propagating the log of each micro-step's loss would give ``Σₘ gₘ / ℓₘ`` instead, a sum over
  the micro-steps that depends on how the step is split; so each loss is back-propagated as is and the division
  happens once the step is summed.) Raising a small gradient to the largest norm raises its float32 rounding too: on
  the tests' tiny model 2 micro-steps of 4 rows and one step of 8 end 3e-6 apart after 4 steps (``gradnorm``: 5e-8).
* gradient magnitudes — an exponential moving average of each task's log-loss gradient on the shared parameters,
  ``ĝᵢ ← βₜ ĝᵢ + (1 − βₜ) gᵢ / (Lᵢ + ε)``, ``βₜ = β / t^σ`` (``t`` the average's update, from 1), buffers starting
  at 0 without bias correction (as the paper and LibMTL); then every task's average is raised to the largest's norm:
  ``d = Σ αᵢ ĝᵢ``, ``αᵢ = maxₖ ‖ĝₖ‖ / ‖ĝᵢ‖``. Options ``beta`` (β, 0.9) and ``beta_sigma`` (σ, 0.5), the paper's
  and LibMTL's defaults; ``βₜ`` falls to 0.09 by step 100, so the average soon follows the current gradient. For a
  constant gradient the update is 0.10, 0.43, 0.70, 0.87 of its limit at steps 1–4: a short warm-up of the encoder.

Scale: the paper's update, not rescaled. Every live task's term ``αᵢ ĝᵢ`` has the largest norm and the largest
task's ``α`` is 1, so ``d`` is ``sum``'s update of the log-losses when their gradients have equal norms (orthogonal
ones: norm ``√K · max‖ĝ‖``; parallel: ``K · max‖ĝ‖``): never a convex combination, so no ``K`` to multiply by as
``mgda``'s. Against ``sum`` of the losses themselves each task's gradient is divided by its loss: about the same
while losses are near 1, 10 times larger at 0.1. This is kept rather than multiplied back by a loss (a mean loss,
say): that would put back the scales the log removes and make each head's gradient depend on the other tasks'
losses. Heads get ``∇ log(Lᵢ + ε)`` of their own task, in the same units as the encoder's update (LibMTL's
back-propagation of the log-losses), so ``max_grad_norm``'s global clip treats both alike. mtcore's AdamW is
invariant to a constant gradient scale up to its ``eps``; what changes against ``sum`` is how often
``max_grad_norm`` (1.0) clips as losses fall — watch the logged ``grad_norm``.

A task whose average is 0 (its loss does not reach the encoder, or is 0), or below ``1e-10`` of the largest norm,
gets ``α = 0``: no division by 0; all zero, no update. A task whose gradient just stopped keeps a decaying average,
still raised to the largest norm (the paper's rule) until it falls below that share. A step with a non-finite task
gradient is not combined (the base class passes the sum on, for fp16's grad scaler to skip the step or the NaN check
to stop the run), nor is one with a non-finite loss: the averages and their count stay as they were. fp16's loss
scale is divided out of the averages and put back on the update, so a changing scale does not enter them.

Logged weights (``loss_weights`` events): ``wᵢ = αᵢ / (Lᵢ + ε)``, the weight of ``gᵢ`` in ``d`` were ``ĝᵢ`` the
step's log-loss gradient (exact for ``beta: 0``, close once ``βₜ`` is small). Saved in checkpoints: the ``K``
averages (``K ×`` the encoder's trainable parameters in float32, beside the ``K`` flat gradients every combiner keeps:
~1.3 GB for BERT-base with three tasks, in memory and in each checkpoint) and their update count, so ``--resume``
continues exactly. No host read per step beyond the base class's finiteness check and one of the ``K`` losses; under
DDP one more all-reduce of ``K`` numbers (the losses, for the heads' scale before the gradients are reduced).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError
from mtcore.train.gradient_surgery import ZERO
from mtcore.train.losses import GradientCombiner, _finite, _StepSums

#: Added to each task's loss before its log (LibMTL's): ``∇ log(L + EPS)``.
EPS = 1e-8


class TaskAverages:
    """A combiner's per-task statistics of the shared gradient (the buffer named :attr:`rows`, one float32 row per task,
    registered by the strategy as ``torch.zeros(K, 0)`` beside an ``updates`` count): sized at the first update, loaded
    from a checkpoint at the size it was saved with (``db_mtl``'s and ``moco``'s averages, ``excess_mtl``'s sums of
    squares)."""

    strategy_name = ""
    rows = "averages"

    def _sized(self, numel: int, device: torch.device) -> torch.Tensor:
        """The rows, allocated at the first update for ``numel`` shared values (the strategy's buffers moved to
        ``device`` first)."""
        if getattr(self, self.rows).device != device:
            self.to(device)
        held = getattr(self, self.rows)
        if held.shape[1] != numel:
            if int(self.updates) > 0:
                raise ConfigError(f"loss strategy {self.strategy_name!r}: its per-task gradient statistics hold {held.shape[1]} values "
                                  f"per task (from a checkpoint) but the encoder has {numel} trainable parameters; start a new run")
            setattr(self, self.rows, torch.zeros(len(self.task_ids), numel, device=device))
        return getattr(self, self.rows)

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        saved, held = state_dict.get(prefix + self.rows), getattr(self, self.rows)
        if isinstance(saved, torch.Tensor) and saved.shape != held.shape:  # sized at the first step
            setattr(self, self.rows, torch.empty(saved.shape, device=held.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class DBMTLLoss(TaskAverages, GradientCombiner):
    """DB-MTL with average rate ``beta / t**beta_sigma`` (see the module docstring)."""

    logs_weights = True
    strategy_name = "db_mtl"

    def __init__(self, task_ids: Any, weights: Any = None, beta: float = 0.9, beta_sigma: float = 0.5, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        beta = _finite(beta, "db_mtl", "beta", "the rate β of the gradient averages, βₜ = β / t^σ")
        if not 0 <= beta < 1:
            raise ConfigError(f"loss strategy 'db_mtl': option 'beta' (the rate β of the gradient averages, βₜ = β / t^σ; "
                              f"0: no average) must be a number in [0, 1), got {beta!r}")
        sigma = _finite(beta_sigma, "db_mtl", "beta_sigma", "the decay σ of the rate, βₜ = β / t^σ")
        if sigma < 0:
            raise ConfigError(f"loss strategy 'db_mtl': option 'beta_sigma' (the decay σ of the rate, βₜ = β / t^σ; "
                              f"0: a constant rate) must be a number >= 0, got {beta_sigma!r}")
        self.beta, self.beta_sigma = beta, sigma
        k = len(self.task_ids)
        self.register_buffer("averages", torch.zeros(k, 0))  # ĝ, one row per task; sized at the first step
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))  # t - 1
        self._losses: torch.Tensor | None = None
        self._held = False
        self._scale: torch.Tensor | None = None
        self._heads: list[list[torch.Tensor | None]] | None = None
        self._present: list[int] | None = None
        self._used: torch.Tensor | None = None

    def step_losses(self, losses: torch.Tensor) -> None:
        """The step's losses, ``Lᵢ`` (in training :meth:`end_backward` has set them already, averaged in float64)."""
        if not self._held:
            self._losses = losses

    def backward(self, losses: Mapping[str, torch.Tensor], shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter],
                 scale: Callable[[torch.Tensor], torch.Tensor], step: int) -> None:
        """The base class's, with each task's head gradients kept apart (they are divided by the task's step loss,
        known once the step ends) and the loss scale (fp16) noted."""
        shared, others = list(shared), list(others)
        params = shared + others
        if getattr(self, "_pending", None) is None or self._heads is None:  # the step's first micro-step
            self._pending = _StepSums(len(self.task_ids), len(shared), len(others))
            self._heads = [[None] * len(others) for _ in self.task_ids]
        pending, heads = self._pending, self._heads
        items = list(losses.items())
        if items:
            self._scale = scale(torch.ones((), device=items[0][1].device)).detach().float()
        for n, (task, loss) in enumerate(items):
            i = self.task_ids.index(task)
            grads = torch.autograd.grad(scale(loss), params, retain_graph=n < len(items) - 1, allow_unused=True)
            pending.add_shared(i, grads[: len(shared)], shared)
            pending.loss_sums[i] = loss.detach().double() if pending.loss_sums[i] is None else pending.loss_sums[i] + loss.detach().double()
            for k, g in enumerate(grads[len(shared):]):
                if g is not None:
                    heads[i][k] = g if heads[i][k] is None else heads[i][k] + g

    def end_backward(self, shared: Sequence[nn.Parameter], others: Sequence[nn.Parameter], step: int,
                     reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        pending, heads, self._heads = getattr(self, "_pending", None), self._heads, None
        if pending is None:
            return
        self._present = [i for i, g in enumerate(pending.shared) if g is not None]
        if self._present:
            sums = [s for s in pending.loss_sums if s is not None]
            losses = torch.stack([s if s is not None else torch.zeros_like(sums[0]) for s in pending.loss_sums])
            if reduce_mean is not None:
                losses = reduce_mean(losses)  # every process's: each head is divided by the global step loss
            full = torch.ones_like(losses)
            full[self._present] = losses[self._present]
            self._losses, self._held = full, True
            inverse = (1.0 / (full + EPS)).float()
            for k in range(len(pending.others)):
                parts = [g * inverse[i].to(g.dtype) for i, task in enumerate(heads) if (g := task[k]) is not None]
                pending.others[k] = sum(parts[1:], parts[0]) if parts else None
        else:  # no task reached any parameter: nothing to divide
            for k in range(len(pending.others)):
                parts = [task[k] for task in heads if task[k] is not None]
                pending.others[k] = sum(parts[1:], parts[0]) if parts else None
        try:
            super().end_backward(shared, others, step, reduce_mean)
        finally:
            self._held, self._present, self._scale = False, None, None

    def combine(self, grads: list[torch.Tensor], step: int) -> torch.Tensor:
        k = len(self.task_ids)
        present = self._present if self._present is not None and len(self._present) == len(grads) else list(range(len(grads)))
        device = grads[0].device
        losses = self._losses.to(device) if self._losses is not None else torch.ones(k, dtype=torch.float64, device=device)
        if not bool(torch.isfinite(losses[present]).all()):  # no log of a diverged loss: the averages stay as they were
            return torch.stack(grads).sum(0)
        scale = self._scale.to(device).double() if self._scale is not None else torch.ones((), dtype=torch.float64, device=device)
        averages = self._sized(grads[0].numel(), device)
        t = (self.updates + 1).double()
        rate = (1.0 - self.beta / t.pow(self.beta_sigma)).float().to(device)
        for j, i in enumerate(present):  # ĝᵢ ← βₜ ĝᵢ + (1 − βₜ) gᵢ / (Lᵢ + ε), the loss scale divided out
            averages[i].lerp_(grads[j].float() * (1.0 / (scale * (losses[i] + EPS))).float(), rate)
        self.updates += 1
        norms = torch.zeros(k, dtype=torch.float64, device=device)
        for i in present:
            norms[i] = torch.linalg.vector_norm(averages[i], dtype=torch.float64)
        top = norms.max()
        live = norms.square() > ZERO * top.square()  # none when every average is 0
        alpha = torch.where(live, top / norms.clamp(min=torch.finfo(torch.float64).tiny), torch.zeros_like(norms))
        self._used = alpha / (losses + EPS)
        return ((alpha.float() @ averages) * scale.float()).to(grads[0].dtype)

    def task_weights(self) -> dict[str, float]:
        used = self._used if self._used is not None else torch.ones(len(self.task_ids))
        return dict(zip(self.task_ids, used.float().tolist()))
