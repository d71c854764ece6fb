"""docs/writing-plugins.md lists every option of mtcore's heads: the table must follow their constructors."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md"
HEADS = {
    "classification": "mtcore.model.heads.classification:ClassificationHead",
    "mlp": "mtcore.model.heads.classification:MLPHead",
    "regression": "mtcore.model.heads.regression:RegressionHead",
    "multi_label": "mtcore.model.heads.multi_label:MultiLabelHead",
    "multiple_choice": "mtcore.model.heads.multiple_choice:MultipleChoiceHead",
    "token_classification": "mtcore.model.heads.token_classification:TokenClassificationHead",
    "extractive_qa": "mtcore.model.heads.extractive_qa:ExtractiveQAHead",
    "masked_lm": "mtcore.model.heads.masked_lm:MaskedLMHead",
}


def _rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*\| `(\w+)` \| [^|]+ \| (.+) \|\s*$", line)
        if match and match.group(1) in HEADS:
            rows[match.group(1)] = match.group(2)
    return rows


@pytest.mark.parametrize("name", sorted(HEADS))
def test_the_heads_table_names_every_option_of_the_head(name):
    import importlib

    module, _, attr = HEADS[name].partition(":")
    head = getattr(importlib.import_module(module), attr)
    options = {p for p in inspect.signature(head).parameters if p not in ("hidden_size", "num_labels")}
    rows = _rows()
    text = rows[name] if rows[name] != "as `regression`" else rows["regression"]
    listed = set(re.findall(r"`(\w+)`", text)) - set(HEADS)
    assert listed == options, f"docs/writing-plugins.md, head {name!r}: lists {sorted(listed)}, the head takes {sorted(options)}"
