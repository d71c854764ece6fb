"""MultitaskModel across encoder architectures: every head kind, one shared encoder, encoder options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtcore.errors import ConfigError, DataError, UnknownNameError
from mtcore.model import MultitaskModel
from mtcore.model.heads.base import Head, HeadOutput, HeadSpec
from mtcore.task import Task

from mtcore.testing import ARCHITECTURES as ALL_ARCHS


@pytest.fixture(scope="module")
def models(tiny_encoders, heads_for_every_kind):
    """One model with a head of every kind, per architecture (built once per module)."""

    class _Cache(dict):
        def __missing__(self, arch):
            self[arch] = MultitaskModel(str(tiny_encoders[arch]), heads_for_every_kind)
            return self[arch]

    return _Cache()


def encoder_grad_norm(model: MultitaskModel) -> float:
    return sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_every_head_trains_and_its_gradients_reach_the_encoder(arch, models, heads_for_every_kind, batch_for):
    model = models[arch]
    model.train()
    for task_id, spec in heads_for_every_kind.items():
        model.zero_grad(set_to_none=True)
        batch = batch_for(spec)
        out = model(task_id, **batch)
        batch_size = batch["labels"].shape[0]
        expected = {"multiple_choice": (batch_size, 2), "token_classification": (batch_size, 9, spec.num_labels)}.get(
            spec.kind, (batch_size, spec.num_labels))
        assert tuple(out.logits.shape) == expected, task_id
        assert out.loss is not None and torch.isfinite(out.loss), task_id
        out.loss.backward()
        assert encoder_grad_norm(model) > 0, f"{arch}: no gradient reached the encoder from {task_id}"
        head_grads = [p.grad for p in model.heads[task_id].parameters() if p.requires_grad]
        assert head_grads and all(g is not None for g in head_grads), task_id
    model.eval()


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_prediction_needs_no_labels_and_eval_is_deterministic(arch, models, heads_for_every_kind, batch_for):
    model = models[arch]
    model.eval()
    for task_id, spec in heads_for_every_kind.items():
        batch = batch_for(spec)
        batch.pop("labels")
        first = model(task_id, **batch)
        assert first.loss is None
        assert torch.equal(first.logits, model(task_id, **batch).logits)


def test_five_tasks_share_one_encoder(tiny_encoders):
    tasks = {f"demo:t{i}": HeadSpec("classification", 2, kind="text_classification") for i in range(5)}
    one = MultitaskModel(str(tiny_encoders["bert"]), {"demo:t0": tasks["demo:t0"]})
    five = MultitaskModel(str(tiny_encoders["bert"]), tasks)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    encoder_params = count(five.encoder)
    head_params = count(five.heads["demo:t0"])
    assert count(five) == encoder_params + 5 * head_params
    assert count(five) - count(one) == 4 * head_params
    assert head_params < encoder_params / 50
    storages = [p.data_ptr() for p in five.parameters()]
    assert len(storages) == len(set(storages))
    encoder_keys = [k for k in five.state_dict() if k.startswith("encoder.")]
    assert len(encoder_keys) == len(five.encoder.state_dict())
    assert not any(k.startswith("heads.") and ".encoder." in k for k in five.state_dict())


@pytest.mark.parametrize("arch, segments", [("bert", True), ("electra", True), ("deberta-v2", True), ("roberta", False),
                                            ("xlm-roberta", False), ("distilbert", False), ("modernbert", False)])
def test_token_type_ids_reach_only_encoders_that_use_them(arch, segments, models, make_batch):
    model = models[arch]
    model.eval()
    assert model.uses_token_type_ids is segments
    batch = make_batch("pair_classification")
    zeros = model("demo:pair", input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  token_type_ids=torch.zeros_like(batch["input_ids"])).logits
    pairs = model("demo:pair", input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                  token_type_ids=batch["token_type_ids"]).logits
    assert torch.allclose(zeros, pairs) is (not segments)


def test_unknown_task_and_bare_names(models, make_batch):
    model = models["bert"]
    batch = make_batch("pair_classification")
    assert torch.equal(model("pair", **batch).logits, model("demo:pair", **batch).logits)
    with pytest.raises(UnknownNameError, match="did you mean 'demo:pair'"):
        model("demo:pairs", **batch)


def test_multiple_choice_needs_three_dimensional_inputs(models, make_batch):
    batch = make_batch("pair_classification")
    with pytest.raises(DataError, match=r"demo:choice.*\(batch, choices, length\)"):
        models["bert"]("demo:choice", **batch)


def test_unexpected_batch_key_is_named(models, make_batch):
    batch = make_batch("pair_classification")
    with pytest.raises(DataError, match="'length'"):
        models["bert"]("demo:pair", length=torch.tensor([9, 9, 9]), **batch)


def test_tasks_build_their_default_heads_and_keep_their_info(tiny_encoders):
    terra = Task(name="terra", kind="pair_classification", labels=("entailment", "not_entailment"), plugin="rsg")
    parus = Task(name="parus", kind="multiple_choice", plugin="rsg", head_options={"pooling": "mean"})
    model = MultitaskModel(str(tiny_encoders["bert"]), [terra, parus])  # a list of Tasks is keyed by id
    assert list(model.heads) == ["rsg:terra", "rsg:parus"]
    assert type(model.heads["rsg:terra"]).__name__ == "ClassificationHead"
    assert model.heads["rsg:parus"].pooler.pooling == "mean"
    assert model.tasks["rsg:terra"]["labels"] == ["entailment", "not_entailment"]
    assert model.tasks["rsg:parus"]["kind"] == "multiple_choice"


def test_pooler_pooling_needs_an_encoder_with_a_pooler(tiny_encoders, make_batch):
    spec = {"demo:t": HeadSpec("classification", 2, kind="text_classification", options={"pooling": "pooler"})}
    model = MultitaskModel(str(tiny_encoders["bert"]), spec)
    model.train()
    out = model("demo:t", **make_batch("text_classification", num_labels=2))
    out.loss.backward()
    assert model.encoder.pooler.dense.weight.grad is not None
    with pytest.raises(ConfigError, match="has none; use pooling 'cls' or 'mean'"):
        MultitaskModel(str(tiny_encoders["distilbert"]), spec)

    class ReadsPooler(LogitsOnlyHead):  # a custom head: it has no pooling option to change
        uses_pooler = True

    custom = {"demo:t": HeadSpec("", 2, kind="text_classification", module=ReadsPooler(32, 2))}
    with pytest.raises(ConfigError, match=r"^task 'demo:t': head '.*ReadsPooler' reads the encoder's pooler \(uses_pooler\), and "
                                          r"DistilBertModel has none; choose another head, or an encoder with a pooler"):
        MultitaskModel(str(tiny_encoders["distilbert"]), custom)


class AttentionPoolHead(Head):
    """A plugin-style custom head: attention pooling over tokens."""

    def __init__(self, hidden_size: int, num_labels: int, temperature: float = 1.0) -> None:
        super().__init__(hidden_size, num_labels)
        self.score = nn.Linear(hidden_size, 1)
        self.out = nn.Linear(hidden_size, num_labels)
        self.temperature = temperature

    def forward(self, hidden_states, attention_mask, *, pooler_output=None, labels=None, num_choices=None):
        weights = self.score(hidden_states).squeeze(-1).masked_fill(attention_mask == 0, -1e4).softmax(-1)
        logits = self.out((weights.unsqueeze(-1) * hidden_states).sum(1) / self.temperature)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(logits=logits, loss=loss)


class SeedStyleHead(nn.Module):
    """The seed's custom heads took the encoder outputs and labels and returned an HF output."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 2)

    def forward(self, encoder_outputs, labels=None):
        return {"logits": self.linear(encoder_outputs[0][:, 0])}


