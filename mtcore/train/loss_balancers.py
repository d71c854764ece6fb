"""Loss strategies whose task weights change from step to step: learned (uncertainty), random (RLW) and dynamic (DWA).

Each takes one batch of every task per step (``batches = "all"``) and weight each task's loss;
the weights of a step are fixed before its first micro-step (:meth:`LossStrategy.begin_step`),
so gradient accumulation sees one weighting per optimizer step. Weights sum to the number of tasks
``K`` (their mean is 1), so the loss has the scale of ``sum`` and a learning rate and
``max_grad_norm`` tuned for ``sum`` carry over; the papers' weights sum to 1.

* ``rlw`` — Random Loss Weighting (Lin et al. 2022, "Reasonable Effectiveness of Random Weighting:
  A Litmus Test for Multi-Task Learning"): every step ``w = K · softmax(z)``, ``z ~ N(0, I)``.
  A strong baseline for loss balancers. The draw is seeded by ``(seed, step)``: every process draws
  the same weights, and a resumed run the same as an uninterrupted one.
* ``dwa`` — Dynamic Weight Average (Liu et al. 2019, "End-to-End Multi-Task Learning with
  Attention"): ``w_i = K · softmax(r / T)_i``, ``r_i = L̄_i(t-1) / L̄_i(t-2)``, where ``L̄_i(t)`` is
  task i's mean loss over window ``t`` of ``window`` optimizer steps (the paper's windows are
  epochs). A task whose loss falls slowly gets more weight. Weights are 1 for the first two
  windows. The running sums stay on the device (no host sync) and are averaged over processes at
  each window's end (DDP); they are saved in checkpoints, so ``--resume`` continues them.
* ``uncertainty`` — learned homoscedastic uncertainty (Kendall et al. 2018): ``Σ exp(−sᵢ) Lᵢ + sᵢ``, one
  learned ``sᵢ = log σᵢ²`` per task (a parameter of the strategy, so in the optimizer and checkpoints). Its weights
  are not scaled to sum ``K``. The logged weights are ``exp(−sᵢ)`` as the step trained with them, read when the step
  begins (the optimizer step moves ``s`` before the loop logs).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mtcore.errors import ConfigError
from mtcore.train.losses import LossStrategy, _finite


class RandomWeightLoss(LossStrategy):
    """Random Loss Weighting (Lin et al. 2022): ``sum_i w_i L_i`` with ``w = K * softmax(z)``, ``z ~ N(0, I)`` drawn every step."""

    batches = "all"
    uses_weights = False
    logs_weights = True

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ConfigError(f"loss strategy 'rlw': option 'seed' must be an integer, got {seed!r}")
        self.seed = int(seed)
        self.current = dict.fromkeys(self.task_ids, 1.0)

    def begin_step(self, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(step))
        drawn = torch.softmax(torch.randn(len(self.task_ids), generator=generator, dtype=torch.float64), 0) * len(self.task_ids)
        self.current = dict(zip(self.task_ids, drawn.tolist()))  # a CPU tensor: no device sync

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        return self.current[task_id] * loss

    def task_weights(self) -> dict[str, float]:
        return dict(self.current)


class DynamicWeightAverageLoss(LossStrategy):
    """Dynamic Weight Average (Liu et al. 2019): ``w = K * softmax(r / T)``, ``r_i`` the ratio of task i's
    mean loss over the last two windows of ``window`` steps (see the module docstring)."""

    batches = "all"
    uses_weights = False
    logs_weights = True

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, temperature: float = 2.0,
                 window: int = 100, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not math.isfinite(temperature) or temperature <= 0:
            raise ConfigError(f"loss strategy 'dwa': option 'temperature' must be a number > 0 (the paper uses 2), got {temperature!r}")
        if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1:
            raise ConfigError(f"loss strategy 'dwa': option 'window' (optimizer steps per loss average) must be an integer >= 1, got {window!r}")
        self.temperature, self.window = float(temperature), int(window)
        k = len(self.task_ids)
        # running sums of the current window, the means of the last two windows, the weights in use
        self.register_buffer("loss_sums", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("loss_counts", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(2, k, dtype=torch.float64))  # [window t-2, window t-1]
        self.register_buffer("windows_done", torch.zeros((), dtype=torch.int64))
        self.register_buffer("weights_now", torch.ones(k, dtype=torch.float64))
        self._index = {task: i for i, task in enumerate(self.task_ids)}

    def begin_step(self, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """At the first step of every window (steps 1, 1 + window, ...) after the first, close the last window."""
        if step <= 1 or (step - 1) % self.window:
            return
        sums, counts = self.loss_sums, self.loss_counts
        if reduce_mean is not None:  # every process closes the window at the same step: the same weights everywhere
            sums, counts = reduce_mean(sums.clone()), reduce_mean(counts.clone())
        mean = torch.where(counts > 0, sums / counts.clamp(min=1), self.means[1])
        self.means.copy_(torch.stack([self.means[1], mean]))
        self.windows_done += 1
        ratio = self.means[1] / self.means[0].clamp(min=1e-12)
        balanced = torch.softmax(ratio / self.temperature, 0) * len(self.task_ids)
        ready = self.windows_done >= 2  # a device flag: torch.where keeps it off the host
        self.weights_now.copy_(torch.where(ready, balanced, torch.ones_like(balanced)))
        self.loss_sums.zero_()
        self.loss_counts.zero_()

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        i = self._index[task_id]
        with torch.no_grad():
            value = loss.detach().double()
            finite = torch.isfinite(value)
            self.loss_sums[i] += torch.where(finite, value, torch.zeros_like(value))
            self.loss_counts[i] += finite.double()
        return self.weights_now[i].to(loss.dtype) * loss

    def task_weights(self) -> dict[str, float]:
        return dict(zip(self.task_ids, self.weights_now.float().tolist()))


class UncertaintyLoss(LossStrategy):
    """Learned homoscedastic uncertainty (Kendall et al. 2018): ``sum_i exp(-s_i) L_i + s_i``.

    ``s_i = log sigma_i^2`` is one learned scalar per task (initial value ``init``, default 0).
    """

    batches = "all"
    uses_weights = False
    logs_weights = True

    def __init__(self, task_ids: Sequence[str], weights: Mapping[str, float] | None = None, init: float = 0.0, **options: Any) -> None:
        super().__init__(task_ids, weights, **options)
        _finite(init, "uncertainty", "init", "the initial log-variance s_i")
        self.log_variances = nn.Parameter(torch.full((len(self.task_ids),), float(init)))
        self._applied: torch.Tensor | None = None  # exp(-s) as the current step trains with it (on the device)

    def begin_step(self, step: int, reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self._applied = torch.exp(-self.log_variances.detach().float())  # no host read: logged at logging steps only

    def term(self, task_id: str, loss: torch.Tensor) -> torch.Tensor:
        s = self.log_variances[self.task_ids.index(task_id)]
        return torch.exp(-s) * loss + s

    def task_weights(self) -> dict[str, float]:
        """``exp(-s)`` as the last step trained with it (a loop that never calls :meth:`begin_step`: as it is now)."""
        applied = self._applied if self._applied is not None else torch.exp(-self.log_variances.detach().float())
        return dict(zip(self.task_ids, applied.tolist()))
