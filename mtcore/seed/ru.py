"""Russian SuperGLUE preprocessing (was ``src.ru``): provided by the ``mt-russian-superglue`` plugin.

``preprocess_danetqa`` maps a DaNetQA row to ``text`` (question) / ``text_pair`` (passage);
``preprocess_parus`` builds PARus's multiple-choice columns.
"""

from __future__ import annotations

try:
    from mt_russian_superglue import preprocess_danetqa, preprocess_parus
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    if exc.name != "mt_russian_superglue":
        raise
    raise ModuleNotFoundError(
        "mtcore.seed.ru needs the mt-russian-superglue plugin: pip install mt-russian-superglue "
        "(or pip install -e plugins/mt-russian-superglue in a checkout)", name=exc.name) from None

__all__ = ["preprocess_danetqa", "preprocess_parus"]