class PlainHead(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, hidden_states, attention_mask):
        return self.linear(hidden_states[:, 0])


def test_custom_module_heads_from_user_code(tiny_encoders, make_batch):
    model = MultitaskModel(str(tiny_encoders["roberta"]), {
        "user:attn": AttentionPoolHead(32, 3),
        "user:seed": SeedStyleHead(32),
        "user:plain": HeadSpec("", 1, kind="regression", module=PlainHead(32)),
    })
    model.train()
    for task_id, kind in [("user:attn", "text_classification"), ("user:seed", "text_classification"), ("user:plain", "regression")]:
        model.zero_grad(set_to_none=True)
        out = model(task_id, **make_batch(kind, num_labels=2))
        assert out.loss is not None, task_id  # the default loss of the kind when a head gives none
        out.loss.backward()
        assert encoder_grad_norm(model) > 0, task_id


class LogitsOnlyHead(Head):
    """A Head subclass that returns its logits only (``width`` of them)."""

    def __init__(self, hidden_size: int, num_labels: int, width: int | None = None) -> None:
        super().__init__(hidden_size, num_labels)
        self.out = nn.Linear(hidden_size, width or num_labels)

    def forward(self, hidden_states, attention_mask, *, pooler_output=None, labels=None, num_choices=None):
        return self.out(hidden_states[:, 0])


