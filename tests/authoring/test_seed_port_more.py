"""The seed port keeps the seed's semantics: epochs, evaluation passes, PARus, ``input`` rows, seed spellings."""

from __future__ import annotations

import collections

import pytest

from mtcore.errors import ConfigError
from mtcore.testing import build_tiny_encoder

WORDS = "the a cat dog sat on mat is not yes no river city big small red blue question passage".split()


def _danetqa(n: int = 24):
    from datasets import Dataset, DatasetDict

    def rows(k):
        return [{"question": f"is the cat {WORDS[i % 19]}", "passage": f"the cat sat on the mat {WORDS[i * 3 % 19]}", "label": bool(i % 2), "idx": i}
                for i in range(k)]
    return DatasetDict({"train": Dataset.from_list(rows(n)), "validation": Dataset.from_list(rows(8))})


def _terra(n: int = 20):
    from datasets import Dataset, DatasetDict

    def rows(k):
        return [{"premise": f"the dog is {WORDS[i % 19]}", "hypothesis": f"a dog is {WORDS[(i + 1) % 19]}",
                 "label": ["entailment", "not_entailment"][i % 2], "idx": i} for i in range(k)]
    return DatasetDict({"train": Dataset.from_list(rows(n)), "validation": Dataset.from_list(rows(6))})


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc") / "encoder", "bert", words=WORDS))


@pytest.fixture(scope="module")
def tasks(encoder, tmp_path_factory):
    from mtcore.seed import NLIPreprocess, Preprocessor, SequenceClassificationTask, Tasks, TokenizerConfig
    from mtcore.seed.ru import preprocess_danetqa

    cfg = TokenizerConfig(max_length=64)
    return Tasks([SequenceClassificationTask("danetqa", _danetqa(), Preprocessor([preprocess_danetqa]), cfg),
                  SequenceClassificationTask("terra", _terra(), Preprocessor([NLIPreprocess()]), cfg)],
                 encoder, cache_dir=str(tmp_path_factory.mktemp("tok")))


def _rows_seen(sampler):
    seen = collections.Counter()
    order = collections.defaultdict(list)
    for batch in sampler:
        for i in batch.idx:
            seen[(batch.name, i)] += 1
            order[batch.name].append(i)
    return seen, order


# ---- 1. an epoch is the seed's epoch -----------------------------------------------------------
def test_seed_sampler_epoch_holds_every_batch_once_and_its_length_never_changes(tasks):
    from mtcore.seed import MultitaskBatchSampler

    sampler = MultitaskBatchSampler(tasks.data, "train", batch_size=12)
    assert len(sampler) == sum(sampler.batches_in_epoch().values()) == 4  # danetqa 24 rows -> 2, terra 20 -> 2
    for epoch in range(3):
        steps = len(sampler)
        seen, _ = _rows_seen(sampler)
        assert steps == 4 and sum(1 for _ in seen) == 44
        assert set(seen.values()) == {1}, f"epoch {epoch} repeated rows"
    sizes = MultitaskBatchSampler(tasks.data, part="train", batch_sizes={"danetqa": 4, "terra": 6})
    assert len(sizes) == 6 + 4 and [sizes.steps_in_epoch(e) for e in range(4)] == [10] * 4


def test_seed_readme_schedule_reaches_zero(tasks, encoder):
    import torch
    from transformers import get_scheduler

    from mtcore.seed import MultitaskBatchSampler, MultitaskModel

    model = MultitaskModel(encoder, tasks.heads)
    train_sampler = MultitaskBatchSampler(tasks.data, "train", batch_size=12)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    num_epochs = 3
    num_training_steps = num_epochs * len(train_sampler)
    lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)
    done = 0
    for _ in range(num_epochs):
        for _batch in train_sampler:
            optimizer.step()
            lr_scheduler.step()
            done += 1
    assert done == num_training_steps and lr_scheduler.get_last_lr() == [0.0]


