"""Collation: dynamic padding, label dtypes, multiple-choice shapes, BatchData moving in place."""

from __future__ import annotations

import math

import torch

from mtcore.data.batch import Batch, BatchData
from mtcore.data.collate import Collator

ROWS = [
    {"input_ids": [2, 5, 6, 3], "attention_mask": [1, 1, 1, 1], "token_type_ids": [0, 0, 0, 0], "labels": 1, "length": 4, "idx": 10},
    {"input_ids": [2, 7, 3, 8, 9, 3], "attention_mask": [1] * 6, "token_type_ids": [0, 0, 0, 1, 1, 1], "labels": 0, "length": 6, "idx": 11},
]


def test_pads_to_the_longest_row_with_the_pad_id():
    batch = Collator(pad_token_id=0, kind="pair_classification")(ROWS)
    assert isinstance(batch, BatchData) and set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].tolist() == [[2, 5, 6, 3, 0, 0], [2, 7, 3, 8, 9, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]]
    assert batch["labels"].tolist() == [1, 0]
    assert all(tensor.dtype == torch.int64 for tensor in batch.values())


def test_pad_to_multiple_of_and_a_pad_id_other_than_zero():
    batch = Collator(pad_token_id=1, kind="text_classification", pad_to_multiple_of=8, uses_token_type_ids=False)(ROWS)
    assert batch["input_ids"].shape == (2, 8) and "token_type_ids" not in batch
    assert batch["input_ids"][0].tolist() == [2, 5, 6, 3, 1, 1, 1, 1]
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 6]


def test_columns_from_dataset_slicing_give_the_same_batch():
    columns = {key: [row[key] for row in ROWS] for key in ROWS[0]}
    collator = Collator(pad_token_id=0, kind="pair_classification")
    from_rows, from_columns = collator(ROWS), collator(columns)
    assert all(torch.equal(from_rows[key], from_columns[key]) for key in from_rows)


def test_multiple_choice_collates_to_batch_choices_length():
    rows = [{"input_ids": [[2, 5, 3], [2, 6, 7, 3]], "labels": 1}, {"input_ids": [[2, 3], [2, 8, 3]], "labels": 0}]
    batch = Collator(pad_token_id=0, kind="multiple_choice", uses_token_type_ids=False)(rows)
    assert batch["input_ids"].shape == (2, 2, 4) and batch["attention_mask"].shape == (2, 2, 4)
    assert batch["input_ids"][1].tolist() == [[2, 3, 0, 0], [2, 8, 3, 0]]
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64
    assert "choice_mask" not in batch  # the same number of choices everywhere: nothing padded


def test_rows_with_fewer_choices_are_padded_with_masked_one_token_choices():
    rows = [{"input_ids": [[2, 5, 3], [2, 6, 7, 3]], "token_type_ids": [[0, 0, 1], [0, 0, 1, 1]], "labels": 1},
            {"input_ids": [[2, 9, 3], [2, 8, 3], [2, 4, 4, 4, 3]], "token_type_ids": [[0, 0, 1], [0, 0, 1], [0, 0, 1, 1, 1]], "labels": 2}]
    batch = Collator(pad_token_id=0, kind="multiple_choice", pad_to_multiple_of=8)(rows)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape == (2, 3, 8)
    assert batch["choice_mask"].tolist() == [[True, True, False], [True, True, True]] and batch["choice_mask"].dtype == torch.bool
    assert batch["input_ids"][0, 2].tolist() == [2] + [0] * 7  # the stand-in: the row's first token, attended
    assert batch["attention_mask"][0, 2].tolist() == [1] + [0] * 7 and batch["token_type_ids"][0, 2].tolist() == [0] * 8
    assert batch["input_ids"][1].tolist() == [[2, 9, 3, 0, 0, 0, 0, 0], [2, 8, 3, 0, 0, 0, 0, 0], [2, 4, 4, 4, 3, 0, 0, 0]]
    assert batch["labels"].tolist() == [1, 2]
    packed = Collator(0, "multiple_choice", padding_free=True)(rows)
    assert packed["cu_seqlens"].tolist() == [0, 3, 7, 8, 11, 14, 19]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    assert torch.equal(Collator(0, "multiple_choice")(columns)["input_ids"], Collator(0, "multiple_choice")(rows)["input_ids"])
    assert columns["input_ids"][0] == rows[0]["input_ids"] and len(rows[0]["token_type_ids"]) == 2  # the rows are left as they were


