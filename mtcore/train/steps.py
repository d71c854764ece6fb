"""The run's batch sampler and its length: epochs, ``schedule.max_steps`` and the steps they make."""

from __future__ import annotations

import math
from typing import Any

from mtcore.train.config import TrainConfig
from mtcore.train.validate import RunPlan


def build_sampler(plan: RunPlan, train_data: dict[str, Any], accelerator: Any) -> Any:
    from mtcore.sampling.batch_sampler import MultitaskBatchSampler

    config = plan.config
    batch_sizes = {p.id: p.entry.batch_size for p in plan.tasks if p.entry.batch_size}
    num_epochs = max(1, math.ceil(config.schedule.epochs or 1))

    def build(epochs: int) -> Any:
        return MultitaskBatchSampler(
            train_data, "train", config.batching.batch_size, sampler=plan.sampler_cls, sampler_options=plan.sampler_options,
            mode=plan.mode, stop=config.sampler.stop, group_by_length=config.batching.group_by_length, token_budget=config.batching.max_tokens,
            max_rows=config.batching.max_rows, batch_sizes=batch_sizes, seed=config.seed, num_epochs=epochs,
            rank=accelerator.process_index, world_size=accelerator.num_processes,
        )

    sampler = build(num_epochs)
    if config.schedule.max_steps is not None:  # the epochs max_steps covers (annealed sampling spans the run's epochs,
        tried = {sampler.num_epochs}  # and the epochs' lengths depend on their number: settle on a fixed point)
        for _ in range(8):
            covered = epochs_covering(sampler, config.schedule.max_steps * config.optimizer.gradient_accumulation_steps)
            if covered == sampler.num_epochs:
                break
            if covered in tried:  # no fixed point (E epochs cover the steps only as E + 1, and E + 1 as E): the smaller E,
                # whose last epoch's odds the steps past it keep, so the run ends on the annealing's last odds
                smaller = min(covered, sampler.num_epochs)
                sampler = sampler if smaller == sampler.num_epochs else build(smaller)
                break
            tried.add(covered)
            sampler = build(covered)
    return sampler


#: Epochs :func:`epochs_covering` counts one by one; a run longer than that is extrapolated from their mean length.
COUNTED_EPOCHS = 200


