"""Threshold tuning and the top-1 fallback."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import make_rows
from textheads.config import build_config
from textheads.decisions import apply_top1_fallback
from textheads.errors import ConfigError
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


def _rare_label_data() -> tuple[np.ndarray, np.ndarray]:
    """Label 0 common (separates at 0.7); label 1 with 2 positives, both near 0.9."""
    rng = np.random.default_rng(1)
    y = np.zeros((300, 2), dtype=int)
    y[:100, 0] = 1
    y[[5, 150], 1] = 1
    prob = np.where(y == 1, rng.uniform(0.7, 1.0, (300, 2)), rng.uniform(0.0, 0.69, (300, 2)))
    prob[:, 1] = np.where(y[:, 1] == 1, [0.9], rng.uniform(0.0, 0.3, 300))
    return y, prob


def test_shrinkage_weighs_a_rare_labels_own_threshold_by_its_positives() -> None:
    y, prob = _rare_label_data()
    own, _ = tune_per_label(y, prob, min_positives=1)
    global_ = tune_global(y, prob)
    thresholds, tuned = tune_per_label(y, prob, shrinkage=10)
    assert tuned.tolist() == [True, False]
    # 2 positives: 2/12 of its own threshold, 10/12 of the global one (not the global one alone).
    assert thresholds[1] == pytest.approx(2 / 12 * own[1] + 10 / 12 * global_)
    assert thresholds[1] != pytest.approx(global_)
    assert thresholds[0] == pytest.approx(100 / 110 * own[0] + 10 / 110 * global_)


def test_no_shrinkage_keeps_the_global_fallback() -> None:
    y, prob = _rare_label_data()
    thresholds, _ = tune_per_label(y, prob, shrinkage=0)
    assert thresholds[1] == tune_global(y, prob)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({"kind": "multilabel", "threshold_shrinkage": -1}, "heads.t.threshold_shrinkage: Input should be greater than or equal to 0"),
        ({"kind": "multiclass", "threshold_shrinkage": 10}, "threshold_shrinkage applies to multilabel heads only"),
    ],
)
def test_threshold_shrinkage_is_checked(head: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config({"heads": {"t": head}})


def test_a_fitted_rare_label_gets_the_shrunk_threshold(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from textheads import TextClassifier

    rows = make_rows(120, seed=3, missing=False)
    validation = make_rows(40, seed=4, missing=False)
    for i, row in enumerate(rows + validation):
        row["tags"] = ["rare"] if i % 20 == 0 else ["common"] if i % 2 else []
    assert sum(row["tags"] == ["rare"] for row in validation) == 2
    clf = TextClassifier(
        {"tags": {"kind": "multilabel", "labels": ["common", "rare"], "threshold_shrinkage": 10}},
        encoder=str(tiny_encoder_dir),
        max_length=32,
        train={"freeze": "encoder", "epochs": 3, "seed": 1, "cache_dir": str(tmp_path / "cache")},
    )
    clf.fit(rows, validation=validation, show_progress=False, echo=lambda _: None)
    y = np.array([[int("common" in r["tags"]), int("rare" in r["tags"])] for r in validation])
    prob = clf.predict_proba([r["text"] for r in validation])["tags"]
    expected, _ = tune_per_label(y, prob, shrinkage=10)
    stored = clf.heads_["tags"].thresholds()
    assert stored == pytest.approx(expected.tolist(), abs=1e-6)
    assert stored[1] != pytest.approx(tune_global(y, prob))  # not today's global fallback
