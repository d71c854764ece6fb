"""``Head.resolved_options()``: what a head settles itself is recorded in the manifest; what it returns is checked when
the head is added (not after a whole training, at the save), and a given option left at None keeps the head's own."""

from __future__ import annotations

import json

import pytest
import torch

from mtcore.errors import PluginError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import HeadSpec
from mtcore.model.heads.classification import ClassificationHead


class Settles(ClassificationHead):
    returned: object = None

    def resolved_options(self):
        return type(self).returned


@pytest.mark.parametrize("returned, said", [
    ({"temperature": torch.tensor(0.1)}, r"gave temperature=tensor\(0.1000\), not a JSON value"),
    ({"temperature": float("nan")}, r"gave temperature=nan, not a JSON value"),
    ([("temperature", 0.1)], r"returned list .*; it returns \{option name: JSON value\}"),
])
def test_what_a_head_resolves_is_checked_when_it_is_added(tiny_encoders, returned, said):
    Settles.returned = returned
    with pytest.raises(PluginError, match=r"^head .*Settles: resolved_options\(\) " + said):
        MultitaskModel(str(tiny_encoders["bert"]), {"demo:t": HeadSpec("settles", 2, kind="text_classification", module=Settles(32, 2))})


def test_a_masked_lm_option_given_as_none_records_what_the_head_uses(tiny_encoders, tmp_path):
    from mtcore import Task

    task = Task(name="lm", kind="masked_lm", plugin="user", head_options={"activation": None, "layer_norm_eps": None})
    model = MultitaskModel(str(tiny_encoders["bert"]), [task])
    model.save_pretrained(tmp_path / "m")
    options = json.loads((tmp_path / "m" / "mtcore.json").read_text())["tasks"]["user:lm"]["head_options"]
    assert options == {"activation": "gelu", "layer_norm_eps": pytest.approx(model.heads["user:lm"].layer_norm.eps)}