def epochs_covering(sampler: Any, micro_steps: int) -> int:
    """How many epochs of ``sampler`` it takes to draw ``micro_steps`` batches: counted epoch by epoch (an epoch's
    length can change with its shuffle and its sampling odds) for the first :data:`COUNTED_EPOCHS`, then estimated
    from their mean, so that a ``schedule.max_steps`` far longer than an epoch (a million steps over an
    epoch of 24) costs no more than those epochs to plan."""
    epochs, drawn = 0, 0
    while drawn < micro_steps and epochs < COUNTED_EPOCHS:
        drawn += max(1, sampler.steps_in_epoch(epochs))
        epochs += 1
    if drawn < micro_steps:
        epochs += -(-(micro_steps - drawn) * epochs // drawn)
    return max(1, epochs)


def run_steps(sampler: Any, config: TrainConfig) -> tuple[int, int]:
    """``(optimizer steps, batches in the last step)``: ``gradient_accumulation_steps`` batches a step, and with
    ``schedule.epochs`` a last step of the batches left over (60 batches at 8 a step: 8 steps, the last of 4)."""
    accumulation = config.optimizer.gradient_accumulation_steps
    if config.schedule.max_steps is not None:
        return int(config.schedule.max_steps), accumulation
    epochs = float(config.schedule.epochs or 1)
    full = int(epochs)
    micro = sum(sampler.steps_in_epoch(e) for e in range(full))
    if epochs > full:
        micro += int(round((epochs - full) * sampler.steps_in_epoch(full)))
    micro = max(1, micro)
    steps = -(-micro // accumulation)
    return steps, micro - (steps - 1) * accumulation


def warmup_steps(config: Any, total_steps: int) -> int:
    """The warmup steps of a schedule (``schedule.warmup_steps``, or ``warmup_ratio`` of ``total_steps``, rounded up)."""
    if config.warmup_steps is not None:
        return int(config.warmup_steps)
    if config.warmup_ratio is not None:
        return int(math.ceil(config.warmup_ratio * total_steps))
    return 0


def check_frozen_steps(config: TrainConfig, total_steps: int) -> None:
    """``encoder.freeze_encoder_steps`` must leave the encoder a step at a rate above 0: its warmup starts again once it
    is unfrozen, and a warmup's first step has rate 0."""
    frozen = config.encoder.freeze_encoder_steps
    left = total_steps - frozen
    if frozen and (left < 1 or left < 2 and warmup_steps(config.schedule, left) > 0):
        from mtcore.errors import ConfigError

        raise ConfigError(f"config key 'encoder.freeze_encoder_steps': {frozen}, but the run has {total_steps} step(s), so the encoder "
                          f"would never train{' (its warmup starts again at rate 0)' if left >= 1 else ''}; give fewer, or "
                          "encoder.freeze_encoder: true to train the heads alone")


def run_batches(steps: int, last_step_batches: int, config: TrainConfig) -> int:
    """The batches a run of ``steps`` optimizer steps draws (see :func:`run_steps`)."""
    return (steps - 1) * config.optimizer.gradient_accumulation_steps + last_step_batches


def long_epoch_note(sampler: Any, micro_steps: int | None = None) -> str | None:
    """A note on an epoch that repeats data. Mode ``"all"``: :func:`repeated_tasks_note` (``micro_steps``: the run's
    batches, when it ends before an epoch does). Mode ``"single"``:
    when an epoch (``stop="largest"``: until every task has been through its batches) lasts over twice
    the batches it holds because a smaller task is drawn rarely (3 rows under ``proportional``, a small fixed
    weight). Under ``uniform`` or ``temperature`` the largest task sets the pace, as intended: no note."""
    if getattr(sampler, "mode", None) == "all":
        return repeated_tasks_note(sampler, micro_steps)
    if getattr(sampler, "stop", None) != "largest":
        return None
    if getattr(sampler, "mode", None) != "single":
        return None
    batches = sampler.batches_in_epoch()
    steps, held = sampler.steps_in_epoch(sampler.epoch), sum(batches.values())
    if steps <= 2 * held:
        return None
    try:
        odds = dict(zip(sampler.tasks, sampler.sampler.normalized_probabilities().tolist()))
    except NotImplementedError:
        return None
    drawn = {task: p for task, p in odds.items() if p > 0}
    slowest = max(drawn, key=lambda task: batches[task] / drawn[task])
    if batches[slowest] == max(batches[task] for task in drawn):  # the largest task sets the pace: what "largest" means
        return None
    shorter = [f"{name} {length}" for name, length in _other_samplers(sampler).items() if length < steps]
    instead = f", or a sampler whose epoch is shorter here ({', '.join(shorter)} batches)" if shorter else ""
    return (f"an epoch draws {steps} batches for {held} batches of data: it lasts until every task has been through its "
            f"batches, and {slowest!r} ({batches[slowest]} batch(es)) is drawn at p={drawn[slowest]:.2g}; set "
            f"schedule.max_steps{instead}")


def _other_samplers(sampler: Any) -> dict[str, int]:
    """The batches of this epoch under mtcore's ``temperature`` and ``uniform`` samplers (48 tasks: uniform's epoch was
    longer than proportional's, which the note had named as a fix); none that cannot be counted."""
    from mtcore.plugins import get_component
    from mtcore.sampling.schedule import count_steps

    lengths = {}
    for name in ("temperature", "uniform"):
        if getattr(sampler.sampler, "name", None) == name:
            continue
        try:
            other = get_component("sampler", f"mtcore:{name}")(sampler.sampler.sizes, seed=sampler.seed)
            other.set_epoch(sampler.epoch)
            lengths[name] = count_steps(sampler._plans(sampler.epoch), other, "single", "largest")
        except Exception:  # noqa: BLE001 - advice only
            continue
    return lengths


#: A task gone through this many times or more in one epoch of mode "all" gets named in a note.
REPEAT_NOTE_AT = 2.0


def repeated_tasks_note(sampler: Any, micro_steps: int | None = None) -> str | None:
    """A note when, in mode ``"all"``, an epoch (``stop="largest"``: as long as the largest task; ``stop=N``: N steps)
    goes through a smaller task's batches :data:`REPEAT_NOTE_AT` times or more: it is recycled silently. A run of
    ``micro_steps`` batches that ends sooner counts the repeats within them."""
    stop = getattr(sampler, "stop", None)
    if getattr(sampler, "mode", None) != "all" or stop == "smallest":
        return None
    batches, steps = sampler.batches_in_epoch(), sampler.steps_in_epoch(sampler.epoch)
    seen = min(steps, micro_steps) if micro_steps else steps
    repeats = sorted(((seen / n, task) for task, n in batches.items() if n and seen / n >= REPEAT_NOTE_AT), reverse=True)
    if not repeats:
        return None
    largest = max(batches, key=lambda task: batches[task])
    named = [f"{task!r} ({batches[task]} batch(es)) {_times(factor)}" for factor, task in repeats[:3]]
    more = f" and {len(repeats) - 3} more task(s)" if len(repeats) > 3 else ""
    length = f", as long as the largest task {largest!r}," if stop == "largest" else f" (sampler.stop: {stop}),"
    where = "per epoch" if seen == steps else f"in the run's {seen} batches"
    return (f"an epoch of mode 'all' lasts {steps} batches{length} so smaller tasks repeat: "
            f"{', '.join(named)}{more} {where}; set sampler.stop: smallest (an epoch ends when the smallest task does), "
            "or train fewer epochs")


def _times(factor: float) -> str:
    return f"~{factor:.0f} times" if factor >= 10 else f"{factor:.1f} times"