def test_a_head_subclass_giving_no_loss_gets_its_kinds_and_logits_of_another_width_are_named(tiny_encoders, make_batch):
    model = MultitaskModel(str(tiny_encoders["bert"]), {
        "user:plain": HeadSpec("", 2, kind="text_classification", module=LogitsOnlyHead(32, 2)),
        "user:wide": HeadSpec("", 2, kind="text_classification", module=LogitsOnlyHead(32, 2, width=4))})
    model.train()
    out = model("user:plain", **make_batch("text_classification", num_labels=2))
    assert out.loss is not None and out.loss.requires_grad  # was None: "unexpected AttributeError" in the training loop
    with pytest.raises(ConfigError, match=r"^task 'user:wide': head '.*LogitsOnlyHead' returned logits of shape \(\d+, 4\), and the "
                                          r"task has 2 labels: the last dimension must be 2, one score per label$"):
        model("user:wide", **make_batch("text_classification", num_labels=2))


@pytest.fixture
def user_head():
    """Register AttentionPoolHead from user code for one test, then remove it again."""
    from mtcore import plugins

    plugins.register_component("head", "attention_pool", AttentionPoolHead, "attention pooling", kinds=("text_classification",))
    yield "attention_pool"
    for registry in plugins._cache.values():
        registry.components["head"].pop("user:attention_pool", None)


def test_user_registered_head_is_built_by_name(tiny_encoders, user_head, tmp_path, make_batch):
    spec = HeadSpec(user_head, 2, kind="text_classification", options={"temperature": 2.0})
    model = MultitaskModel(str(tiny_encoders["bert"]), {"demo:t": spec})
    assert isinstance(model.heads["demo:t"], AttentionPoolHead) and model.heads["demo:t"].temperature == 2.0
    assert model.tasks["demo:t"]["head_id"] == "user:attention_pool"
    loaded = MultitaskModel.from_pretrained(model.save_pretrained(tmp_path / "m"))
    assert isinstance(loaded.heads["demo:t"], AttentionPoolHead) and loaded.heads["demo:t"].temperature == 2.0
    batch = make_batch("text_classification", num_labels=2)
    assert torch.equal(model("demo:t", **batch).logits, loaded("demo:t", **batch).logits)


@pytest.mark.parametrize("model_type, extra, stays", [
    ("electra", {"embedding_size": 16}, []),  # embeddings_project: between the embeddings and layer 0
    ("deberta-v2", {"relative_attention": True, "pos_att_type": ["p2c", "c2p"], "norm_rel_ebd": "layer_norm"}, []),  # rel_embeddings
    ("modernbert", {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "cls_token_id": 2, "sep_token_id": 1},
     ["final_norm.weight"]),  # after the blocks: not frozen
])
def test_freezing_every_layer_leaves_nothing_that_feeds_them_trainable(model_type, extra, stays):
    from transformers import AutoConfig, AutoModel

    from mtcore.model.encoder import freeze

    config = AutoConfig.for_model(model_type, vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, **extra)
    encoder = AutoModel.from_config(config)
    freeze(encoder, first_layers=2)
    assert [name for name, p in encoder.named_parameters() if p.requires_grad] == stays


def test_freezing_the_whole_encoder_or_its_first_layers(tiny_encoders, make_batch):
    path = str(tiny_encoders["distilbert"])
    spec = {"demo:t": HeadSpec("classification", 2, kind="text_classification")}
    frozen = MultitaskModel(path, spec, freeze_encoder=True)
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    assert all(p.requires_grad for p in frozen.heads.parameters())
    partly = MultitaskModel(path, spec, freeze_layers=1)
    layers = partly.encoder.transformer.layer
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not partly.encoder.get_input_embeddings().weight.requires_grad
    partly.train()
    partly("demo:t", **make_batch("text_classification", num_labels=2)).loss.backward()
    assert layers[0].attention.q_lin.weight.grad is None and layers[1].attention.q_lin.weight.grad is not None
    with pytest.raises(ConfigError, match=r"config key 'encoder.freeze_layers': 5, but encoder DistilBertModel has 2 layers .*give at most 2"):
        MultitaskModel(path, spec, freeze_layers=5)


