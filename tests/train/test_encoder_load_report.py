"""transformers 5 logs a multi-line "LOAD REPORT" table whenever the loaded keys differ from the model's: every run
from ``bert-base-cased`` (a pre-training checkpoint: unused ``cls.*`` weights) or from an ``mt export`` folder
(``classifier.*``) printed it. Unused weights of another head are expected and say nothing now; encoder weights the
files lack are one ``warning:`` line; tensors of another shape are one error line naming one (it was "unexpected
RuntimeError: ... look at the above report")."""

from __future__ import annotations

import json
import subprocess
import warnings

import pytest
import yaml

from mtcore.errors import ModelFileError
from mtcore.model.encoder import load_encoder

from .conftest import mt_command, subprocess_env


def _tiny(path, head_class: str = "BertForPreTraining", pooler: bool = True):
    import transformers
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = BertModel(config, add_pooling_layer=False) if not pooler else getattr(transformers, head_class)(config)
    model.save_pretrained(path)
    return path


def test_a_checkpoint_with_a_pretraining_head_loads_without_a_report_or_warning(tmp_path, capfd):
    source = _tiny(tmp_path / "bert-like")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder = load_encoder(source)
    assert type(encoder).__name__ == "BertModel"
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "cls.predictions" not in err


def test_encoder_weights_missing_from_the_files_are_one_warning(tmp_path, capfd):
    source = _tiny(tmp_path / "no-pooler", pooler=False)
    with pytest.warns(UserWarning) as caught:
        load_encoder(source)
    assert [str(w.message) for w in caught] == [
        f"encoder {str(source)!r}: 2 weights are not in its files and start random (pooler.dense.bias, pooler.dense.weight); "
        "harmless unless a head reads the pooler (head_options pooling: pooler)"]
    assert "LOAD REPORT" not in capfd.readouterr().err


def test_tensors_of_another_shape_are_one_error_line(tmp_path, capfd):
    source = _tiny(tmp_path / "reshaped", pooler=False)
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))
    with pytest.raises(ModelFileError) as info:
        load_encoder(source)
    assert str(info.value) == (f"encoder {str(source)!r} cannot be loaded: 3 tensors have another shape than its config.json says "
                               "(e.g. encoder.layer.0.intermediate.dense.bias: file [64], config [48]); its config.json and "
                               "weights do not belong together (copy or save the model again)")
    assert "LOAD REPORT" not in capfd.readouterr().err


def test_mt_train_from_an_exported_task_model_prints_no_load_report(tmp_path, make_config, small_encoder):
    from transformers import AutoTokenizer, BertForSequenceClassification

    exported = tmp_path / "exported"  # what mt export writes for a classification task: the encoder under a classifier
    BertForSequenceClassification.from_pretrained(small_encoder, num_labels=2).save_pretrained(exported)
    AutoTokenizer.from_pretrained(small_encoder).save_pretrained(exported)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(make_config(encoder={"path": str(exported)}, schedule={"max_steps": 1, "warmup_steps": 0},
                                                 checkpoint={"every": None})), encoding="utf-8")
    result = subprocess.run(mt_command("train", str(config), "--output-dir", str(tmp_path / "run")), capture_output=True, text=True,
                            env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "LOAD REPORT" not in result.stderr and "UNEXPECTED" not in result.stderr and "classifier" not in result.stderr, result.stderr
