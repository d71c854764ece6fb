"""``mt export``: plain transformers models that reproduce ``mt predict``, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from inference.support import NLI, PAIRS, REVIEWS, SENTIMENT, make_model

from mtcore.export.hf import export_encoder, export_task
from mtcore.errors import ConfigError
from mtcore.export.mapping import ExportError
from mtcore.model import MultitaskModel
from mtcore.predict.predictor import predict
from mtcore.task import Task


def _pipeline_probabilities(out_dir, inputs, labels, max_length=256):
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(out_dir), device="cpu")
    results = classify(inputs, top_k=None, truncation=True, max_length=max_length)
    names = [max(row, key=lambda r: r["score"])["label"] for row in results]
    probs = [[{r["label"]: r["score"] for r in row}[label] for label in labels] for row in results]
    return names, probs


def _mt_predict(cli, model_dir, task, rows, tmp_path):
    path = tmp_path / f"{task.replace(':', '_')}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = cli("predict", model_dir, "--task", task, "--input", path)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_pipeline_equals_mt_predict_for_exported_bert_tasks(cli, bert_model_dir, tmp_path):
    for task, rows, pipe_inputs in [
        (SENTIMENT, REVIEWS, [r["review"] for r in REVIEWS]),
        (NLI, PAIRS, [{"text": r["premise"], "text_pair": r["hypothesis"]} for r in PAIRS]),
    ]:
        out_dir = tmp_path / task.name
        result = cli("export", bert_model_dir, "--task", task.id, out_dir)
        assert result.exit_code == 0, result.output
        assert "BertForSequenceClassification" in result.stderr
        config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
        assert config["id2label"] == {str(i): name for i, name in enumerate(task.labels)}
        predicted = _mt_predict(cli, bert_model_dir, task.id, rows, tmp_path)
        names, probs = _pipeline_probabilities(out_dir, pipe_inputs, task.labels, task.max_length)
        assert names == [task.labels[task.label_id(row["label"])] for row in predicted]
        np.testing.assert_allclose(probs, [row["probabilities"] for row in predicted], atol=1e-5)


@pytest.mark.parametrize(("arch", "options"), [
    ("distilbert", {"num_layers": 2, "activation": "relu", "pooling": "cls"}),
    ("roberta", {"num_layers": 2, "activation": "tanh", "pooling": "cls"}),
])
def test_two_layer_classifiers_export(tiny_encoders, tmp_path, arch, options):
    task = Task(name="mood", kind="text_classification", labels=("sad", "calm", "glad"), head="mlp", head_options=options, plugin="demo")
    model = make_model(tiny_encoders[arch], task, seed=3)
    result = export_task(model, "mood", tmp_path / "out")
    assert result.max_difference <= 1e-5 and len(result.mapped) == 2
    texts = [r["review"] for r in REVIEWS]
    names, probs = _pipeline_probabilities(tmp_path / "out", texts, task.labels)
    ours = predict(model, "mood", [{"text": t} for t in texts])
    assert names == ours.labels
    np.testing.assert_allclose(probs, ours.probabilities, atol=1e-5)


def test_multiple_choice_over_the_pooler(tiny_encoders, tmp_path):
    from transformers import AutoModelForMultipleChoice

    task = Task(name="choice", kind="multiple_choice", head_options={"pooling": "pooler"}, plugin="demo")
    model = make_model(tiny_encoders["bert"], task, seed=1)
    export_task(model, "choice", tmp_path / "mc")
    plain = AutoModelForMultipleChoice.from_pretrained(tmp_path / "mc").eval()
    rows = [{"text": "good movie", "choices": ["bad", "good movie indeed"]}, {"text": "", "choices": ["x y", "z"]}]
    ours = predict(model, "choice", rows, batch_size=1)
    for row, probs in zip(rows, ours.probabilities):
        first = [row["text"]] * 2 if row["text"] else row["choices"]
        second = row["choices"] if row["text"] else None
        encoded = model.tokenizer(first, second, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = plain(**{k: v.unsqueeze(0) for k, v in encoded.items()}).logits
        np.testing.assert_allclose(torch.softmax(logits, -1)[0].numpy(), probs, atol=1e-5)


@pytest.mark.parametrize(("arch", "activation"), [("distilbert", "relu"), ("electra", "gelu"), ("deberta-v2", "gelu")])
def test_multiple_choice_over_a_two_layer_scorer(tiny_encoders, tmp_path, arch, activation):
    """These encoders' multiple-choice classifiers are two linear layers: no mtcore head exported to them (an audit)."""
    from transformers import AutoModelForMultipleChoice

    base = Task(name="choice", kind="multiple_choice", plugin="demo")
    with pytest.raises(ExportError, match=rf"head 'multiple_choice' and head_options \{{num_layers: 2, activation: {activation}, pooling: cls\}}"):
        export_task(make_model(tiny_encoders[arch], base, seed=2), "choice", tmp_path / "refused")
    task = base.replace(head_options={"num_layers": 2, "activation": activation, "pooling": "cls"})
    model = make_model(tiny_encoders[arch], task, seed=2)
    assert len(export_task(model, "choice", tmp_path / "mc").mapped) == 2
    plain = AutoModelForMultipleChoice.from_pretrained(tmp_path / "mc").eval()
    rows = [{"text": "good movie", "choices": ["bad", "good movie indeed", "movie"]}]
    ours = predict(model, "choice", rows, batch_size=1)
    encoded = model.tokenizer(["good movie"] * 3, rows[0]["choices"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = plain(**{k: v.unsqueeze(0) for k, v in encoded.items()}).logits
    np.testing.assert_allclose(torch.softmax(logits, -1)[0].numpy(), ours.probabilities[0], atol=1e-5)


def test_refusals_are_one_line_and_write_nothing(cli, tiny_encoders, tmp_path):
    cls_pooled = Task(name="plain", kind="text_classification", labels=("a", "b"), plugin="demo")  # pooling: cls
    model_dir = make_model(tiny_encoders["bert"], cls_pooled).save_pretrained(tmp_path / "bert-cls")
    result = cli("export", model_dir, tmp_path / "out", "--task", "plain")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "pooling: pooler" in line and "--encoder-only" in line
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    roberta = make_model(tiny_encoders["roberta"], cls_pooled)
    with pytest.raises(ExportError, match=r"head 'mlp' and head_options \{num_layers: 2, activation: tanh, pooling: cls\}"):
        export_task(roberta, "plain", tmp_path / "out2")
    modern = make_model(tiny_encoders["modernbert"], Task(name="m", kind="text_classification", labels=("a", "b"), head="mlp", plugin="demo"))
    with pytest.raises(ExportError, match=r"has 2 linear layer\(s\), the plain classifier 2 linear layer\(s\) and 1 layer norm\(s\); .*"
                                          r"layer_norm: true, inner_bias: false"):
        export_task(modern, "m", tmp_path / "out3")


def test_encoder_only_export(cli, bert_model_dir, tmp_path):
    from transformers import AutoModel

    out = tmp_path / "encoder"
    result = cli("export", bert_model_dir, out, "--encoder-only")
    assert result.exit_code == 0, result.output
    plain = AutoModel.from_pretrained(out).eval()
    model = MultitaskModel.from_pretrained(bert_model_dir)
    ids = model.tokenizer(["good movie"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(plain(**ids).last_hidden_state, model.encoder(**ids).last_hidden_state)
    again = cli("export", bert_model_dir, out, "--encoder-only")
    assert again.exit_code == 2 and "pass --overwrite" in again.stderr  # a usage mistake, before any work
    assert cli("export", bert_model_dir, out, "--encoder-only", "--overwrite").exit_code == 0


def test_export_errors(cli, bert_model_dir, tmp_path):
    result = cli("export", bert_model_dir, tmp_path / "o", "--task", "sentimnt")
    assert result.exit_code == 2 and "did you mean 'demo:sentiment'" in result.stderr
    result = cli("export", bert_model_dir, tmp_path / "o")
    assert result.exit_code == 2 and "several tasks" in result.stderr and "choose one with --task, or --task all" in result.stderr
    result = cli("export", tmp_path / "missing", tmp_path / "o", "--task", "x")
    assert result.exit_code == 2 and "no such directory" in result.stderr
    result = cli("export", bert_model_dir, bert_model_dir / "inside", "--task", "nli")
    assert result.exit_code == 2 and "holds the model being exported" in result.stderr
    result = cli("export", bert_model_dir, bert_model_dir.parent, "--task", "nli", "--overwrite")
    assert result.exit_code == 2 and (bert_model_dir / "mtcore.json").is_file()
    assert export_encoder(MultitaskModel.from_pretrained(bert_model_dir), tmp_path / "enc").model_class == "BertModel"


TAGS = ("O", "B-X", "I-X")
#: ModernBERT's classifier: a dense layer without bias, GELU, a layer norm without bias, then the output layer.
MODERNBERT = {"num_layers": 2, "activation": "gelu", "layer_norm": True, "inner_bias": False, "pooling": "cls"}
EXPORTED_KINDS = [  # (encoder, task, transformers auto class): every head kind the docs say exports
    ("bert", Task(name="tags", kind="token_classification", labels=TAGS, plugin="demo"), "AutoModelForTokenClassification"),
    ("roberta", Task(name="tags", kind="token_classification", labels=TAGS, plugin="demo"), "AutoModelForTokenClassification"),
    ("distilbert", Task(name="tags", kind="token_classification", labels=TAGS, plugin="demo"), "AutoModelForTokenClassification"),
    ("bert", Task(name="score", kind="regression", head_options={"pooling": "pooler"}, plugin="demo"), "AutoModelForSequenceClassification"),
    ("bert", Task(name="topics", kind="multi_label", labels=("a", "b", "c"), head_options={"pooling": "pooler"}, plugin="demo"),
     "AutoModelForSequenceClassification"),
    ("electra", Task(name="mood", kind="pair_classification", labels=("x", "y"), head="mlp",
                     head_options={"num_layers": 2, "activation": "gelu", "pooling": "cls"}, plugin="demo"), "AutoModelForSequenceClassification"),
    ("xlm-roberta", Task(name="mood", kind="text_classification", labels=("x", "y", "z"), head="mlp",
                         head_options={"num_layers": 2, "activation": "tanh", "pooling": "cls"}, plugin="demo"), "AutoModelForSequenceClassification"),
    # regression and multi-label over two-layer classifiers (they could not be exported for these encoders: an audit)
    ("roberta", Task(name="score", kind="regression", head_options={"num_layers": 2, "activation": "tanh", "pooling": "cls"},
                     plugin="demo"), "AutoModelForSequenceClassification"),
    ("distilbert", Task(name="score", kind="regression", head_options={"num_layers": 2, "activation": "relu", "pooling": "cls"},
                        plugin="demo"), "AutoModelForSequenceClassification"),
    ("xlm-roberta", Task(name="topics", kind="multi_label", labels=("a", "b", "c"),
                         head_options={"num_layers": 2, "activation": "tanh", "pooling": "cls"}, plugin="demo"), "AutoModelForSequenceClassification"),
    ("deberta-v2", Task(name="topics", kind="multi_label", labels=("a", "b", "c"),
                        head_options={"num_layers": 2, "activation": "gelu", "pooling": "cls"}, plugin="demo"), "AutoModelForSequenceClassification"),
    ("electra", Task(name="score", kind="regression", head_options={"num_layers": 2, "activation": "gelu", "pooling": "cls"},
                     plugin="demo"), "AutoModelForSequenceClassification"),
    ("modernbert", Task(name="mood", kind="text_classification", labels=("sad", "calm", "glad"), head="mlp", plugin="demo",
                        head_options=MODERNBERT), "AutoModelForSequenceClassification"),
    ("modernbert", Task(name="score", kind="regression", head_options=MODERNBERT, plugin="demo"), "AutoModelForSequenceClassification"),
]


@pytest.mark.parametrize(("arch", "task", "auto_class"), EXPORTED_KINDS, ids=lambda v: v if isinstance(v, str) else v.kind.value)
def test_every_exportable_head_reloads_with_transformers_and_gives_mtcores_logits(cli, tiny_encoders, tmp_path, arch, task, auto_class):
    """`mt export` of a saved model, reloaded by the plain auto class on a padded batch it was not probed with."""
    import transformers

    model = make_model(tiny_encoders[arch], task, seed=5)
    model_dir = model.save_pretrained(tmp_path / "model")
    result = cli("export", model_dir, tmp_path / "plain")
    assert result.exit_code == 0, result.stderr
    plain = getattr(transformers, auto_class).from_pretrained(tmp_path / "plain").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "plain")
    texts, second = ["good movie", "bad bad movie, and a much longer sentence than the first one", "x"], ["movie", "good", "bad bad"]
    encoded = tokenizer(texts, second if task.is_pair else None, padding=True, return_tensors="pt")
    loaded = MultitaskModel.from_pretrained(model_dir)
    with torch.no_grad():
        ours, theirs = loaded(task.id, **encoded).logits, plain(**encoded).logits
    if task.kind.value == "token_classification":  # padding positions are nobody's prediction
        ours, theirs = ours[encoded["attention_mask"].bool()], theirs[encoded["attention_mask"].bool()]
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)
    assert plain.config.num_labels == (1 if task.kind.value == "regression" else len(task.labels))
    if task.kind.value == "multi_label":
        assert plain.config.problem_type == "multi_label_classification"


def test_task_all_exports_every_task_that_exports_and_the_encoder_at_once(cli, tiny_encoders, tmp_path):
    """tasknet's factorize(): every head its own plain model; one that no plain class computes is named and left out."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    cls_pooled = Task(name="plain", kind="text_classification", labels=("a", "b"), plugin="demo")  # pooling: cls, no plain class
    model = make_model(tiny_encoders["bert"], SENTIMENT, NLI, cls_pooled)
    model_dir = model.save_pretrained(tmp_path / "model")
    out = tmp_path / "exported"
    result = cli("export", model_dir, out, "--task", "all")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["demo_nli", "demo_sentiment", "encoder", "mtcore_export.json"]
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("warning: left out demo:plain: ") and "pooling: pooler" in lines[0]
    assert f"exported demo:sentiment as BertForSequenceClassification to {out / 'demo_sentiment'}" in lines
    listed = json.loads((out / "mtcore_export.json").read_text())
    assert listed["tasks"] == {"demo:sentiment": "demo_sentiment", "demo:nli": "demo_nli"} and list(listed["skipped"]) == ["demo:plain"]
    ids = model.tokenizer(["good movie"], return_tensors="pt")
    nli = AutoModelForSequenceClassification.from_pretrained(out / "demo_nli").eval()
    with torch.no_grad():
        torch.testing.assert_close(nli(**ids).logits, model("demo:nli", **ids).logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(AutoModel.from_pretrained(out / "encoder")(**ids).last_hidden_state, model.encoder(**ids).last_hidden_state)
    assert cli("export", model_dir, out, "--task", "all").exit_code == 2  # not empty: --overwrite replaces an earlier export
    assert cli("export", model_dir, out, "--task", "all", "--overwrite").exit_code == 0
    only_plain = make_model(tiny_encoders["bert"], cls_pooled).save_pretrained(tmp_path / "plain-model")
    left = cli("export", only_plain, tmp_path / "just-encoder", "--task", "all")
    assert left.exit_code == 0 and sorted(p.name for p in (tmp_path / "just-encoder").iterdir()) == ["encoder", "mtcore_export.json"]


def test_a_bare_task_name_typo_is_matched_against_the_heads_names(cli, bert_model_dir, tmp_path):
    """'nil' is far from 'demo:nli' as a whole (there was no suggestion): it is compared with the name part too."""
    result = cli("export", bert_model_dir, tmp_path / "o", "--task", "nil")
    assert result.exit_code == 2 and "unknown task 'nil' (did you mean 'demo:nli'?)" in result.stderr, result.stderr


def test_push_to_hub_uploads_the_export_and_refuses_what_cannot_work_before_exporting(cli, bert_model_dir, tmp_path, monkeypatch):
    """tasknet's users push their exports; the hub is out of reach here, so huggingface_hub's client is a stand-in."""
    import huggingface_hub

    calls = []

    class Hub:
        def create_repo(self, repo_id, **options):
            calls.append(("create", repo_id, options))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **options):
            calls.append(("upload", options["repo_id"], sorted(p.name for p in Path(options["folder_path"]).iterdir())))

    monkeypatch.setattr(huggingface_hub, "HfApi", Hub)
    offline = cli("export", bert_model_dir, tmp_path / "o1", "--task", "nli", "--push-to-hub", "me/nli")
    assert offline.exit_code == 2 and "HF_HUB_OFFLINE is set" in offline.stderr and not (tmp_path / "o1").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for bad, said in (("nli", "give the owner too"), ("me/bad name", "is not a hub repo id")):
        result = cli("export", bert_model_dir, tmp_path / "o2", "--task", "nli", "--push-to-hub", bad)
        assert result.exit_code == 2 and said in result.stderr and not (tmp_path / "o2").exists()
    assert cli("export", bert_model_dir, tmp_path / "o3", "--task", "nli", "--private").exit_code == 2
    result = cli("export", bert_model_dir, tmp_path / "o4", "--task", "nli", "--push-to-hub", "me/nli", "--private")
    assert result.exit_code == 0, result.output
    assert calls[0] == ("create", "me/nli", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls[1][:2] == ("upload", "me/nli") and "config.json" in calls[1][2] and "model.safetensors" in calls[1][2]
    assert "pushed" in result.stderr and "https://huggingface.co/me/nli" in result.stderr

    def refused(self, **options):
        import httpx

        response = httpx.Response(401, request=httpx.Request("POST", "https://huggingface.co/api/models/me/nli/commit/main"))
        raise huggingface_hub.errors.HfHubHTTPError("401 Client Error: Unauthorized", response=response)

    monkeypatch.setattr(Hub, "upload_folder", refused)
    failed = cli("export", bert_model_dir, tmp_path / "o5", "--task", "nli", "--push-to-hub", "me/nli")
    assert failed.exit_code == 1 and "could not push" in failed.stderr and "hf upload me/nli" in failed.stderr
    exported, error = failed.stderr.strip().splitlines()  # the export is written and said so; the push failed, in one line
    assert exported.startswith("exported demo:nli") and error.startswith("error: could not push") and (tmp_path / "o5" / "config.json").is_file()


def test_a_push_that_cannot_reach_the_hub_keeps_the_export_and_says_how_to_push_it(cli, bert_model_dir, tmp_path, monkeypatch):
    """An unreachable hub (httpx's ConnectError, not an OSError), a private repo (the command creates it private), a folder
    given with ~ and a space (uploaded from where it was written; quoted in the command), TRANSFORMERS_OFFLINE."""
    import httpx
    import huggingface_hub

    uploaded = []

    class Unreachable:
        def create_repo(self, repo_id, **options):
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **options):
            uploaded.append(options["folder_path"])
            raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "HfApi", Unreachable)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    offline = cli("export", bert_model_dir, tmp_path / "o1", "--task", "nli", "--push-to-hub", "me/nli")
    assert offline.exit_code == 2 and "TRANSFORMERS_OFFLINE is set" in offline.stderr and not (tmp_path / "o1").exists()
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    failed = cli("export", bert_model_dir, "~/my export", "--task", "nli", "--push-to-hub", "me/nli", "--private")
    assert failed.exit_code == 1 and "unexpected" not in failed.stderr and "Name or service not known" in failed.stderr
    assert uploaded == [str(tmp_path / "my export")] and (tmp_path / "my export" / "config.json").is_file()
    assert f"hf upload --private me/nli '{tmp_path / 'my export'}' ." in failed.stderr


def test_modernberts_classifier_is_refused_with_the_head_options_that_export_and_those_export(tiny_encoders, tmp_path):
    """ModernBERT's classifier has a layer norm between its two linear layers: the mlp head's layer_norm option (an audit
    of what peers' users export)."""
    from transformers import AutoModelForMultipleChoice

    plain = Task(name="mood", kind="text_classification", labels=("sad", "glad"), head="mlp",
                 head_options={"num_layers": 2, "activation": "gelu", "pooling": "cls"}, plugin="demo")
    with pytest.raises(ExportError, match=r"ModernBertForSequenceClassification is a linear layer, gelu and a layer norm, then a linear "
                                          r"layer, over the first token: train with head 'mlp' and head_options \{num_layers: 2, "
                                          r"activation: gelu, layer_norm: true, inner_bias: false, pooling: cls\}"):
        export_task(make_model(tiny_encoders["modernbert"], plain, seed=1), "mood", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    with_bias = plain.replace(head_options={**MODERNBERT, "inner_bias": True})
    with pytest.raises(ExportError, match=r"with a bias where head.dense is \(32, 32\) without one"):
        export_task(make_model(tiny_encoders["modernbert"], with_bias, seed=1), "mood", tmp_path / "refused")
    choice = Task(name="choice", kind="multiple_choice", head_options=MODERNBERT, plugin="demo")
    model = make_model(tiny_encoders["modernbert"], choice, seed=2)
    assert len(export_task(model, "choice", tmp_path / "mc").mapped) == 3
    loaded = AutoModelForMultipleChoice.from_pretrained(tmp_path / "mc").eval()
    rows = [{"text": "good movie", "choices": ["bad", "good movie indeed", "movie"]}]
    encoded = model.tokenizer(["good movie"] * 3, rows[0]["choices"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = loaded(**{k: v.unsqueeze(0) for k, v in encoded.items()}).logits
    np.testing.assert_allclose(torch.softmax(logits, -1)[0].numpy(), predict(model, "choice", rows).probabilities[0], atol=1e-5)
    tagger = Task(name="tags", kind="token_classification", labels=("O", "B-X"), plugin="demo")
    with pytest.raises(ExportError, match=r"ModernBertForTokenClassification's classifier is 2 linear layer\(s\) and 1 layer norm\(s\) "
                                          r"over every token, which no mtcore head reproduces"):
        export_task(make_model(tiny_encoders["modernbert"], tagger, seed=1), "tags", tmp_path / "refused")
    eps = make_model(tiny_encoders["modernbert"], plain.replace(head_options={**MODERNBERT, "layer_norm_eps": "1e-5"}), seed=1)
    assert eps.heads["demo:mood"].layers[2].eps == 1e-5  # YAML's 1e-5 (text): a number
    with pytest.raises(ConfigError, match="layer_norm_eps is the epsilon of the layer norms layer_norm: true adds"):
        make_model(tiny_encoders["modernbert"], plain.replace(head_options={"layer_norm_eps": 1e-6}), seed=1)
    with pytest.raises(ConfigError, match="layer_norm and inner_bias shape the inner layers, and num_layers 1 has none"):
        make_model(tiny_encoders["modernbert"], Task(name="score", kind="regression", head_options={"layer_norm": True}, plugin="demo"))
