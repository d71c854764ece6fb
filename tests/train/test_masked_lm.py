"""The masked_lm task kind: BERT's masking when the data are tokenized, a head tied to the word embeddings that decodes
the masked tokens only, its metrics, its default weight 0 in the aggregate, and what the commands do with it."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mtcore import Task
from mtcore.errors import ConfigError

WORDS = "the a cat dog sat ran on mat rug big small".split()


def _sentence(rng: random.Random) -> str:  # a grammar: every slot but "on" is one of two words
    pick = rng.choice
    return " ".join([pick(["the", "a"]), pick(["big", "small"]), pick(["cat", "dog"]), pick(["sat", "ran"]), "on", pick(["the", "a"]),
                     pick(["mat", "rug"])])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from mtcore.testing import build_tiny_encoder

    root = tmp_path_factory.mktemp("mlm")
    encoder = build_tiny_encoder(root / "encoder", "bert", words=WORDS, hidden_size=32, num_layers=2, num_heads=2)
    rng = random.Random(0)
    files: dict = {"lm": {}, "pets": {}}
    for split, n in (("train", 300), ("validation", 60)):
        lm, pets = root / f"lm_{split}.jsonl", root / f"pets_{split}.jsonl"
        lm.write_text("".join(json.dumps({"text": _sentence(rng)}) + "\n" for _ in range(n)), encoding="utf-8")
        rows = [_sentence(rng) for _ in range(n)]
        pets.write_text("".join(json.dumps({"text": s, "label": "cat" if "cat" in s else "dog"}) + "\n" for s in rows), encoding="utf-8")
        files["lm"][split], files["pets"][split] = str(lm), str(pets)
    config = {"seed": 1, "cpu": True, "precision": "fp32", "encoder": {"path": str(encoder)},
              "tasks": [{"define": {"name": "lm", "kind": "masked_lm", "files": files["lm"]}},
                        {"define": {"name": "pets", "kind": "text_classification", "labels": ["cat", "dog"], "files": files["pets"]}}],
              "optimizer": {"lr": 3e-3}, "schedule": {"max_steps": 120, "warmup_steps": 10}, "batching": {"batch_size": 16},
              "evaluation": {"every": 60, "at_end": True}, "logging": {"progress": "none", "plot": False}}
    return {"root": root, "encoder": encoder, "config": config}


def test_masks_follow_berts_recipe_and_depend_on_the_row_alone(corpus):
    from transformers import AutoTokenizer

    from mtcore.data.masking import Masker

    tokenizer = AutoTokenizer.from_pretrained(corpus["encoder"])
    masker = Masker(tokenizer, "user:lm")
    rng = random.Random(1)
    rows = [tokenizer(" ".join(rng.choice(WORDS) for _ in range(60)))["input_ids"] for _ in range(200)]
    masked, labels = masker(rows, list(range(200)))
    again, labels_again = masker(rows[50:], list(range(50, 200)))
    assert masked[50:] == again and labels[50:] == labels_again  # the row's position and tokens decide, not its batch
    special = set(tokenizer.all_special_ids)
    chosen = kept = replaced = as_mask = 0
    for ids, out, targets in zip(rows, masked, labels):
        assert len(out) == len(ids) == len(targets)
        for original, now, target in zip(ids, out, targets):
            if target == -100:
                assert now == original
                continue
            assert target == original and original not in special
            chosen += 1
            as_mask += now == tokenizer.mask_token_id
            kept += now == original
            replaced += now not in (original, tokenizer.mask_token_id)
    eligible = sum(len(ids) - 2 for ids in rows)
    assert 0.13 < chosen / eligible < 0.17
    assert 0.76 < as_mask / chosen < 0.84 and 0.07 < kept / chosen < 0.13 and 0.07 < replaced / chosen < 0.13
    short = masker([tokenizer("cat")["input_ids"]] * 30, list(range(30)))[1]
    assert all(sum(t != -100 for t in row) == 1 for row in short)  # a one-word row still has its one target


def test_the_head_decodes_with_the_word_embeddings_and_only_at_the_masked_tokens(corpus, tmp_path):
    from mtcore.model import MultitaskModel

    task = Task(name="lm", kind="masked_lm", plugin="user")
    model = MultitaskModel(str(corpus["encoder"]), [task])
    head = model.heads["user:lm"]
    embeddings = model.encoder.get_input_embeddings().weight
    assert head.decoder_weight is embeddings and head.bias.shape == (embeddings.shape[0],)
    assert not any(p is embeddings for p in head.parameters())  # trained and saved with the encoder, once
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]])
    mask = (ids != 0).long()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 1], labels[1, 2] = 6, 8, 9
    out = model("user:lm", input_ids=ids, attention_mask=mask, labels=labels)
    assert out.logits.shape == (3, embeddings.shape[0])
    full = model("user:lm", input_ids=ids, attention_mask=mask).logits
    assert full.shape == (2, 5, embeddings.shape[0])
    assert torch.allclose(out.logits, full[labels >= 0], atol=1e-5)
    expected = torch.nn.functional.cross_entropy(full[labels >= 0], labels[labels >= 0])
    assert torch.allclose(out.loss, expected, atol=1e-5)
    with torch.no_grad():
        head.bias.add_(0.5)
        head.dense.weight.mul_(1.5)
    model.save_pretrained(tmp_path / "saved")
    loaded = MultitaskModel.from_pretrained(tmp_path / "saved")
    assert loaded.heads["user:lm"].decoder_weight is loaded.encoder.get_input_embeddings().weight
    assert torch.allclose(loaded("user:lm", input_ids=ids, attention_mask=mask, labels=labels).logits,
                          model("user:lm", input_ids=ids, attention_mask=mask, labels=labels).logits, atol=1e-5)
    model.train()
    none = model("user:lm", input_ids=ids, attention_mask=mask, labels=torch.full_like(ids, -100))
    assert none.loss is not None and float(none.loss.detach()) == 0.0 and none.loss.requires_grad  # a batch with no target trains on nothing


def test_mask_probability_sets_the_share_of_tokens_masked_and_is_saved_with_the_model(corpus, tmp_path):
    from transformers import AutoTokenizer

    from mtcore.data.masking import Masker
    from mtcore.model import MultitaskModel

    tokenizer = AutoTokenizer.from_pretrained(corpus["encoder"])
    rng = random.Random(3)
    rows = [tokenizer(" ".join(rng.choice(WORDS) for _ in range(60)))["input_ids"] for _ in range(100)]
    _, labels = Masker(tokenizer, "user:lm", 0.4)(rows, list(range(100)))
    chosen = sum(t != -100 for row in labels for t in row) / sum(len(r) - 2 for r in rows)
    assert 0.37 < chosen < 0.43
    task = Task(name="lm", kind="masked_lm", plugin="user", mask_probability=0.4)
    MultitaskModel(str(corpus["encoder"]), [task]).save_pretrained(tmp_path / "model")
    from mtcore.predict.tasks import manifest_task

    assert manifest_task(MultitaskModel.from_pretrained(tmp_path / "model"), "user:lm").mask_probability == 0.4


def test_whole_word_masking_masks_every_token_of_a_chosen_word_and_redraws_words(corpus):
    from transformers import AutoTokenizer

    from mtcore.data.masking import Masker, token_words

    tokenizer = AutoTokenizer.from_pretrained(corpus["encoder"])  # its words split into letters: "catdog" is cat ##d ##o ##g
    rng = random.Random(4)
    texts = [" ".join(rng.choice(WORDS) + rng.choice(["", "zq", "xy"]) for _ in range(20)) for _ in range(60)]
    encoded = tokenizer(texts)
    words = [token_words(encoded, i) for i in range(len(texts))]
    masker = Masker(tokenizer, "user:lm", 0.2, whole_words=True)
    for draw in ((), (1, 5)):
        rows = [masker.mask_row(np.asarray(ids), i, draw, group) for i, (ids, group) in enumerate(zip(encoded["input_ids"], words))]
        chosen_words = total_words = 0
        for (_, labels), group in zip(rows, words):
            group = np.asarray(group)
            for word in set(group[group >= 0].tolist()):
                targets = labels[group == word] >= 0
                assert targets.all() or not targets.any()  # a word's tokens are masked together
                chosen_words += bool(targets.all())
                total_words += 1
            assert not (labels[group < 0] >= 0).any()  # never a special token
        assert 0.16 < chosen_words / total_words < 0.24
    assert any(len(set(g)) < len(g) - 2 for g in words)  # words of several tokens were there to mask together
    from types import SimpleNamespace

    with pytest.raises(ConfigError, match="mask_whole_words needs a fast tokenizer"):  # a slow one has no word of each token
        Masker(SimpleNamespace(is_fast=False, mask_token_id=4, all_special_ids=[0]), "user:lm", whole_words=True)


@pytest.mark.parametrize("fields, said", [
    ({"kind": "text_classification", "labels": ["a", "b"], "mask_probability": 0.2}, "mask_probability .* is for masked_lm tasks"),
    ({"mask_probability": 1.5}, "must be a number between 0 and 1"),
    ({"mask_probability": True}, "must be a number between 0 and 1"),
    ({"kind": "regression", "mask_whole_words": True}, "mask_whole_words is for masked_lm tasks"),
    ({"mask_whole_words": "yes"}, "mask_whole_words must be true or false"),
    ({"labels": ["a", "b"]}, "masked_lm tasks take no labels"),
    ({"inputs": {"label": "y"}}, "reads only its texts"),
    ({"inputs": {"spans": "s"}}, "reads only its texts"),
])
def test_a_masked_lm_task_takes_texts_only(fields, said):
    with pytest.raises(ConfigError, match=said):
        Task(**{"name": "lm", "kind": "masked_lm", **fields})


def test_training_beside_a_task_learns_the_language_and_leaves_the_aggregate_to_the_other(corpus, tmp_path, helpers):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(corpus["config"]), encoding="utf-8")
    env = helpers.subprocess_env()
    run = tmp_path / "run"
    done = subprocess.run(helpers.mt_command("train", str(config), "--output-dir", str(run)), capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    evals = [e for e in helpers.read_events(run) if e["event"] == "eval"]
    first, last = evals[0]["metrics"], evals[-1]["metrics"]
    # a slot of the grammar has two words: a model that learnt it restores about half of them and more (the fixed "on"),
    # with a perplexity near 2, where guessing among the vocabulary's words has one of its size
    vocabulary = json.loads((Path(corpus["encoder"]) / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert last["user:lm/mlm_accuracy"] > 0.45 and last["user:lm/perplexity"] < min(6.0, vocabulary / 3)
    assert last["user:lm/perplexity"] == pytest.approx(np.exp(last["user:lm/loss"]), rel=1e-4)
    assert first["user:lm/perplexity"] > last["user:lm/perplexity"]
    assert evals[-1]["aggregate"] == pytest.approx(last["user:pets/accuracy"])  # the auxiliary task weighs 0

    evaluated = subprocess.run(helpers.mt_command("evaluate", str(run), "--json"), capture_output=True, text=True, env=env, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    assert scores["tasks"]["user:lm"]["metrics"]["perplexity"] == pytest.approx(last["user:lm/perplexity"], rel=1e-6)
    assert scores["aggregate"] == pytest.approx(last["user:pets/accuracy"])

    predicted = subprocess.run(helpers.mt_command("predict", str(run), "--task", "lm", "--split", "validation", "--output",
                                                  str(tmp_path / "p.jsonl")), capture_output=True, text=True, env=env, timeout=300)
    assert predicted.returncode != 0 and "is a masked_lm task" in predicted.stderr and "Traceback" not in predicted.stderr
    assert not (tmp_path / "p.jsonl").exists()
    picked = subprocess.run(helpers.mt_command("predict", str(run), "--split", "validation", "--output", str(tmp_path / "pets.jsonl")),
                            capture_output=True, text=True, env=env, timeout=300)
    assert picked.returncode == 0 and "of user:pets" in picked.stderr, picked.stderr  # the one task that predicts
    every = subprocess.run(helpers.mt_command("predict", str(run), "--task", "all", "--split", "validation", "--output",
                                              str(tmp_path / "all")), capture_output=True, text=True, env=env, timeout=300)
    assert every.returncode == 0, every.stderr
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["user_pets.jsonl"]
    exported = subprocess.run(helpers.mt_command("export", str(run), str(tmp_path / "plain"), "--task", "lm"), capture_output=True,
                              text=True, env=env, timeout=300)
    assert exported.returncode == 0, exported.stderr
    _fills_as_the_run_scores(run, tmp_path / "plain")
    checked = subprocess.run(helpers.mt_command("check", str(config)), capture_output=True, text=True, env=env, timeout=300)
    assert checked.returncode == 0, checked.stderr
    assert "masked_lm" in checked.stdout and "user:lm" not in checked.stderr  # no export note: it exports


def _fills_as_the_run_scores(run: Path, exported: Path) -> None:
    """The exported fill-mask model restores the validation split's masked tokens as mt evaluate scored them."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    from mtcore.data.masking import Masker

    plain = AutoModelForMaskedLM.from_pretrained(exported).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported)
    validation = yaml.safe_load((run / "config.yaml").read_text())["tasks"][0]["define"]["files"]["validation"]
    rows = [json.loads(line)["text"] for line in Path(validation).read_text().splitlines()]
    encoded = [tokenizer(text)["input_ids"] for text in rows]
    masked, labels = Masker(tokenizer, "user:lm")(encoded, list(range(len(encoded))))
    right = total = 0
    for ids, targets in zip(masked, labels):
        with torch.no_grad():
            logits = plain(input_ids=torch.tensor([ids])).logits[0]
        for position, target in enumerate(targets):
            if target >= 0:
                right += int(logits[position].argmax()) == target
                total += 1
    final = json.loads((run / "summary.json").read_text())["tasks"]["user:lm"]["final"]["mlm_accuracy"]
    assert right / total == pytest.approx(final, abs=1e-9)
    filled = pipeline("fill-mask", model=str(exported))(f"the big cat sat on the {tokenizer.mask_token}")
    assert filled[0]["token_str"] in ("mat", "rug")  # what the grammar puts there


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "modernbert", "deberta-v2", "deberta-v3", "electra", "albert"])
def test_the_head_starts_from_the_checkpoints_own_and_exports_back_to_it(arch, tmp_path):
    """A pre-training checkpoint's masked-LM head (cls.predictions, lm_head, vocab_*, head) is where the masked_lm head
    starts: the model scores as transformers' AutoModelForMaskedLM of that checkpoint, and mt export writes it back."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    from mtcore.export.hf import export_task
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "checkpoint", {"deberta-v3": "deberta-v2", "albert": "bert"}.get(arch, arch), words=WORDS)
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(tmp_path / "checkpoint")
    if arch == "albert":  # predictions.*: narrower embeddings, gelu_new
        from transformers import AlbertConfig

        config = AlbertConfig(vocab_size=config.vocab_size, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    if arch == "electra":  # a generator whose embeddings are narrower than its hidden states
        config.embedding_size = config.hidden_size // 2
    if arch == "deberta-v3":  # DeBERTa-v2's other layout: lm_predictions.lm_head
        config.legacy = False
    pretrained = AutoModelForMaskedLM.from_config(config).eval()
    with torch.no_grad():  # biases and norms away from their initial 0 and 1, so that each must land in its place
        for name, parameter in pretrained.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                parameter.add_(torch.randn_like(parameter) * 0.1)
    pretrained.save_pretrained(tmp_path / "checkpoint")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "checkpoint")
    model = MultitaskModel(str(tmp_path / "checkpoint"), [Task(name="lm", kind="masked_lm", plugin="user")], tokenizer=tokenizer)
    assert model.heads["user:lm"].pretrained is not None
    ids = tokenizer(["the big cat sat", "a dog"], padding=True, return_tensors="pt")
    inputs = {"input_ids": ids["input_ids"], "attention_mask": ids["attention_mask"]}
    real = ids["attention_mask"].bool()
    with torch.no_grad():
        theirs = pretrained(**inputs).logits
        ours = model("user:lm", **inputs).logits
    assert float((ours - theirs).abs()[real].max()) < 1e-5
    model.save_pretrained(tmp_path / "model")
    export_task(str(tmp_path / "model"), "user:lm", tmp_path / "exported")
    with torch.no_grad():
        back = AutoModelForMaskedLM.from_pretrained(tmp_path / "exported").eval()(**inputs).logits
    assert float((back - theirs).abs()[real].max()) < 1e-5
    fresh = MultitaskModel(str(tmp_path / "model"), [Task(name="lm", kind="masked_lm", plugin="user")])
    assert fresh.heads["user:lm"].pretrained is None  # an mtcore model's encoder folder holds no pre-training head


def test_a_tokenizer_without_a_mask_token_is_refused_naming_the_task():
    from types import SimpleNamespace

    from mtcore.data.masking import Masker

    with pytest.raises(ConfigError, match="task 'user:lm' \\(masked_lm\\): tokenizer SimpleNamespace has no mask token"):
        Masker(SimpleNamespace(mask_token_id=None, all_special_ids=[0]), "user:lm")


def test_training_rows_get_new_masks_each_draw_and_a_resumed_sampler_draws_the_same(corpus):
    from types import SimpleNamespace

    from datasets import Dataset
    from transformers import AutoTokenizer

    from mtcore.data.collate import Collator
    from mtcore.data.masking import WORDS, Masker, token_words
    from mtcore.sampling.batch_sampler import MultitaskBatchSampler

    tokenizer = AutoTokenizer.from_pretrained(corpus["encoder"])
    masker = Masker(tokenizer, "user:lm", whole_words=True)
    rng = random.Random(2)
    encoded = tokenizer([_sentence(rng).replace("cat", "catzq") for _ in range(12)])
    originals, words = encoded["input_ids"], [token_words(encoded, i) for i in range(12)]
    masked, labels = masker(originals, list(range(12)), words)
    collator = Collator(tokenizer.pad_token_id, "masked_lm")
    collator.masker = masker
    rows = Dataset.from_dict({"input_ids": masked, "labels": labels, "idx": list(range(12)), WORDS: words})
    data = {"lm": SimpleNamespace(task=SimpleNamespace(id="user:lm", evaluate_only=False), splits={"train": rows}, collator=collator,
                                  lengths=lambda split: [len(ids) for ids in originals])}

    def drawn(sampler, steps):
        out = []
        for batch, _ in zip(sampler, range(steps)):
            ids, targets = batch.data["input_ids"], batch.data["labels"]
            for j, row in enumerate(batch.idx):
                kept = batch.data["attention_mask"][j].bool()
                restored = torch.where(targets[j] >= 0, targets[j], ids[j])[kept].tolist()
                assert restored == originals[row] and bool((targets[j] >= 0).any())  # every draw masks some of the row's own tokens
                group = np.asarray(words[row])
                chosen = (targets[j][kept] >= 0).numpy()
                assert all(chosen[group == w].all() or not chosen[group == w].any() for w in set(group[group >= 0].tolist()))
                assert all(t == -100 or t not in tokenizer.all_special_ids for t in targets[j].tolist())
                out.append((row, ids[j][kept].tolist()))
        return out

    sampler = MultitaskBatchSampler(data, "train", 4, seed=5, num_epochs=3)
    epochs = [drawn(sampler, 3) for _ in range(3)]
    by_row = [dict(epoch) for epoch in epochs]
    assert sum(by_row[0][r] != by_row[1][r] for r in range(12)) >= 8  # new masks each epoch

    first = MultitaskBatchSampler(data, "train", 4, seed=5, num_epochs=3)
    drawn(first, 2)
    state = first.state_dict()
    rest = drawn(first, 4)
    resumed = MultitaskBatchSampler(data, "train", 4, seed=5, num_epochs=3)
    resumed.load_state_dict(state)
    assert drawn(resumed, 4) == rest


def test_blank_rows_have_nothing_to_mask_and_train_and_score_as_nothing(corpus, tmp_path, helpers):
    """Blank texts get no target; length grouping batches them together: evaluation skips such a batch, and training
    (also under a gradient combiner, which clips the heads' gradients in place) trains on nothing for it."""
    config = json.loads(json.dumps(corpus["config"]))
    for split in ("train", "validation"):
        rows = Path(config["tasks"][0]["define"]["files"][split]).read_text(encoding="utf-8").splitlines()[:40]
        blank = tmp_path / f"{split}.jsonl"
        blank.write_text("".join(line + "\n" for line in rows + [json.dumps({"text": " " * (i % 3)}) for i in range(16)]), encoding="utf-8")
        config["tasks"][0]["define"]["files"][split] = str(blank)
    config.update(schedule={"max_steps": 12, "warmup_steps": 1}, evaluation={"every": 6, "at_end": True},
                  batching={"batch_size": 8, "eval_batch_size": 8}, loss={"strategy": "pcgrad"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = helpers.subprocess_env()
    done = subprocess.run(helpers.mt_command("train", str(path), "--output-dir", str(tmp_path / "run")), capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    evaluated = subprocess.run(helpers.mt_command("evaluate", str(tmp_path / "run"), "--tasks", "lm", "--input",
                                                  config["tasks"][0]["define"]["files"]["validation"], "--batch-size", "4", "--json"),
                               capture_output=True, text=True, env=env, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["tasks"]["user:lm"]["metrics"]["perplexity"] > 1


def test_a_run_of_masked_lm_tasks_alone_weighs_them_and_a_model_of_them_predicts_nothing(corpus, tmp_path):
    from typer.testing import CliRunner

    from mtcore.cli.app import app
    from mtcore.model import MultitaskModel
    from mtcore.train.eval_tasks import aggregate_weights

    lm, other = (Task(name=n, kind="masked_lm", plugin="user") for n in ("lm", "other"))
    pets = Task(name="pets", kind="text_classification", labels=("cat", "dog"), plugin="user")
    assert aggregate_weights({}, [other], [lm]) == {"user:other": 0.0}  # the trained one counts: nothing else is scored
    assert aggregate_weights({}, [], [lm, pets]) == {"user:lm": 0.0}
    assert aggregate_weights({"lm": 1.0}, [], [lm, pets]) == {"lm": 1.0}
    from transformers import AutoTokenizer

    MultitaskModel(str(corpus["encoder"]), [lm], tokenizer=AutoTokenizer.from_pretrained(corpus["encoder"])).save_pretrained(tmp_path / "m")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "m"), "--task", "all", "--split", "validation", "--output",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2 and "no task of this model predicts anything" in result.output, result.output


def test_a_hub_checkpoint_in_the_cache_gives_its_pretraining_head_offline(tmp_path):
    """A hub id the encoder is loaded from (offline, from the cache: models--org--name/snapshots/<commit>/) gives its
    masked-LM head from the cached safetensors file; nothing is downloaded."""
    import shutil

    from transformers import AutoConfig, AutoModelForMaskedLM

    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "checkpoint", "bert", words=WORDS)
    torch.manual_seed(0)
    pretrained = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(tmp_path / "checkpoint")).eval()
    with torch.no_grad():
        pretrained.cls.predictions.bias.add_(torch.randn_like(pretrained.cls.predictions.bias))
    pretrained.save_pretrained(tmp_path / "checkpoint")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--mtcore-tests--tiny-mlm"
    shutil.copytree(tmp_path / "checkpoint", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit, encoding="utf-8")
    model = MultitaskModel("mtcore-tests/tiny-mlm", [Task(name="lm", kind="masked_lm", plugin="user")],
                           encoder_kwargs={"cache_dir": str(tmp_path / "cache")})
    head = model.heads["user:lm"]
    assert head.pretrained == "cls.predictions"
    assert torch.equal(head.bias.detach(), pretrained.cls.predictions.bias.detach())


@pytest.mark.parametrize("arch, change", [("bert", {"hidden_act": "relu"}), ("bert", {"hidden_act": "gelu_new"}),
                                          ("distilbert", {"activation": "relu"}), ("modernbert", {"classifier_activation": "silu"})])
def test_the_head_takes_the_activation_of_the_architectures_own_head(arch, change, tmp_path):
    from transformers import AutoConfig, AutoModelForMaskedLM

    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "checkpoint", arch, words=WORDS)
    config = AutoConfig.from_pretrained(tmp_path / "checkpoint")
    for key, value in change.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    pretrained = AutoModelForMaskedLM.from_config(config).eval()
    pretrained.save_pretrained(tmp_path / "checkpoint")
    model = MultitaskModel(str(tmp_path / "checkpoint"), [Task(name="lm", kind="masked_lm", plugin="user")])
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        difference = (model("user:lm", input_ids=ids).logits - pretrained(input_ids=ids).logits).abs().max()
    assert float(difference) < 1e-5


def test_a_checkpoint_with_an_untied_decoder_is_not_where_the_head_starts(tmp_path):
    from transformers import AutoConfig, AutoModelForMaskedLM

    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "checkpoint", "bert", words=WORDS)
    config = AutoConfig.from_pretrained(tmp_path / "checkpoint")
    config.tie_word_embeddings = False
    AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / "checkpoint")
    model = MultitaskModel(str(tmp_path / "checkpoint"), [Task(name="lm", kind="masked_lm", plugin="user")])
    assert model.heads["user:lm"].pretrained is None  # its decoder is not the embeddings the head decodes with


