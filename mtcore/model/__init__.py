"""The shared-encoder multitask model, its heads, and safe save/load.

Names are resolved lazily (PEP 562) so that ``mtcore.model.manifest`` can be imported without
torch or transformers.
"""

from __future__ import annotations

from mtcore.refs import lazy_getattr

_LAZY = {
    "MultitaskModel": "mtcore.model.multitask_model",
    "MultitaskOutput": "mtcore.model.multitask_model",
    "Head": "mtcore.model.heads.base",
    "HeadOutput": "mtcore.model.heads.base",
    "HeadSpec": "mtcore.model.heads.base",
    "task_info": "mtcore.model.manifest",
    "task_from_info": "mtcore.model.manifest",
    "parameter_groups": "mtcore.model.param_groups",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = list(_LAZY)
