"""Threshold tuning and the top-1 fallback."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from textheads.decisions import apply_top1_fallback
from textheads.specs import HeadSpec
from textheads.thresholds import GRID, tune_global, tune_per_label, tuned_spec


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random((400, 3)) < [0.5, 0.1, 0.01]).astype(int)
    # Label 0 separates at 0.7, label 1 at 0.2; label 2 has ~4 positives.
    prob = np.where(y == 1, rng.uniform([0.7, 0.2, 0.5], [1.0, 0.6, 1.0], (400, 3)), rng.uniform(0, [0.69, 0.19, 0.6], (400, 3)))
    return y, prob


def test_per_label_thresholds_maximise_each_labels_f1() -> None:
    y, prob = _data()
    thresholds, tuned = tune_per_label(y, prob, min_positives=5)
    for j in (0, 1):
        assert tuned[j]
        best = max(f1_score(y[:, j], prob[:, j] >= t, zero_division=0) for t in GRID)
        assert f1_score(y[:, j], prob[:, j] >= thresholds[j]) == best
    assert 0.6 < thresholds[0] <= 0.7 and 0.1 < thresholds[1] <= 0.2


def test_rare_labels_fall_back_to_the_global_threshold() -> None:
    y, prob = _data()
    thresholds, tuned = tune_per_label(y, prob, min_positives=1000)
    assert not tuned.any()
    assert np.all(thresholds == tune_global(y, prob))


def test_tuned_spec_stores_thresholds_by_label() -> None:
    y, prob = _data()
    spec, untuned = tuned_spec(HeadSpec(name="t", kind="multilabel", labels=["a", "b", "c"]), y, prob)
    assert set(spec.threshold) == {"a", "b", "c"}
    assert spec.thresholds()[0] > 0.6
    assert untuned == (["c"] if y[:, 2].sum() < 5 else [])


def test_tuned_thresholds_beat_one_half() -> None:
    y, prob = _data()
    thresholds, _ = tune_per_label(y, prob)
    assert f1_score(y, prob >= thresholds, average="macro") > f1_score(y, prob >= 0.5, average="macro")


def test_top1_fallback_fills_empty_rows_only() -> None:
    decisions = np.array([[0, 0, 0], [1, 0, 0]])
    prob = np.array([[0.1, 0.4, 0.2], [0.9, 0.8, 0.1]])
    assert apply_top1_fallback(decisions, prob).tolist() == [[0, 1, 0], [1, 0, 0]]


def test_ties_keep_the_threshold_nearest_one_half() -> None:
    # Perfectly separated: every threshold from 0.21 to 0.8 gives F1 = 1; 0.5 is kept.
    y = np.array([[1], [1], [0], [0]] * 5)
    prob = np.array([[0.9], [0.81], [0.2], [0.1]] * 5)
    thresholds, _ = tune_per_label(y, prob, min_positives=1)
    assert thresholds[0] == 0.5