def test_seed_sampler_keywords(tasks):
    from mtcore.seed import MultitaskBatchSampler

    ordered = MultitaskBatchSampler(tasks.data, part="train", batch_size=12, shuffle_data=False)
    _, order = _rows_seen(ordered)
    assert order["danetqa"] == list(range(24)) and order["terra"] == list(range(20))
    mixed = MultitaskBatchSampler(tasks.data, "train", batch_size=12, shuffle_task_data={"terra": False})
    _, order = _rows_seen(mixed)
    assert order["terra"] == list(range(20)) and sorted(order["danetqa"]) == list(range(24)) != order["danetqa"]
    assert MultitaskBatchSampler(tasks.data, parts={"danetqa": "validation", "terra": "validation"}).split == "validation"
    for call, needle in [(lambda: MultitaskBatchSampler(tasks.data, parts={"danetqa": "train", "terra": "validation"}), "one split"),
                         (lambda: MultitaskBatchSampler(tasks.data, 12), "batch_size=12"),
                         (lambda: MultitaskBatchSampler(tasks, "train"), "tasks.data"),
                         (lambda: MultitaskBatchSampler(tasks.data, "train", stop_strategy="longest"), "MetabatchSampler")]:
        with pytest.raises(ConfigError, match=needle) as info:
            call()
        assert "\n" not in str(info.value)


# ---- 2. evaluation passes read every row once ----------------------------------------------------
@pytest.mark.parametrize("batch_size", [3, 4])
def test_seed_sampler_on_validation_reads_each_row_once_in_order(tasks, batch_size):
    from mtcore.seed import MultitaskBatchSampler

    seen, order = _rows_seen(MultitaskBatchSampler(tasks.data, "validation", batch_size=batch_size, shuffle=False))
    assert order == {"danetqa": list(range(8)), "terra": list(range(6))}
    seen, _ = _rows_seen(MultitaskBatchSampler(tasks.data, "validation", batch_size=batch_size))
    assert len(seen) == 14 and set(seen.values()) == {1}


def test_core_sampler_on_validation_reads_each_row_once(tasks):
    from mtcore.sampling.batch_sampler import MultitaskBatchSampler as CoreSampler

    for shuffle in (True, False):
        sampler = CoreSampler(tasks.data, "validation", batch_size=3, shuffle=shuffle)
        seen, _ = _rows_seen(sampler)
        assert len(seen) == 14 and set(seen.values()) == {1} and len(sampler) == 3 + 2
    train = CoreSampler(tasks.data, "train", batch_size=12)
    assert train.sampler.name == "proportional"  # training keeps mtcore's sampling


# ---- 3. PARus ----------------------------------------------------------------------------------
def test_parus_rows_make_a_multiple_choice_task(encoder, tmp_path):
    from datasets import Dataset, DatasetDict

    from mtcore.seed import MultitaskBatchSampler, MultitaskModel, Preprocessor, SequenceClassificationTask, Tasks, TokenizerConfig
    from mtcore.seed.ru import preprocess_parus

    rows = [{"premise": f"the cat sat {i}.", "question": ["cause", "effect"][i % 2], "choice1": "the dog is big",
             "choice2": f"the mat is red {i}", "label": i % 2, "idx": i} for i in range(8)]
    parus = SequenceClassificationTask("parus", DatasetDict({"train": Dataset.from_list(rows)}), Preprocessor([preprocess_parus]),
                                       TokenizerConfig(max_length=64))
    tasks = Tasks([parus], encoder, cache_dir=str(tmp_path))
    assert tasks.heads["parus"].kind.value == "multiple_choice"
    batch = next(iter(MultitaskBatchSampler(tasks.data, "train", batch_size=2, shuffle=False)))
    assert batch.data["input_ids"].dim() == 3  # rows x choices x tokens: the choices reach the model
    assert "dog" in tasks.tokenizer.decode(batch.data["input_ids"][0][0])
    assert MultitaskModel(encoder, tasks.heads).forward(batch.name, **batch.data).loss is not None


