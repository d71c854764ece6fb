"""flash-attn-4's kernels in the shape torch's FA4 glue calls them (``encoder.options.flash_attention: FA4``).

torch (2.11 to 2.13, ``torch.nn.attention._fa4``) unpacks ``flash_attn.cute.interface._flash_attn_fwd`` into
``(out, lse)`` and ``_flash_attn_bwd`` into ``(dq, dk, dv)``. flash-attn-4 4.0.0b36 returns five values from the
forward (``out, lse`` and three only its other features use), so torch's glue fails with "too many values to unpack"
on the first attention call (seen on an H100, 2026-11-27). This module is what :mod:`mtcore.model.flash_impl` registers
as FA4's module instead: the same kernels, the first values passed on. It imports flash-attn-4 when loaded, which
torch does only when FA4 is activated.
"""

from __future__ import annotations

from typing import Any

from flash_attn.cute.interface import _flash_attn_bwd as _kernels_backward
from flash_attn.cute.interface import _flash_attn_fwd as _kernels_forward


def _flash_attn_fwd(*args: Any, **kwargs: Any) -> Any:
    result = _kernels_forward(*args, **kwargs)
    return tuple(result[:2]) if isinstance(result, tuple) else result


def _flash_attn_bwd(*args: Any, **kwargs: Any) -> Any:
    result = _kernels_backward(*args, **kwargs)
    return tuple(result[:3]) if isinstance(result, tuple) else result
