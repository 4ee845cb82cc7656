"""Holding validation rows out of training data (data/split.py)."""

from __future__ import annotations

import numpy as np

from textheads.data.dataset import load_labelled
from textheads.data.split import stratified_split
from textheads.specs import HeadSpec


def test_a_head_with_a_single_label_is_split_stratified() -> None:
    # One label is one column: a "binary" target that iterstrat refused with a traceback.
    rows = [{"text": f"text {i}", "topics": ["code"] if i % 2 else []} for i in range(20)]
    data, specs = load_labelled(rows, [HeadSpec(name="topics", kind="multilabel")], ["text"], split="train", allow_new_labels=True)
    train, validation, too_few = stratified_split(data, specs, 0.2, seed=0)
    assert (len(train), len(validation), too_few) == (16, 4, [])
    assert int(validation.targets["topics"].values.sum()) == 2  # half the held-out rows, as in the data
    assert sorted(np.concatenate([train.lines, validation.lines]).tolist()) == list(range(1, 21))