# ---- 4. the seed's "input" field ----------------------------------------------------------------
def test_seed_input_field_is_text_or_a_pair(encoder, tmp_path):
    from datasets import Dataset, DatasetDict

    from mtcore.seed import Preprocessor, SequenceClassificationTask, Tasks

    def headline(sample):
        return {"input": (sample["premise"], sample["hypothesis"]), "label": sample["label"]}

    tweets = DatasetDict({"train": Dataset.from_list([{"input": f"{WORDS[i]} day", "label": i % 3} for i in range(9)])})
    tasks = Tasks([SequenceClassificationTask("pair", _terra(), Preprocessor([headline])), SequenceClassificationTask("tweets", tweets)],
                  encoder, cache_dir=str(tmp_path))
    assert tasks.heads["pair"].kind.value == "pair_classification" and tasks.heads["tweets"].kind.value == "text_classification"
    assert tasks.heads["tweets"].labels == ("0", "1", "2")
    first = tasks.data["pair"].splits["train"][0]["input_ids"]
    assert tasks.tokenizer.decode(first).count("[SEP]") == 2


# ---- 5. the seed's spellings ---------------------------------------------------------------------
def test_nli_preprocess_takes_the_seed_keywords():
    from mtcore.seed import NLIPreprocess, NLIPreprocessor

    step = NLIPreprocessor(premise_field="sentence1", hypothesis_field="sentence2", label_field_in="gold_label", label_field="label")
    assert NLIPreprocessor is NLIPreprocess
    row = step({"sentence1": "a", "sentence2": "b", "gold_label": "neutral"})
    assert (row["text"], row["text_pair"], row["label"]) == ("a", "b", "neutral")
    for bad in ({"input_field": "x"}, {"premise_feild": "a"}):
        with pytest.raises(ConfigError) as info:
            NLIPreprocess(**bad)
        assert "\n" not in str(info.value) and "NLIPreprocess" in str(info.value)


def test_tokenizer_config_takes_the_seed_keywords():
    from mtcore.seed import TokenizerConfig

    assert TokenizerConfig(max_length=None).max_length == 512
    cfg = TokenizerConfig(max_length=128, padding="max_length", init_config={"do_lower_case": True}, add_special_tokens=True, stride=0,
                          return_token_type_ids=True)
    assert cfg.max_length == 128 and cfg.init_config == {"do_lower_case": True}
    for bad, needle in [({"add_special_tokens": False}, "add_special_tokens=True"), ({"return_overflowing_tokens": True}, "False"),
                        ({"paddng": True}, "did you mean 'padding'")]:
        with pytest.raises(ConfigError, match=needle) as info:
            TokenizerConfig(**bad)
        assert "\n" not in str(info.value)


def test_sequence_classification_task_takes_the_seed_arguments(encoder):
    from mtcore.seed import NLIPreprocess, SequenceClassificationTask

    terra = SequenceClassificationTask(name="t", dataset_dict=_terra(), num_labels=2, preprocessor=[NLIPreprocess()])
    assert terra.to_task(encoder).labels == ("entailment", "not_entailment")
    from datasets import Dataset, DatasetDict

    two_seen = DatasetDict({"train": Dataset.from_list([{"text": "a", "label": i % 2} for i in range(4)])})
    assert SequenceClassificationTask("n", two_seen, num_labels=3).to_task().labels == ("0", "1", "2")
    for call, needle in [(lambda: SequenceClassificationTask("t", _terra(), [NLIPreprocess()], num_labels=3).to_task(), "num_labels=3"),
                         (lambda: SequenceClassificationTask("t", _terra(), compute_metrics=lambda p: {}), "metrics="),
                         (lambda: SequenceClassificationTask("t", _terra(), 2), "num_labels=2"),
                         (lambda: SequenceClassificationTask(_terra(), "t"), "name comes first")]:
        with pytest.raises(ConfigError, match=needle) as info:
            call()
        assert "\n" not in str(info.value)


def test_nlinears_task_and_head_are_the_mlp_head(encoder, tmp_path):
    import torch.nn.functional as F

    from mtcore.model.heads.classification import MLPHead
    from mtcore.seed import NLIPreprocess, SequenceClassificationTask, Tasks
    from mtcore.seed.classification import NLinearsHead, NLinearsSequenceClassificationTask

    deep = NLinearsSequenceClassificationTask("deep", _terra(), [NLIPreprocess()], num_layers=3, dropout=0.2, activation_fun=F.gelu)
    task = deep.to_task()
    assert task.head == "mlp" and dict(task.head_options) == {"num_layers": 3, "dropout_in": 0.2, "activation": "gelu", "pooling": "pooler"}
    assert issubclass(NLinearsHead, MLPHead)  # built by hand with the seed's keywords it says what to do instead
    named = SequenceClassificationTask("named", _terra(), [NLIPreprocess()], head=NLinearsHead, head_options={"num_layers": 3})
    assert named.to_task().head == "mlp"
    from mtcore.seed import MultitaskModel

    model = MultitaskModel(encoder, Tasks([deep], encoder, cache_dir=str(tmp_path)).heads)
    assert sum(1 for m in model.heads["deep"].layers if m.__class__.__name__ == "Linear") == 3


