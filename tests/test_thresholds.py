"""Threshold tuning and the top-1 fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import make_rows
from textheads.decisions import apply_top1_fallback
from textheads.specs import HeadSpec
from textheads.thresholds import GRID, f1_per_label, tune_global, tune_per_label, tuned_spec


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


def test_labels_under_min_positives_get_the_lowest_threshold_of_their_best_f1() -> None:
    y, prob = _data()
    thresholds, tuned = tune_per_label(y, prob, min_positives=1000)
    assert not tuned.any()
    scores = f1_per_label(y, prob, GRID)
    assert thresholds.tolist() == [GRID[scores[:, j] == scores[:, j].max()].min() for j in range(3)]


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


def _rare_label_data() -> tuple[np.ndarray, np.ndarray]:
    """Label 0 common (separates at 0.7); label 1 with 2 positives, both near 0.9."""
    rng = np.random.default_rng(1)
    y = np.zeros((300, 2), dtype=int)
    y[:100, 0] = 1
    y[[5, 150], 1] = 1
    prob = np.where(y == 1, rng.uniform(0.7, 1.0, (300, 2)), rng.uniform(0.0, 0.69, (300, 2)))
    prob[:, 1] = np.where(y[:, 1] == 1, [0.9], rng.uniform(0.0, 0.3, 300))
    return y, prob


def test_a_label_with_few_positives_gets_the_lowest_threshold_of_its_best_f1() -> None:
    y, prob = _rare_label_data()
    global_ = tune_global(y, prob)
    thresholds, tuned = tune_per_label(y, prob)
    assert tuned.tolist() == [True, False]
    # Label 1's 2 positives score 0.9, its negatives under 0.3: F1 is 1 from 0.30 to 0.9, and
    # the label keeps its recall at 0.30, not at the global threshold nor near 0.5.
    assert prob[y[:, 1] == 0, 1].max() < 0.3
    assert thresholds[1] == pytest.approx(0.3)
    assert global_ != pytest.approx(0.3)


def test_a_label_without_validation_positives_gets_the_global_threshold() -> None:
    y, prob = _rare_label_data()
    y[:, 1] = 0
    thresholds, _ = tune_per_label(y, prob)
    assert thresholds[1] == tune_global(y, prob)


def test_a_fitted_rare_label_gets_its_own_threshold(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from textheads import TextClassifier

    rows = make_rows(120, seed=3, missing=False)
    validation = make_rows(40, seed=4, missing=False)
    for i, row in enumerate(rows + validation):
        row["tags"] = ["rare"] if i % 20 == 0 else ["common"] if i % 2 else []
    assert sum(row["tags"] == ["rare"] for row in validation) == 2
    clf = TextClassifier(
        {"tags": {"kind": "multilabel", "labels": ["common", "rare"]}},
        encoder=str(tiny_encoder_dir),
        max_length=32,
        train={"freeze": "encoder", "epochs": 3, "seed": 1, "cache_dir": str(tmp_path / "cache")},
    )
    messages: list[str] = []
    clf.fit(rows, validation=validation, show_progress=False, echo=messages.append)
    y = np.array([[int(label in r["tags"]) for label in ("common", "rare")] for r in validation])
    prob = clf.predict_proba([r["text"] for r in validation])["tags"]
    scores = f1_per_label(y, prob, GRID)[:, 1]
    stored = clf.heads_["tags"].thresholds_by_label()["rare"]
    assert stored == pytest.approx(GRID[scores == scores.max()].min())  # the lowest of its best F1
    assert stored != pytest.approx(tune_global(y, prob))  # not the global threshold, as before
    assert any("fewer than 5 validation positives for rare" in m for m in messages)
