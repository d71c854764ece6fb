"""Task heads: the :class:`Head` contract and mtcore's built-in heads.

Built-in heads are registered by name in :mod:`mtcore.builtin_plugin`; plugins add theirs
through the ``mt_register_heads`` hook.
"""

from mtcore.model.heads.base import Head, HeadOutput, HeadSpec
from mtcore.model.heads.pooling import POOLINGS, pool

__all__ = ["Head", "HeadOutput", "HeadSpec", "POOLINGS", "pool"]