def test_token_labels_padded_with_ignore_index_and_float_labels():
    rows = [{"input_ids": [2, 5, 3], "labels": [-100, 1, -100]}, {"input_ids": [2, 3], "labels": [-100, -100]}]
    batch = Collator(0, "token_classification", uses_token_type_ids=False)(rows)
    assert batch["labels"].tolist() == [[-100, 1, -100], [-100, -100, -100]] and batch["labels"].dtype == torch.int64
    rows = [{"input_ids": [2, 3], "labels": [1.0, 0.0]}, {"input_ids": [2, 3], "labels": [0.0, 0.0]}]
    assert Collator(0, "multi_label")(rows)["labels"].dtype == torch.float32
    rows = [{"input_ids": [2, 3], "labels": 0.25}, {"input_ids": [2, 3], "labels": -1.0}]
    assert Collator(0, "regression")(rows)["labels"].tolist() == [0.25, -1.0]


def test_unlabelled_rows_leave_labels_out_and_mixed_rows_keep_their_no_label_marker():
    unlabelled = [{**row, "labels": -1} for row in ROWS]
    assert "labels" not in Collator(0, "pair_classification")(unlabelled)
    mixed = [ROWS[0], unlabelled[1]]
    assert Collator(0, "pair_classification")(mixed)["labels"].tolist() == [1, -100]
    rows = [{"input_ids": [2, 3], "labels": 0.5}, {"input_ids": [2, 3], "labels": math.nan}]
    labels = Collator(0, "regression")(rows)["labels"]
    assert labels.dtype == torch.float32 and labels[0].item() == 0.5 and math.isnan(labels[1].item())
    assert "labels" not in Collator(0, "regression")([rows[1]])
    rows = [{"input_ids": [2, 3], "labels": [1.0, 0.0]}, {"input_ids": [2, 3], "labels": [-1.0, -1.0]}]
    assert Collator(0, "multi_label")(rows)["labels"].tolist() == [[1.0, 0.0], [-1.0, -1.0]]
    mc = Collator(0, "multiple_choice")([{"input_ids": [[2, 3], [2, 4]], "labels": 1}, {"input_ids": [[2, 3], [2, 4], [2, 5]], "labels": -1}])
    assert mc["labels"].tolist() == [1, -100]


def test_batch_data_moves_in_place_and_returns_itself():
    data = Collator(0, "pair_classification")(ROWS)
    moved = data.to("cpu")
    assert moved is data
    meta = data.to("meta")  # another device, available without a GPU
    assert meta is data and all(tensor.device.type == "meta" for tensor in data.values())


def test_batch_carries_name_size_real_tokens_and_ids():
    batch = Collator(0, "pair_classification").batch("rsg:terra", ROWS)
    assert isinstance(batch, Batch)
    assert (batch.name, batch.size, batch.num_tokens, batch.idx) == ("rsg:terra", 2, 10, [10, 11])
    assert batch.to("cpu") is batch and batch.data["input_ids"].shape == (2, 6)


def test_a_batch_with_no_padded_position_goes_to_the_model_without_its_all_ones_mask():
    from mtcore.data.batch import model_inputs

    same_length = [ROWS[0], {**ROWS[0], "input_ids": [2, 9, 9, 3], "labels": 0}]
    full = Collator(0, "pair_classification")(same_length)
    assert full.no_padding and full["attention_mask"].all()
    assert set(model_inputs(full)) == {"input_ids", "token_type_ids", "labels"}
    assert all(model_inputs(full)[key] is full[key] for key in model_inputs(full))
    assert full.to("cpu").no_padding  # moving the tensors keeps the flag
    padded = [Collator(0, "pair_classification")(ROWS),  # rows of two lengths
              Collator(0, "pair_classification", pad_to_multiple_of=8)(same_length),  # padded up to 8
              Collator(0, "pair_classification", padding_free=True)(same_length),  # the packed encoder reads the mask
              Collator(0, "multiple_choice")([{"input_ids": [[2, 5, 3], [2, 6, 3]], "labels": 0}])]  # choices are flattened
    for batch in padded:
        assert not batch.no_padding and model_inputs(batch) is batch
    plain = {"input_ids": full["input_ids"], "attention_mask": full["attention_mask"]}
    assert model_inputs(plain) is plain  # a plugin collator's own dict is passed on as it is


def test_token_labels_longer_than_their_row_are_an_error_not_spilt_into_the_next_row():
    """The NumPy padding laid a fixed count of values: a row's extra label went silently into the next row."""
    import pytest

    rows = [{"input_ids": [2, 5, 3], "labels": [-100, 1, 0, 1]}, {"input_ids": [2, 6, 7, 3], "labels": [-100, 0, 1, -100]}]
    with pytest.raises(ValueError, match=r"hold 8 values for 7 token positions: a row's labels"):
        Collator(pad_token_id=0, kind="token_classification")(rows)
    rows[0]["labels"] = [-100, 1, -100]
    assert Collator(pad_token_id=0, kind="token_classification")(rows)["labels"].tolist() == [[-100, 1, -100, -100], [-100, 0, 1, -100]]