def test_numbers_written_as_yaml_text_are_numbers():
    from mtcore.model.heads.masked_lm import MaskedLMHead

    assert Task(name="lm", kind="masked_lm", mask_probability="2e-1").mask_probability == 0.2
    assert MaskedLMHead(hidden_size=8, layer_norm_eps="1e-5").layer_norm.eps == 1e-5


def test_an_export_refusal_of_a_masked_lm_head_says_which_options_to_leave_out(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    from mtcore.export.hf import export_task
    from mtcore.export.mapping import ExportError
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "encoder", "bert", words=WORDS)
    config = AutoConfig.from_pretrained(tmp_path / "encoder")
    config.hidden_act = "relu"
    config.save_pretrained(tmp_path / "encoder")
    task = Task(name="lm", kind="masked_lm", plugin="user", head_options={"activation": "gelu"})
    model = MultitaskModel(str(tmp_path / "encoder"), [task], tokenizer=AutoTokenizer.from_pretrained(tmp_path / "encoder"))
    with pytest.raises(ExportError, match="train the masked_lm head without the activation and layer_norm_eps options"):
        export_task(model, "user:lm", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_distilling_a_run_of_masked_lm_tasks_alone_is_refused_as_such(corpus, tmp_path):
    from mtcore.train.config_io import load_config
    from mtcore.train.teachers import check_teachers
    from mtcore.train.validate import plan_run

    config = json.loads(json.dumps(corpus["config"]))
    config["tasks"] = config["tasks"][:1]
    config["distill"] = {"teacher": str(tmp_path / "teacher")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="every task this run trains is a masked_lm one"):
        check_teachers(plan_run(load_config(path), base_dir=tmp_path))


def test_a_tokenizer_without_word_boundaries_is_refused_for_whole_word_masking():
    """Judged on the tokenizer (one fixed text), not on the data: rows of one word are fine with a tokenizer that splits."""
    from types import SimpleNamespace

    from mtcore.data.masking import Masker

    class Fake:  # a fast tokenizer reporting these word ids for any text
        def __init__(self, word_ids):
            self.is_fast, self.mask_token_id, self.all_special_ids, self._ids = True, 4, [0, 1, 2, 3, 4], word_ids

        def __call__(self, text):
            return SimpleNamespace(word_ids=lambda: self._ids)

        def __len__(self):
            return 10

    with pytest.raises(ConfigError, match="reports 'one two three four' as one word"):
        Masker(Fake([None, 0, 0, 0, 0, None]), "user:lm", whole_words=True)
    assert Masker(Fake([None, 0, 1, 2, 3, None]), "user:lm", whole_words=True).whole_words


def test_a_head_on_narrower_embeddings_draws_from_its_own_seed_only(tmp_path):
    """ELECTRA's projection to the embeddings is made inside the head's forked generator: the global stream is left as it
    was, and the head's weights depend on its task id and the model's seed, not on the other tasks or their order."""
    from transformers import AutoConfig, AutoModel

    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "electra", "electra", words=WORDS)
    config = AutoConfig.from_pretrained(tmp_path / "electra")
    config.embedding_size = config.hidden_size // 2
    AutoModel.from_config(config).save_pretrained(tmp_path / "electra")
    lm = Task(name="lm", kind="masked_lm", plugin="user")
    pets = Task(name="pets", kind="text_classification", labels=("cat", "dog"), plugin="user")

    def built(tasks):
        torch.manual_seed(7)
        model = MultitaskModel(str(tmp_path / "electra"), tasks)
        return model.heads["user:lm"].dense.weight.detach().clone(), torch.rand(1)

    alone, after_alone = built([lm])
    both, _ = built([pets, lm])
    assert torch.equal(alone, both)
    torch.manual_seed(7)
    MultitaskModel(str(tmp_path / "electra"), [])
    assert torch.equal(torch.rand(1), after_alone)  # building the head drew nothing from the global stream


