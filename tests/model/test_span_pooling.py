"""``pooling: spans``: heads pool the mean of each of a row's spans, concatenated (jiant's span classification)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtcore.data.collate import Collator
from mtcore.errors import ConfigError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import Head, HeadOutput, HeadSpec
from mtcore.model.heads.pooling import pool_spans

ROWS = [{"input_ids": [2, 7, 8, 9, 10, 3], "token_type_ids": [0] * 6, "span_tokens": [[1, 2], [4, 4]], "labels": 1},
        {"input_ids": [2, 11, 12, 3], "token_type_ids": [0] * 4, "span_tokens": [[3, 3], [-1, -1]], "labels": 0},
        {"input_ids": [2, 9, 3], "token_type_ids": [0] * 3, "span_tokens": [[-2, -2], [1, 1]], "labels": 0}]


def test_each_span_pools_to_the_mean_of_its_tokens_and_a_missing_one_to_zeros():
    hidden = torch.randn(3, 6, 4)
    spans = torch.tensor([[[1, 2], [4, 4]], [[3, 3], [-1, -1]], [[-2, -2], [0, 5]]])
    pooled = pool_spans(hidden, spans)
    assert pooled.shape == (3, 8)
    expected = [torch.cat([hidden[0, 1:3].mean(0), hidden[0, 4]]), torch.cat([hidden[1, 3], torch.zeros(4)]),
                torch.cat([torch.zeros(4), hidden[2].mean(0)])]
    assert torch.allclose(pooled, torch.stack(expected), atol=1e-6)


@pytest.mark.parametrize(("name", "kind", "options", "layer"), [
    ("classification", "text_classification", {}, "classifier"),
    ("mlp", "pair_classification", {"num_layers": 2}, "layers.0"),
    ("regression", "regression", {}, "regressor"),
    ("multi_label", "multi_label", {"num_layers": 2, "linear_hidden_size": 5}, "hidden.0"),
])
def test_a_spans_head_takes_num_spans_times_the_hidden_size(tiny_encoders, name, kind, options, layer):
    spec = HeadSpec(name, 1 if kind == "regression" else 2, kind=kind, labels=() if kind == "regression" else ("a", "b"),
                    options={"pooling": "spans", "num_spans": 3, **options})
    model = MultitaskModel(tiny_encoders["bert"], {"demo:t": spec})
    hidden = model.encoder.config.hidden_size
    assert model.heads["demo:t"].get_submodule(layer).in_features == 3 * hidden
    if name == "mlp":  # the inner layer keeps the encoder's width
        assert model.heads["demo:t"].layers[-1].in_features == hidden


@pytest.mark.parametrize(("name", "options", "message"), [
    ("classification", {"pooling": "cls", "num_spans": 2}, "num_spans is for pooling 'spans'"),
    ("classification", {"pooling": "spans", "num_spans": 0}, "num_spans=0 must be a whole number of at least 1"),
    ("multiple_choice", {"pooling": "spans"}, "a multiple-choice head pools each choice"),
])
def test_span_options_that_cannot_work_are_refused_when_the_head_is_built(tiny_encoders, name, options, message):
    kind = "multiple_choice" if name == "multiple_choice" else "text_classification"
    spec = HeadSpec(name, 1 if kind == "multiple_choice" else 2, kind=kind, labels=() if kind == "multiple_choice" else ("a", "b"),
                    options=options)
    with pytest.raises(ConfigError, match=message):
        MultitaskModel(tiny_encoders["bert"], {"demo:t": spec})


def test_padding_free_and_saved_spans_models_give_the_padded_logits(tiny_encoders, tmp_path):
    spec = HeadSpec("mlp", 2, kind="text_classification", labels=("a", "b"), options={"pooling": "spans"})
    model = MultitaskModel(tiny_encoders["bert"], {"demo:t": spec}, padding_free=True).eval()
    padded = Collator(0, "text_classification")(ROWS)
    packed = Collator(0, "text_classification", padding_free=True)(ROWS)
    assert tuple(padded["span_tokens"].shape) == (3, 2, 2)
    with torch.no_grad():
        logits = model("demo:t", **padded).logits
        assert torch.allclose(model("demo:t", **packed).logits, logits, atol=1e-5)
        model.save_pretrained(tmp_path / "m")
        loaded = MultitaskModel.from_pretrained(tmp_path / "m")
        assert torch.allclose(loaded("demo:t", **padded).logits, logits, atol=1e-6)
        without = {k: v for k, v in padded.items() if k != "span_tokens"}
        with pytest.raises(ConfigError, match=r"task 'demo:t': its head pools spans of each row, and the batch has none"):
            loaded("demo:t", **without)


class OldHead(Head):
    """A plugin's head written before spans: its forward has no ``spans``."""

    def __init__(self, hidden_size: int, num_labels: int) -> None:
        super().__init__(hidden_size, num_labels)
        self.linear = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states, attention_mask, *, pooler_output=None, labels=None, num_choices=None):
        return HeadOutput(logits=self.linear(hidden_states[:, 0]))


