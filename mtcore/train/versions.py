"""The software a run trained with, for its ``start`` event: Python, mtcore and its libraries, the installed mtcore plugins
(distribution and version) and, on a GPU, the card and CUDA. A resumed run writes its own ``start`` event, so a run
continued under other versions shows both."""

from __future__ import annotations

import platform
from typing import Any

#: The libraries whose versions decide a run's numbers.
LIBRARIES = ("mtcore", "torch", "transformers", "datasets", "accelerate", "tokenizers", "safetensors", "peft")


def run_versions(device: Any = None) -> dict[str, Any]:
    """``{"python": ..., "mtcore": ..., "torch": ..., ..., "plugins": {distribution: version}, "cuda": ..., "gpu": ...}``;
    a library that is not installed is left out."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, Any] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    found["plugins"] = _plugins()
    if getattr(device, "type", None) == "cuda":
        import torch

        found["cuda"] = torch.version.cuda
        found["gpu"] = torch.cuda.get_device_name(device)
    return found


def _plugins() -> dict[str, str]:
    """The installed mtcore plugins, also one that failed to load (mtcore itself left out): distribution -> version."""
    from mtcore.plugins import load_registry

    try:
        plugins = load_registry(warn=False).plugins
    except Exception:  # noqa: BLE001 - the run has its registry already; a record must not stop it
        return {}
    return {p.distribution: p.version for p in plugins if not p.builtin}