def test_a_run_on_an_untied_encoder_exports_with_its_bias_where_the_decoder_adds_it(tmp_path):
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    from mtcore.export.hf import export_task
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "encoder", "bert", words=WORDS)
    config = AutoConfig.from_pretrained(tmp_path / "encoder")
    config.tie_word_embeddings = False
    config.save_pretrained(tmp_path / "encoder")
    model = MultitaskModel(str(tmp_path / "encoder"), [Task(name="lm", kind="masked_lm", plugin="user")],
                           tokenizer=AutoTokenizer.from_pretrained(tmp_path / "encoder"))
    with torch.no_grad():
        model.heads["user:lm"].bias.copy_(torch.randn_like(model.heads["user:lm"].bias))
    export_task(model, "user:lm", tmp_path / "out")
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        theirs = AutoModelForMaskedLM.from_pretrained(tmp_path / "out").eval()(input_ids=ids).logits
        ours = model.eval()("user:lm", input_ids=ids).logits
    assert float((theirs - ours).abs().max()) < 1e-5


def test_a_saved_model_keeps_the_activation_and_epsilon_it_trained_with_whatever_later_code_reads(tmp_path, monkeypatch):
    from transformers import AutoConfig

    import mtcore.model.heads.masked_lm as masked_lm
    from mtcore.model import MultitaskModel
    from mtcore.testing import build_tiny_encoder

    build_tiny_encoder(tmp_path / "checkpoint", "bert", words=WORDS)
    config = AutoConfig.from_pretrained(tmp_path / "checkpoint")
    config.hidden_act, config.layer_norm_eps = "gelu_new", 1e-7
    config.save_pretrained(tmp_path / "checkpoint")
    model = MultitaskModel(str(tmp_path / "checkpoint"), [Task(name="lm", kind="masked_lm", plugin="user")]).eval()
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "mtcore.json").read_text())["tasks"]["user:lm"]["head_options"]
    assert saved == {"activation": "gelu_new", "layer_norm_eps": pytest.approx(1e-7)}
    # a later version reading another activation and epsilon from the same config: the saved model is rebuilt as it trained
    monkeypatch.setattr(masked_lm, "own_activation_name", lambda config: "relu")
    reloaded = MultitaskModel.from_pretrained(tmp_path / "saved").eval()
    head = reloaded.heads["user:lm"]
    assert head.activation_name == "gelu_new" and head.layer_norm.eps == pytest.approx(1e-7)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        assert torch.allclose(reloaded("user:lm", input_ids=ids).logits, model("user:lm", input_ids=ids).logits, atol=1e-6)
    # the options given stay as given; one the head settled itself is no reason for encoder.load_heads to start anew
    given = MultitaskModel(str(tmp_path / "checkpoint"), [Task(name="lm", kind="masked_lm", plugin="user",
                                                               head_options={"activation": "tanh"})])
    assert given.heads["user:lm"].activation_name == "tanh"
    from mtcore.train.warm_start import load_saved_heads

    monkeypatch.undo()
    fresh = MultitaskModel(str(tmp_path / "checkpoint"), [Task(name="lm", kind="masked_lm", plugin="user")])
    notes = load_saved_heads(fresh, str(tmp_path / "saved"), {"user:lm": Task(name="lm", kind="masked_lm", plugin="user")})
    assert any("trained heads of user:lm loaded" in note for note in notes), notes