def test_metabatch_sampler_yields_the_seed_s_dicts(tasks, encoder):
    from mtcore.seed import MetabatchSampler, MultitaskModel

    model = MultitaskModel(encoder, tasks.heads)
    longest = MetabatchSampler(tasks.data, "train", batch_size=8, stop_strategy="longest")  # danetqa 3 batches, terra 3
    metabatch = next(iter(longest))
    assert set(metabatch) == {"danetqa", "terra"}
    loss = sum(model.forward(name, **data).loss for name, data in metabatch.items())
    assert loss.requires_grad
    small = MetabatchSampler(tasks.data, part="train", batch_size=12, batch_sizes={"terra": 5}, stop_strategy="shortest")
    assert len(small) == 2 and len(list(small)) == 2
    by_task = MetabatchSampler(tasks.data, "train", batch_size=12, batch_sizes={"terra": 5}, stop_strategy="terra")
    assert len(by_task) == 4 and len(list(by_task)) == 4
    with pytest.raises(ConfigError, match="stop_strategy 'nope'"):
        MetabatchSampler(tasks.data, "train", stop_strategy="nope")


def test_tasks_and_model_take_the_seed_keywords(encoder, tmp_path):
    from mtcore.seed import MultitaskModel, NLIPreprocess, SequenceClassificationTask, Tasks

    terra = SequenceClassificationTask("terra", _terra(), [NLIPreprocess()])
    tasks = Tasks([terra], model_path=encoder, cache_dir=str(tmp_path))
    model = MultitaskModel(encoder_path=encoder, task_heads=tasks.heads)
    assert tasks.model is model and list(model.heads.keys()) == ["terra"]
    with pytest.raises(ConfigError, match="list of tasks comes first"):
        Tasks(encoder, [terra])


def test_a_custom_head_in_a_plain_heads_dict_gives_tasks_model_in_training_mode(encoder, tmp_path):
    """Seed notebook 3: ``{**tasks.heads, name: my_head}`` is a plain dict; the README then trains ``tasks.model``."""
    import torch.nn as nn

    from mtcore.seed import MultitaskModel, NLIPreprocess, SequenceClassificationTask, Tasks

    tasks = Tasks([SequenceClassificationTask("terra", _terra(), [NLIPreprocess()])], encoder, cache_dir=str(tmp_path))
    model = MultitaskModel(encoder, {**tasks.heads, "terra": nn.Linear(32, 2)})
    assert model.training and all(m.training for m in model.modules())
    assert tasks.model is model
    assert model.tokenizer is tasks.tokenizer


@pytest.mark.parametrize("stored, expected", [
    (["1", "2", "10", "2"], ("1", "2", "10")),   # number order, not text order
    ([0.0, 1.0, 0.0, 1.0], ("0", "1")),           # whole-number floats are class ids
])
def test_inferred_labels_of_numbers_stored_as_text_or_floats(stored, expected, encoder, tmp_path):
    from datasets import Dataset, DatasetDict

    from mtcore.seed import SequenceClassificationTask

    rows = [{"text": f"the cat {i}", "label": value} for i, value in enumerate(stored)]
    task = SequenceClassificationTask("s", DatasetDict({"train": Dataset.from_list(rows)}))
    assert task.infer_labels()[0] == expected
    bad = SequenceClassificationTask("s", DatasetDict({"train": Dataset.from_list([{"text": "a", "label": 0.5}, {"text": "b", "label": 1.5}])}))
    with pytest.raises(ConfigError, match="labels of type float that are not class ids 0, 1, ...; pass labels="):
        bad.infer_labels()