@pytest.mark.parametrize("arch", ["modernbert", "deberta-v2"])
def test_freeze_layers_finds_the_layer_list_without_a_table(arch, tiny_encoders):
    model = MultitaskModel(str(tiny_encoders[arch]), {"demo:t": HeadSpec("classification", 2)}, freeze_layers=2)
    trainable = [n for n, p in model.encoder.named_parameters() if p.requires_grad]
    assert not any("embeddings" in n and "rel_embeddings" not in n for n in trainable)
    frozen = [n for n, p in model.encoder.named_parameters() if not p.requires_grad]
    assert any("layer" in n for n in frozen)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_encoders, make_batch):
    spec = {"demo:t": HeadSpec("classification", 2, kind="text_classification", options={"dropout": 0.0})}
    batch = make_batch("text_classification", num_labels=2)
    results, head_state = [], None
    for checkpointing in (False, True):
        model = MultitaskModel(str(tiny_encoders["bert"]), spec, gradient_checkpointing=checkpointing,
                               encoder_kwargs={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
        assert model.encoder.is_activation_checkpointing is checkpointing
        head_state = head_state or model.heads.state_dict()
        model.heads.load_state_dict(head_state)
        model.train()
        loss = model("demo:t", **batch).loss
        loss.backward()
        results.append((loss.detach(), model.encoder.embeddings.word_embeddings.weight.grad.clone()))
    assert torch.allclose(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)


def test_sdpa_by_default_and_eager_fallback_for_deberta(tiny_encoders):
    spec = {"demo:t": HeadSpec("classification", 2)}
    assert MultitaskModel(str(tiny_encoders["bert"]), spec).encoder.config._attn_implementation == "sdpa"
    assert MultitaskModel(str(tiny_encoders["deberta-v2"]), spec).encoder.config._attn_implementation == "eager"
    assert MultitaskModel(str(tiny_encoders["bert"]), spec, attn_implementation="eager").encoder.config._attn_implementation == "eager"


def test_dtype_option_applies_to_encoder_and_heads(tiny_encoders, make_batch):
    model = MultitaskModel(str(tiny_encoders["bert"]), {"demo:t": HeadSpec("classification", 2)}, dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    out = model("demo:t", **make_batch("text_classification", num_labels=2))
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32
    with pytest.raises(UnknownNameError, match="did you mean 'bfloat16'"):
        MultitaskModel(str(tiny_encoders["bert"]), {"demo:t": HeadSpec("classification", 2)}, dtype="bfloat61")


def test_parameter_groups_split_encoder_heads_and_decay(tiny_encoders):
    model = MultitaskModel(str(tiny_encoders["bert"]), {"demo:a": HeadSpec("mlp", 2), "demo:b": HeadSpec("regression", 1)},
                           freeze_layers=1)
    groups = {g["name"]: g for g in model.parameter_groups(encoder_lr=1e-5, head_lr=1e-3, weight_decay=0.01)}
    assert set(groups) == {"encoder", "encoder_no_decay", "heads", "heads_no_decay"}
    assert groups["encoder"]["lr"] == 1e-5 and groups["heads"]["lr"] == 1e-3
    assert groups["encoder"]["weight_decay"] == 0.01 and groups["encoder_no_decay"]["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = [names[id(p)] for g in ("encoder_no_decay", "heads_no_decay") for p in groups[g]["params"]]
    decay = [names[id(p)] for g in ("encoder", "heads") for p in groups[g]["params"]]
    assert all(n.endswith("bias") or "LayerNorm" in n for n in no_decay)
    assert not any(n.endswith("bias") or "LayerNorm" in n for n in decay)
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    assert len(grouped) == len(set(grouped)) == sum(p.requires_grad for p in model.parameters())
    torch.optim.AdamW(model.parameter_groups(1e-5, 1e-3, 0.01))  # accepted by torch as is


def test_missing_encoder_fails_in_one_line(tmp_path):
    from mtcore.errors import ModelFileError

    with pytest.raises(ModelFileError) as info:
        MultitaskModel(str(tmp_path / "nope"), {"demo:t": HeadSpec("classification", 2)})
    assert "nope" in str(info.value) and "\n" not in str(info.value)


def test_an_attention_implementation_that_cannot_be_used_is_a_config_error(tiny_encoders):
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    with pytest.raises(ConfigError, match="attn_implementation='flash_attention_2'"):
        MultitaskModel(str(tiny_encoders["bert"]), {"demo:t": HeadSpec("classification", 2)}, attn_implementation="flash_attention_2")


def test_a_registered_module_that_is_not_a_head_is_named_as_such_not_as_rejected_options(tiny_encoders):
    """A plain nn.Module registered as a head failed as "rejected options {}: ... unexpected keyword argument
    'hidden_size'", blaming options nobody gave."""
    from mtcore import plugins
    from mtcore.errors import PluginError

    class NotAHead(torch.nn.Module):
        pass

    plugins.register_component("head", "not_a_head_test", NotAHead, kinds=("text_classification",))
    try:
        with pytest.raises(PluginError, match=r"head 'user:not_a_head_test' \(head of task 'demo:t'\) is registered by plugin "
                                              r"'user' as .*NotAHead', a class that is not a mtcore.model.heads.base.Head subclass"):
            MultitaskModel(str(tiny_encoders["bert"]), {"demo:t": HeadSpec("not_a_head_test", 2, kind="text_classification")})
    finally:
        for registry in plugins._cache.values():
            registry.components["head"].pop("user:not_a_head_test", None)
