"""Loss strategies that train on a non-linear function of the tasks' losses: GLS and STCH.

The gradient of ``f(L₁, ..., L_K)`` is ``Σ cᵢ ∇Lᵢ`` with ``cᵢ = ∂f/∂Lᵢ`` at the step's own losses ``Lᵢ`` (each task's
mean over the step's items, every micro-step and process). To know them before anything is back-propagated, the loop
runs the step's batches forward first, without gradients, on the random streams the training forwards then draw from
(``needs_losses_before_step``: the same dropout masks and R3F noise, so the same losses; about one forward pass more
per step, as ``famo``'s), averaged over processes. Then the step trains as ``sum`` does, one task's backward after its
forward, each loss times its fixed ``cᵢ``: gradient accumulation and DDP train as one process with the whole step's
batch would (weighting each micro-step by its own losses, as the papers' single-batch code would under accumulation,
would not), and no graph or gradient copy is kept. A step whose losses are not all finite trains with ``cᵢ = 1``
(``sum``), so the NaN check names the task whose loss it is, not the strategy.

* ``gls`` — the geometric loss strategy (Chennupati et al. 2019, "MultiNet++"; LibMTL's ``GLS``): ``f = K · (Π Lᵢ)^(1/K)``,
  ``K`` times the geometric mean (LibMTL trains on the mean; ``K`` puts it on ``sum``'s scale: equal losses weigh 1
  each). ``cᵢ = G / Lᵢ``, ``G`` the geometric mean of the step's losses: a task whose loss is below the others' weighs
  more, so every task's relative improvement counts alike (a change of ``log Lᵢ`` moves ``log f`` the same for every
  task). A loss below ``ε = 1e-8`` counts as ``ε``.
* ``stch`` — smooth Tchebycheff scalarization (Lin et al., ICML 2024, "Smooth Tchebycheff Scalarization for
  Multi-Objective Optimization"; LibMTL's ``STCH``, from the authors' code): for the first ``warmup_steps`` steps
  ``f = Σ log(Lᵢ + ε)`` (``cᵢ = 1 / (Lᵢ + ε)``), and each task's nadir ``nᵢ`` is the mean of its step losses over the
  warm-up's second half (LibMTL warms up 4 epochs and takes the last one's); then
  ``f = K · μ · log Σ exp(log((Lᵢ + ε) / nᵢ) / μ)``, a smooth maximum of the log-losses relative to the nadir:
  ``cᵢ = K · softmax(log((L + ε) / n) / μ)ᵢ / (Lᵢ + ε)``. The task furthest above its nadir weighs most; ``μ → 0``
  trains the worst task alone (Tchebycheff), a large ``μ`` the mean log-loss. Options ``mu`` (1.0) and
  ``warmup_steps`` (100), LibMTL's ``STCH_mu`` and (in steps, not epochs) its warm-up. As ``db_mtl``'s, these are
  gradients of log-losses: each task's is divided by its loss, 10 times larger at a loss of 0.1 than at 1 — watch the
  logged ``grad_norm`` against ``max_grad_norm``. The nadir sums, their counts and the nadir are saved in
  checkpoints, so ``--resume`` continues exactly.

Both log ``cᵢ``, the weight of each task's loss in the step, at logging steps (``loss_weights`` events).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from mtcore.errors import ConfigError
from mtcore.train.losses import LossStrategy, _finite
from mtcore.train.step_losses import StepLosses

#: A loss below this counts as this (no log of 0, no division by 0).
EPS = 1e-8


class _StepLossWeighting(LossStrategy):
    """``Σ cᵢ Lᵢ`` with ``c`` fixed from the step's own losses before its micro-steps (see the module docstring)."""

    batches = "all"
    uses_weights = False
    logs_weights = True
    needs_losses_before_step = True

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        self.register_buffer("weights_now", torch.ones(len(self.task_ids), dtype=torch.float64))
        self._index = {task: i for i, task in enumerate(self.task_ids)}

    def before_step(self, losses: StepLosses, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        k = len(self.task_ids)
        values = torch.cat([losses.sums, losses.counted]).to(self.weights_now.device)
        if reduce_mean is not None:  # one collective: each task's mean over every process's items
            values = reduce_mean(values)
        means, counted = values.double().split(k)
        present = counted > 0
        ok = torch.isfinite(means[present]).all()
        floor = means.clamp(min=EPS)
        weights = torch.where(present, self.weights_for(torch.where(present, floor, torch.ones_like(floor)), present, step),
                              torch.ones_like(means))
        self.weights_now.copy_(torch.where(ok & torch.isfinite(weights).all(), weights, torch.ones_like(weights)))  # no host read

    def weights_for(self, losses: torch.Tensor, present: torch.Tensor, step: int) -> torch.Tensor:
        """``cᵢ`` for the step's ``losses`` (float64, at least ``EPS``; 1 where a task is not ``present``)."""
        raise NotImplementedError

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return self.weights_now[self._index[task_id]].to(loss.dtype) * loss

    def task_weights(self) -> dict[str, float]:
        return dict(zip(self.task_ids, self.weights_now.float().tolist()))


class GLSLoss(_StepLossWeighting):
    """GLS: ``K`` times the geometric mean of the tasks' losses (see the module docstring)."""

    def weights_for(self, losses: torch.Tensor, present: torch.Tensor, step: int) -> torch.Tensor:
        logs = torch.where(present, losses.log(), torch.zeros_like(losses))
        mean_log = logs.sum() / present.sum().clamp(min=1)
        return (mean_log - logs).exp()  # G / Lᵢ


class STCHLoss(_StepLossWeighting):
    """STCH with smoothing ``mu`` after ``warmup_steps`` steps of log-losses (see the module docstring)."""

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, mu: float = 1.0,
                 warmup_steps: int = 100, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if _finite(mu, "stch", "mu", "the smoothing μ of the maximum") <= 0:
            raise ConfigError(f"loss strategy 'stch': option 'mu' (the smoothing μ of the maximum; small: the worst task alone) "
                              f"must be a number > 0, got {mu!r}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 1:
            raise ConfigError(f"loss strategy 'stch': option 'warmup_steps' (steps of log-losses whose second half gives each "
                              f"task's nadir) must be an integer >= 1, got {warmup_steps!r}")
        self.mu, self.warmup_steps = float(mu), int(warmup_steps)
        k = len(self.task_ids)
        self.register_buffer("nadir_sums", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("nadir_counts", torch.zeros(k, dtype=torch.float64))

    def weights_for(self, losses: torch.Tensor, present: torch.Tensor, step: int) -> torch.Tensor:
        if step <= self.warmup_steps:
            if step > self.warmup_steps // 2:  # the warm-up's second half: each task's nadir is its mean loss there
                kept = present & torch.isfinite(losses)  # a diverged step adds nothing (it trains as sum)
                self.nadir_sums += torch.where(kept, losses, torch.zeros_like(losses))
                self.nadir_counts += kept.double()
            return 1.0 / losses
        nadir = torch.where(self.nadir_counts > 0, self.nadir_sums / self.nadir_counts.clamp(min=1), torch.ones_like(losses))
        relative = torch.where(present, (losses / nadir.clamp(min=EPS)).log() / self.mu, torch.full_like(losses, -torch.inf))
        return len(self.task_ids) * torch.softmax(relative, 0) / losses
