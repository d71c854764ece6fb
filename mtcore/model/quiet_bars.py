"""Silence ``transformers``' progress bars for one call, and leave them as they were after it.

``transformers.utils.logging.disable_progress_bar()`` turns off ``huggingface_hub``'s bars too, for the whole process:
a notebook's own downloads after loading or saving a model showed no progress. mtcore's loads and saves use
:func:`transformers_bars_off` (a context manager, or a decorator) instead, which puts both switches back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transformers_bars_off() -> Iterator[None]:
    """``transformers``' (and so ``huggingface_hub``'s) progress bars off inside, as they were outside."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    transformers_on, hub_off = hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if transformers_on:
            hf_logging.enable_progress_bar()  # turns the hub's on as well
        if hub_off:
            disable_progress_bars()
        else:
            enable_progress_bars()