def test_an_activation_name_transformers_has_is_taken_and_a_misspelt_one_gets_did_you_mean():
    from mtcore.errors import UsageError
    from mtcore.model.heads.masked_lm import MaskedLMHead

    assert type(MaskedLMHead(8, activation="gelu_new").activation).__name__ == "NewGELUActivation"
    with pytest.raises(UsageError, match="did you mean 'gelu_new'"):
        MaskedLMHead(8, activation="gelu_neww")


def test_load_heads_takes_a_masked_lm_head_from_a_checkpoint_an_older_model_and_options_written_as_yaml_text(corpus, tmp_path, helpers):
    """The options a masked_lm head settles itself were compared with saved ones that a checkpoint's rebuilt model and a
    model saved before they were recorded lack: the trained head was thrown away ("None saved")."""
    import copy

    from mtcore import Trainer

    base = copy.deepcopy(corpus["config"])
    base.update(schedule={"max_steps": 4, "warmup_steps": 0}, evaluation={"every": None, "at_end": False},
                checkpoint={"every": 4, "keep_last": 1})
    Trainer(copy.deepcopy(base), output_dir=tmp_path / "first").train()
    older = tmp_path / "older"
    import shutil

    shutil.copytree(tmp_path / "first" / "model", older)
    manifest = json.loads((older / "mtcore.json").read_text(encoding="utf-8"))
    manifest["tasks"]["user:lm"]["head_options"] = {}  # as saved before the resolved options were recorded
    (older / "mtcore.json").write_text(json.dumps(manifest), encoding="utf-8")
    nulls = tmp_path / "nulls"
    shutil.copytree(older, nulls)
    manifest["tasks"]["user:lm"]["head_options"] = {"activation": None, "layer_norm_eps": None}  # given as null, saved so then
    (nulls / "mtcore.json").write_text(json.dumps(manifest), encoding="utf-8")
    given = copy.deepcopy(base)
    given["tasks"][0]["head_options"] = {"layer_norm_eps": "1e-12", "activation": "gelu"}  # YAML reads 1e-12 as text
    for name, path, config in (("from-checkpoint", tmp_path / "first" / "checkpoints" / "step-000004", base),
                               ("from-older", older, base), ("given-as-text", tmp_path / "first" / "model", given),
                               ("saved-as-null", nulls, base)):
        config = copy.deepcopy(config)
        config.update(encoder={"path": str(path), "load_heads": True}, schedule={"max_steps": 1, "warmup_steps": 0},
                      checkpoint={"every": None})
        Trainer(config, output_dir=tmp_path / name).train()
        [start] = [e for e in helpers.read_events(tmp_path / name) if e["event"] == "start"]
        assert any("trained heads of user:lm, user:pets loaded" in note for note in start["notes"]), (name, start["notes"])
