"""What a sampler hands the training loop: one task's collated tensors and facts about them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class BatchData(dict):
    """Model inputs by name (``input_ids``, ``attention_mask``, optional ``token_type_ids``, ``labels``).

    A plain dict, so ``model(task, **batch.data)`` works. :meth:`to` moves the tensors *in place*
    and returns the same object: the seed's loop calls ``batch.data.to(device)`` without assigning.
    ``no_padding`` is true when the collator padded no position (every row as long as the batch), known on
    the host: :func:`model_inputs` then leaves the all-ones ``attention_mask`` out.
    """

    no_padding: bool = False

    def to(self, device: Any, non_blocking: bool = False) -> BatchData:
        for key, value in self.items():
            if hasattr(value, "to"):
                self[key] = value.to(device, non_blocking=non_blocking)
        return self

    def pin_memory(self) -> BatchData:
        """Pin the tensors still on the CPU (what ``DataLoader(pin_memory=True)`` calls on custom batches); tensors already on
        a GPU (a strategy's forward before the step moved them) stay as they are: only host memory can be pinned."""
        for key, value in self.items():
            if hasattr(value, "pin_memory") and getattr(getattr(value, "device", None), "type", "cpu") == "cpu":
                self[key] = value.pin_memory()
        return self


@dataclass
class Batch:
    """One task's batch: ``name`` is the task id, ``size`` the examples, ``num_tokens`` the real (unpadded) tokens.

    ``duplicate``: under DDP, a copy of the batch a lower rank reads at the same step (its task's cycle has fewer
    batches than there are ranks). The copy keeps every rank's forward and backward in step; the training loop
    gives it no weight and counts none of its rows or tokens."""

    name: str
    data: BatchData
    size: int
    num_tokens: int
    idx: list | None = None
    duplicate: bool = False

    def to(self, device: Any, non_blocking: bool = False) -> Batch:
        """Move the tensors in place; returns self."""
        self.data.to(device, non_blocking=non_blocking)
        return self


def model_inputs(data: Any) -> Any:
    """What the training loop passes to the model: ``data`` without ``attention_mask`` when no position is padding.

    transformers' SDPA encoders otherwise check the mask's values on the GPU to skip it (one host sync per step,
    ``masking_utils._ignore_bidirectional_mask_sdpa``); without it they skip it at once, with the same result, and SDPA
    runs its FlashAttention kernel. Anything but a :class:`BatchData` flagged ``no_padding`` (a plugin collator's own
    batch type, say) is passed on as it is.
    """
    if not getattr(data, "no_padding", False) or not isinstance(data, BatchData):
        return data
    return {key: value for key, value in data.items() if key != "attention_mask"}
