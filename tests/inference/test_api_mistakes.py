"""Python-API mistakes end in one clear mtcore error, not a guess or a raw exception (an API audit's findings)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from inference.support import NLI, PAIRS, SENTIMENT, make_model

from mtcore.errors import ConfigError, DataError, ModelFileError, MtError, UnknownNameError
from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict
from mtcore.task import Task

TERRA_TWIN = Task(name="terra", kind="pair_classification", labels=("entailment", "not_entailment"),
                  inputs={"text": "premise", "text_pair": "hypothesis"}, plugin="user")


def test_a_bare_name_two_heads_end_with_is_ambiguous_for_predict_as_for_forward(tiny_encoders):
    from mtcore.plugins import load_registry

    terra = load_registry(warn=False).task("rsg:terra")
    model = make_model(tiny_encoders["bert"], terra, TERRA_TWIN)
    for call in (lambda: model.predict("terra", PAIRS), lambda: model("terra", input_ids=torch.tensor([[2, 3]]))):
        with pytest.raises(UnknownNameError, match=r"unknown task 'terra' \(did you mean 'rsg:terra' or 'user:terra'\?\)"):
            call()
    assert predict(model, "user:terra", PAIRS).head == "user:terra" and predict(model, "rsg:terra", PAIRS).head == "rsg:terra"


def test_evaluating_a_split_no_task_has_is_one_line_with_the_loaded_splits(tiny_encoders, rsg_sample):
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.plugins import load_registry
    from mtcore.predict.evaluate import evaluate_model

    terra = load_registry(warn=False).task("rsg:terra")
    model = make_model(tiny_encoders["bert"], terra)
    data = {"rsg:terra": load_task_data(terra, AutoTokenizer.from_pretrained(tiny_encoders["bert"]), source="sample",
                                        splits=("train", "validation"))}
    with pytest.raises(ConfigError, match=r"^no task has a loaded split 'valid' \(did you mean 'validation'\?\); "
                                          r"the loaded splits are: train, validation$"):
        evaluate_model(model, data, split="valid")
    assert evaluate_model(model, data, split="validation")["aggregate"] is not None


def test_max_length_beyond_the_encoders_positions_is_cut_there_when_the_tokenizer_does_not_say(tiny_encoders, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    from mtcore.data.tokenize import position_limit, resolve_max_length

    from mtcore.testing import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "enc", "bert", words=["good"], max_positions=40)
    settings = json.loads((encoder / "tokenizer_config.json").read_text())
    settings.pop("model_max_length", None)  # as many hub tokenizers: no limit said
    (encoder / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    assert tokenizer.model_max_length > 10**6  # the tokenizer does not say
    with pytest.warns(UserWarning, match=r"task 'demo:sentiment': max_length 64 is more than the encoder's 40 positions"):
        assert resolve_max_length(SENTIMENT, tokenizer, encoder_config=AutoConfig.from_pretrained(encoder)) == 40
    model = MultitaskModel(str(encoder), [SENTIMENT], tokenizer=tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = predict(model, "demo:sentiment", [{"review": "good " * 100}])  # was: a raw size mismatch inside BERT
    assert len(out) == 1
    assert position_limit({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}) == 512
    assert position_limit({"model_type": "bert", "max_position_embeddings": 512}) == 512 and position_limit({}) is None


def test_a_custom_head_without_a_task_and_a_model_without_tokenizer_say_what_to_pass(tiny_encoders):
    from mtcore.plugins import load_registry

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(32, 2)

        def forward(self, hidden_states, attention_mask, **_):
            return self.linear(hidden_states[:, 0])

    model = MultitaskModel(str(tiny_encoders["bert"]), {"rsg:terra": Head()})
    with pytest.raises(ConfigError, match=r"task 'rsg:terra' has a custom head given without a Task, .* pass the Task itself"):
        model.predict("rsg:terra", PAIRS)
    with pytest.raises(ModelFileError, match=r"the model has no tokenizer \(none was given to it or saved with it\); pass tokenizer="):
        model.predict(load_registry(warn=False).task("rsg:terra"), PAIRS)


def test_forward_mistakes_are_data_errors_naming_the_task(tiny_encoders):
    model = make_model(tiny_encoders["bert"], NLI).train()
    batch = model.tokenizer(["a b", "c"], ["d", "e f"], return_tensors="pt", padding=True)
    with pytest.raises(DataError, match=r"^task 'demo:nli': a label is out of range .*labels are class ids 0\.\.3 minus 1"):
        model("demo:nli", **batch, labels=torch.tensor([0, 5]))
    with pytest.raises(DataError, match=r"^task 'demo:nli': input_ids must be a torch.Tensor, got list"):
        model("demo:nli", input_ids=batch["input_ids"].tolist())
    with pytest.raises(DataError, match=r"^task 'demo:nli': no input_ids"):
        model("demo:nli", attention_mask=batch["attention_mask"])
    assert model("demo:nli", **batch, labels=torch.tensor([0, 2])).loss is not None


def test_parameter_group_mistakes_are_mtcore_errors(tiny_encoders):
    model = make_model(tiny_encoders["bert"], NLI)
    with pytest.raises(ConfigError, match=r"head_lrs names 'rsg:rcb', which is not a head of this model \(demo:nli\)"):
        model.parameter_groups(1e-5, head_lrs={"rsg:rcb": 1e-3})
    with pytest.raises(ConfigError, match=r"layer_decay must be in \(0, 1\]"):
        model.parameter_groups(1e-5, layer_decay=1.5)


def test_registering_a_task_or_component_again_replaces_it_and_a_refresh_keeps_them():
    """A notebook cell run twice said "registered twice"; a registry refresh (check_plugin, another MT_LOAD_PLUGINS)
    dropped what user code registered, and a config naming it then failed with "unknown task"."""
    from mtcore.plugins import get_component, get_task, load_registry, register_component, register_task

    register_task(Task(name="twice_api_test", kind="text_classification", labels=("a", "b")))
    again = register_task(Task(name="twice_api_test", kind="text_classification", labels=("a", "b", "c")))
    assert again.id == "user:twice_api_test" and get_task("user:twice_api_test").labels == ("a", "b", "c")
    register_component("metric", "twice_api_metric", lambda p, r, task=None: 0.0)
    register_component("metric", "twice_api_metric", lambda p, r, task=None: 1.0)
    assert get_component("metric", "user:twice_api_metric")([], []) == 1.0
    refreshed = load_registry(refresh=True, warn=False)
    assert refreshed.task("twice_api_test").labels == ("a", "b", "c")
    assert refreshed.component("metric", "twice_api_metric").load()([], []) == 1.0
    with pytest.raises(TypeError, match="register\\(\\) expects a mtcore.task.Task"):
        register_task({"name": "twice_api_test"})
    assert get_task("user:twice_api_test").labels == ("a", "b", "c")  # a mistake replaces nothing
    with pytest.raises(MtError):
        register_component("metric", "twice_api_metric", lambda p, r, task=None: 2.0, kinds=["no_such_kind"])
    assert get_component("metric", "user:twice_api_metric")([], []) == 1.0  # the working one stays in the live registry


def test_evaluate_model_checks_its_heads_and_weights_as_the_cli_and_predict_do(tiny_encoders, rsg_sample):
    """A head trained with the labels in another order scored a task silently wrong (1 - accuracy); a mistyped key of
    heads or weights was ignored, a negative weight gave no aggregate, a text weight a raw ValueError."""
    from transformers import AutoTokenizer

    from mtcore.data import load_task_data
    from mtcore.plugins import load_registry
    from mtcore.predict.evaluate import evaluate_model

    terra = load_registry(warn=False).task("rsg:terra")
    flipped = terra.replace(name="terra_flipped", plugin="user", labels=("not_entailment", "entailment"))
    model = make_model(tiny_encoders["bert"], terra)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoders["bert"])
    data = {t.id: load_task_data(t, tokenizer, source="sample", splits=("validation",)) for t in (terra, flipped)}
    with pytest.raises(ConfigError, match=r"task 'user:terra_flipped' has labels \['not_entailment', 'entailment'\], but the head "
                                          r"'rsg:terra' was trained with \['entailment', 'not_entailment'\]"):
        evaluate_model(model, data, heads={"user:terra_flipped": "rsg:terra"})
    with pytest.raises(ConfigError, match=r"^evaluate_model heads: 'rsg:tera' is not a task of data \(did you mean 'rsg:terra'\?\)"):
        evaluate_model(model, {"rsg:terra": data["rsg:terra"]}, heads={"rsg:tera": "rsg:terra"})
    one = {"rsg:terra": data["rsg:terra"]}
    assert evaluate_model(model, one, heads={"terra": "terra"})["aggregate"] is not None  # bare names resolve
    for weights, match in (({"rsg:tera": 3.0}, r"'rsg:tera' is not a task of data \(did you mean 'rsg:terra'\?\)"),
                           ({"rsg:terra": -1.0}, r"the weight of 'rsg:terra' must be a number >= 0, got -1.0"),
                           ({"rsg:terra": "x"}, r"the weight of 'rsg:terra' must be a number >= 0, got 'x'"),
                           ({"terra": 0}, r"every task has weight 0")):
        with pytest.raises(ConfigError, match=r"^evaluate_model weights: " + match):
            evaluate_model(model, one, weights=weights)
    assert evaluate_model(model, one, weights={"terra": 2})["aggregate"] is not None