class SpanModule(nn.Module):
    """Any module that names ``spans`` receives them."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * hidden_size, 2)

    def forward(self, hidden_states, attention_mask, spans=None):
        return self.linear(pool_spans(hidden_states, spans))


def test_heads_get_spans_when_their_forward_takes_them(tiny_encoders):
    hidden = 32
    model = MultitaskModel(tiny_encoders["bert"], {"demo:old": OldHead(hidden, 2), "demo:new": SpanModule(hidden)}).eval()
    batch = Collator(0, "text_classification")(ROWS)
    with torch.no_grad():
        assert model("demo:old", **batch).logits.shape == (3, 2)  # the batch's spans are not forced on it
        out = model("demo:new", **batch)
    assert out.logits.shape == (3, 2) and out.loss is not None


def test_span_pooling_max_and_endpoints_read_each_span_as_jiants_extractors():


    hidden = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3) * torch.tensor([1.0, -1.0, 0.5])
    spans = torch.tensor([[[1, 3], [4, 4]], [[0, 1], [-1, -1]]])
    mean, largest, ends = (pool_spans(hidden, spans, how) for how in ("mean", "max", "endpoints"))
    assert mean.shape == largest.shape == (2, 6) and ends.shape == (2, 12)
    for row in range(2):
        for k, (first, last) in enumerate(spans[row].tolist()):
            if first < 0:  # no span: zeros, whatever the extractor
                assert not mean[row, 3 * k:3 * k + 3].any() and not largest[row, 3 * k:3 * k + 3].any() and not ends[row, 6 * k:6 * k + 6].any()
                continue
            tokens = hidden[row, first:last + 1]
            assert torch.equal(largest[row, 3 * k:3 * k + 3], tokens.max(0).values)
            assert torch.allclose(mean[row, 3 * k:3 * k + 3], tokens.mean(0))
            assert torch.equal(ends[row, 6 * k:6 * k + 6], torch.cat([hidden[row, first], hidden[row, last]]))


@pytest.mark.parametrize("head", ["classification", "mlp", "regression", "multi_label"])
def test_span_pooling_is_a_head_option_of_the_span_heads(head):
    from mtcore.errors import UnknownNameError
    from mtcore.plugins import load_registry

    cls = load_registry().component("head", head).load()
    built = cls(hidden_size=8, num_labels=2, pooling="spans", num_spans=3, span_pooling="endpoints")
    out = built(torch.randn(2, 6, 8), torch.ones(2, 6), spans=torch.tensor([[[1, 2], [3, 3], [-1, -1]]] * 2))
    assert out.logits.shape[0] == 2 and built.pooler.width(8) == 8 * 3 * 2
    with pytest.raises(ConfigError, match="span_pooling is for pooling 'spans'"):
        cls(hidden_size=8, num_labels=2, span_pooling="max")
    with pytest.raises(UnknownNameError, match="did you mean 'endpoints'"):
        cls(hidden_size=8, num_labels=2, pooling="spans", span_pooling="endpoint")
