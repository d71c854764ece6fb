"""The HeadlineCause left/right swap, a label-preserving augmentation (pure Python).

Swapping the two headlines of a HeadlineCause pair gives another valid example whose label is
the mirror of the original: ``left_right`` <-> ``right_left`` in the simple scheme,
``left_right_cause`` <-> ``right_left_cause`` and ``left_right_refute`` <-> ``right_left_refute``
in the full one; the symmetric labels (not_cause, bad, same, rel) stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SIMPLE_LABELS = ("not_cause", "left_right", "right_left")
FULL_LABELS = ("bad", "same", "rel", "left_right_cause", "right_left_cause", "left_right_refute", "right_left_refute")
LABELS = {"simple": SIMPLE_LABELS, "full": FULL_LABELS}
#: Class id -> class id of the swapped pair (ids missing here map to themselves).
SWAPPED_IDS = {"simple": {1: 2, 2: 1}, "full": {3: 4, 4: 3, 5: 6, 6: 5}}


def swap_label(label: Any, scheme: str) -> Any:
    """The label of the swapped pair, in the same form (class id or name) as ``label``."""
    mapping = SWAPPED_IDS[scheme]
    if isinstance(label, str):
        names = LABELS[scheme]
        if label not in names:
            raise ValueError(f"unknown HeadlineCause {scheme} label {label!r}; expected one of {', '.join(names)}")
        return names[mapping.get(names.index(label), names.index(label))]
    if label is None or isinstance(label, bool):
        return label
    return mapping.get(int(label), int(label)) if int(label) >= 0 else label


def swap_headlines(row: Mapping[str, Any], scheme: str) -> dict[str, Any]:
    """``row`` with every ``left_*`` / ``right_*`` field swapped and the label mirrored.

    ``result`` (the text label of the raw files) is mirrored too; ``id`` gets a ``:swap`` suffix
    when it is a string, so the two copies stay distinguishable.
    """
    swapped = dict(row)
    for key in row:
        if key.startswith("left_"):
            other = "right_" + key[len("left_"):]
            if other in row:
                swapped[key], swapped[other] = row[other], row[key]
    if "label" in row:
        swapped["label"] = swap_label(row["label"], scheme)
    if isinstance(row.get("result"), str) and row["result"] in LABELS[scheme]:
        swapped["result"] = swap_label(row["result"], scheme)
    if isinstance(row.get("id"), str):
        swapped["id"] = row["id"] + ":swap"
    return swapped
