"""Tests of textheads.metrics against small examples computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from textheads.metrics import (
    LOWER_IS_BETTER,
    empty_metrics,
    is_better,
    metric_value,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
)

LABELS = ["a", "b", "c"]
# 4 rows, 3 labels. At threshold 0.5 the decisions are
#   row 0: 1 0 1 (true 1 0 1)   row 1: 0 1 0 (true 0 1 0)
#   row 2: 0 1 1 (true 1 1 0)   row 3: 1 0 0 (true 0 0 0)
# a: TP1 FP1 FN1 -> P 1/2, R 1/2, F1 1/2, support 2
# b: TP2 FP0 FN0 -> P 1,   R 1,   F1 1,   support 2
# c: TP1 FP1 FN0 -> P 1/2, R 1,   F1 2/3, support 1
# micro: TP4 FP2 FN1 -> P 4/6, R 4/5, F1 8/11
# macro: P (1/2+1+1/2)/3 = 2/3, R (1/2+1+1)/3 = 5/6, F1 (1/2+1+2/3)/3 = 13/18
# weighted F1: (1/2*2 + 1*2 + 2/3*1)/5 = 11/15
# subset accuracy: rows 0 and 1 exact -> 2/4; hamming: 3 wrong cells of 12
# ROC-AUC: a 2/4 pairs ranked right = 1/2, b 1, c 2/3 -> macro 13/18
Y_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
Y_PROB = np.array(
    [
        [0.9, 0.2, 0.6],
        [0.4, 0.7, 0.1],
        [0.3, 0.8, 0.7],
        [0.6, 0.1, 0.2],
    ]
)

PLAIN_TYPES = (float, int, str, list, dict, type(None))


def assert_plain(value: object) -> None:
    """Fail unless value is built only of exact JSON types (no numpy scalars)."""
    assert type(value) in PLAIN_TYPES, f"{value!r} is a {type(value)}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)


def assert_json(result: dict) -> None:
    """The result has plain types and survives a JSON round trip unchanged."""
    assert_plain(result)
    assert json.loads(json.dumps(result)) == result


# --- multilabel ------------------------------------------------------------


def test_multilabel_hand_computed_averages() -> None:
    m = multilabel_metrics(Y_TRUE, Y_PROB, LABELS)
    assert m["micro_f1"] == pytest.approx(8 / 11)
    assert m["macro_f1"] == pytest.approx(13 / 18)
    assert m["weighted_f1"] == pytest.approx(11 / 15)
    assert m["micro_precision"] == pytest.approx(4 / 6)
    assert m["micro_recall"] == pytest.approx(4 / 5)
    assert m["macro_precision"] == pytest.approx(2 / 3)
    assert m["macro_recall"] == pytest.approx(5 / 6)
    assert m["subset_accuracy"] == pytest.approx(0.5)
    assert m["hamming_loss"] == pytest.approx(3 / 12)
    assert m["roc_auc_macro"] == pytest.approx(13 / 18)
    assert m["n_rows"] == 4


def test_multilabel_per_label() -> None:
    per_label = multilabel_metrics(Y_TRUE, Y_PROB, LABELS)["per_label"]
    assert list(per_label) == LABELS
    assert per_label["a"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "roc_auc": 0.5, "threshold": 0.5}
    )
    assert per_label["b"]["f1"] == pytest.approx(1.0)
    assert per_label["c"]["precision"] == pytest.approx(0.5)
    assert per_label["c"]["recall"] == pytest.approx(1.0)
    assert per_label["c"]["f1"] == pytest.approx(2 / 3)
    assert per_label["c"]["support"] == 1
    assert per_label["c"]["roc_auc"] == pytest.approx(2 / 3)


def test_multilabel_per_label_thresholds_change_decisions() -> None:
    # a at 0.3: predicted on every row -> TP2 FP2 FN0 -> P 1/2, R 1, F1 2/3.
    # c at 0.65: predicted on row 2 only (0.6 < 0.65) -> TP0 FP1 FN1 -> F1 0.
    # b unchanged -> F1 1; macro F1 (2/3 + 1 + 0)/3 = 5/9.
    m = multilabel_metrics(Y_TRUE, Y_PROB, LABELS, thresholds=[0.3, 0.5, 0.65])
    assert m["per_label"]["a"]["recall"] == pytest.approx(1.0)
    assert m["per_label"]["a"]["f1"] == pytest.approx(2 / 3)
    assert m["per_label"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert [m["per_label"][name]["threshold"] for name in LABELS] == [0.3, 0.5, 0.65]
    # ROC-AUC does not depend on thresholds.
    assert m["roc_auc_macro"] == pytest.approx(13 / 18)


def test_multilabel_scalar_threshold_applies_to_every_label() -> None:
    scalar = multilabel_metrics(Y_TRUE, Y_PROB, LABELS, thresholds=0.65)
    listed = multilabel_metrics(Y_TRUE, Y_PROB, LABELS, thresholds=np.array([0.65] * 3))
    assert scalar == listed
    assert scalar != multilabel_metrics(Y_TRUE, Y_PROB, LABELS)


def test_multilabel_probability_equal_to_threshold_is_positive() -> None:
    m = multilabel_metrics(np.array([[1], [0]]), np.array([[0.5], [0.2]]), ["x"], 0.5)
    assert m["micro_f1"] == 1.0
    assert m["subset_accuracy"] == 1.0


def test_multilabel_wrong_threshold_count_raises() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        multilabel_metrics(Y_TRUE, Y_PROB, LABELS, thresholds=[0.5, 0.5])


def test_multilabel_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        multilabel_metrics(Y_TRUE, Y_PROB, ["a", "b"])


def test_roc_auc_skips_labels_without_both_classes() -> None:
    # d has no positives and e no negatives: their ROC-AUC is undefined and the
    # macro mean covers a, b and c only.
    y_true = np.hstack([Y_TRUE, np.zeros((4, 1), int), np.ones((4, 1), int)])
    y_prob = np.hstack([Y_PROB, np.full((4, 2), 0.9)])
    m = multilabel_metrics(y_true, y_prob, LABELS + ["d", "e"])
    assert m["per_label"]["d"]["roc_auc"] is None
    assert m["per_label"]["e"]["roc_auc"] is None
    assert m["per_label"]["d"]["support"] == 0
    assert m["roc_auc_macro"] == pytest.approx(13 / 18)
    assert_json(m)


def test_roc_auc_macro_none_when_no_label_defined() -> None:
    m = multilabel_metrics(np.ones((3, 2), int), np.full((3, 2), 0.7), ["x", "y"])
    assert m["roc_auc_macro"] is None
    assert m["macro_f1"] == 1.0
    assert_json(m)


def test_multilabel_label_never_true_nor_predicted_counts_as_zero() -> None:
    # Macro averages run over every label of the head: a silent label adds F1 0.
    y_true = np.hstack([Y_TRUE, np.zeros((4, 1), int)])
    y_prob = np.hstack([Y_PROB, np.zeros((4, 1))])
    m = multilabel_metrics(y_true, y_prob, LABELS + ["d"])
    assert m["per_label"]["d"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((13 / 18) * 3 / 4)
    assert m["micro_f1"] == pytest.approx(8 / 11)


def test_multilabel_single_label_scores_the_positive_class_only() -> None:
    # One label, always true, predicted on 2 of 4 rows: P 1, R 1/2, F1 2/3.
    # (sklearn would read an (n, 1) matrix as binary and also average class 0.)
    y_true = np.ones((4, 1), int)
    y_prob = np.array([[0.9], [0.8], [0.1], [0.2]])
    m = multilabel_metrics(y_true, y_prob, ["only"])
    for key in ("micro_f1", "macro_f1", "weighted_f1"):
        assert m[key] == pytest.approx(2 / 3), key
    assert m["macro_precision"] == 1.0
    assert m["macro_recall"] == 0.5
    assert m["per_label"]["only"]["support"] == 4
    assert m["per_label"]["only"]["f1"] == pytest.approx(2 / 3)


def test_multilabel_empty_input() -> None:
    assert multilabel_metrics(np.zeros((0, 3), int), np.zeros((0, 3)), LABELS) == {"n_rows": 0}


# --- multiclass ------------------------------------------------------------

CLASSES = ["neg", "neu", "pos"]
# true  0 0 1 2 2
# pred  0 1 1 2 0   (argmax of the rows below)
# neg: pred on rows 0,4, 1 right -> P 1/2; true rows 0,1 -> R 1/2; F1 1/2
# neu: pred on rows 1,2, 1 right -> P 1/2; R 1/1;                F1 2/3
# pos: pred on row 3, right      -> P 1;   true rows 3,4 -> R 1/2; F1 2/3
# macro F1 (1/2 + 2/3 + 2/3)/3 = 11/18; weighted (1/2*2 + 2/3*1 + 2/3*2)/5 = 3/5
CLASS_TRUE = np.array([0, 0, 1, 2, 2])
CLASS_PROB = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1],
        [0.1, 0.1, 0.8],
        [0.5, 0.2, 0.3],
    ]
)


def test_multiclass_hand_computed() -> None:
    m = multiclass_metrics(CLASS_TRUE, CLASS_PROB, CLASSES)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["macro_f1"] == pytest.approx(11 / 18)
    assert m["weighted_f1"] == pytest.approx(3 / 5)
    assert m["macro_precision"] == pytest.approx(2 / 3)
    assert m["macro_recall"] == pytest.approx(2 / 3)
    assert m["n_rows"] == 5
    assert m["per_label"]["neu"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )
    assert m["per_label"]["pos"]["support"] == 2
    assert_json(m)


def test_confusion_matrix_rows_are_true_columns_predicted() -> None:
    m = multiclass_metrics(CLASS_TRUE, CLASS_PROB, CLASSES)
    assert m["confusion_matrix"] == {
        "labels": CLASSES,
        # row "neg": one predicted neg, one predicted neu; row "pos": one neg, one pos
        "matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 1]],
    }


def test_multiclass_absent_class_keeps_its_row_and_counts_in_macro() -> None:
    prob = np.hstack([CLASS_PROB, np.zeros((5, 1))])
    m = multiclass_metrics(CLASS_TRUE, prob, CLASSES + ["other"])
    matrix = m["confusion_matrix"]["matrix"]
    assert len(matrix) == 4 and all(len(row) == 4 for row in matrix)
    assert matrix[3] == [0, 0, 0, 0]
    assert m["per_label"]["other"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx((11 / 18) * 3 / 4)
    assert m["accuracy"] == pytest.approx(3 / 5)


def test_multiclass_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="Class indices"):
        multiclass_metrics(np.array([0, 3]), np.zeros((2, 3)), CLASSES)
    with pytest.raises(ValueError, match="shape"):
        multiclass_metrics(CLASS_TRUE, CLASS_PROB, ["neg", "pos"])


# --- regression ------------------------------------------------------------


def test_regression_hand_computed() -> None:
    # errors 0 0 0 2: MAE 2/4, MSE 4/4 -> RMSE 1; mean 2.5, SS_tot 5 -> R² 1 - 4/5
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m == pytest.approx({"mae": 0.5, "rmse": 1.0, "r2": 0.2, "n_rows": 4})
    assert_json(m)


def test_regression_rmse_is_root_of_mean_square() -> None:
    # errors 1 0 0 2: MSE 5/4, so RMSE sqrt(5)/2, not the MAE 3/4.
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 3.0, 6.0]))
    assert m["rmse"] == pytest.approx(math.sqrt(5) / 2)
    assert m["mae"] == pytest.approx(0.75)


def test_regression_r2_none_below_two_rows() -> None:
    m = regression_metrics(np.array([3.0]), np.array([1.0]))
    assert m == {"mae": 2.0, "rmse": 2.0, "r2": None, "n_rows": 1}
    assert_json(m)


def test_regression_length_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        regression_metrics(np.array([1.0, 2.0]), np.array([1.0]))


def test_empty_metrics() -> None:
    for kind in ("multilabel", "multiclass", "regression"):
        assert empty_metrics(kind) == {"n_rows": 0}
    assert regression_metrics(np.array([]), np.array([])) == {"n_rows": 0}
    with pytest.raises(ValueError):
        empty_metrics("ranking")


def test_every_result_is_json_serialisable() -> None:
    results = [
        multilabel_metrics(Y_TRUE, Y_PROB, LABELS),
        multilabel_metrics(Y_TRUE.astype(np.int64), Y_PROB.astype(np.float32), LABELS, 0.4),
        multiclass_metrics(CLASS_TRUE, CLASS_PROB, CLASSES),
        regression_metrics(np.arange(5.0), np.arange(5.0) * 1.5),
        empty_metrics("multiclass"),
    ]
    for result in results:
        assert_json(result)


# --- metric_value ----------------------------------------------------------


def all_heads() -> dict:
    """Metrics of four heads, one of them without rows, plus a loss."""
    return {
        "loss": 0.42,
        "topics": multilabel_metrics(Y_TRUE, Y_PROB, LABELS),
        "sentiment": multiclass_metrics(CLASS_TRUE, CLASS_PROB, CLASSES),
        "score": regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0])),
        "unused": empty_metrics("multiclass"),
    }


def test_metric_value_loss() -> None:
    assert metric_value(all_heads(), "loss") == 0.42


def test_metric_value_mean_macro_f1_over_classifier_heads_with_rows() -> None:
    metrics = all_heads()
    # A head without rows is left out even if it carries a macro_f1.
    metrics["unused"] = {"n_rows": 0, "macro_f1": 0.0}
    assert metric_value(metrics, "mean_macro_f1") == pytest.approx((13 / 18 + 11 / 18) / 2)


def test_metric_value_mean_macro_f1_falls_back_to_r2() -> None:
    metrics = {
        "loss": 1.0,
        "score": regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0])),
        "other": {"mae": 0.0, "rmse": 0.0, "r2": 0.6, "n_rows": 3},
        "single": regression_metrics(np.array([1.0]), np.array([1.0])),
    }
    assert metric_value(metrics, "mean_macro_f1") == pytest.approx((0.2 + 0.6) / 2)


def test_metric_value_mean_macro_f1_without_any_head_raises() -> None:
    with pytest.raises(ValueError, match="mean_macro_f1"):
        metric_value({"loss": 1.0, "unused": empty_metrics("multilabel")}, "mean_macro_f1")


def test_metric_value_head_metric() -> None:
    metrics = all_heads()
    assert metric_value(metrics, "sentiment.macro_f1") == pytest.approx(11 / 18)
    assert metric_value(metrics, "topics.hamming_loss") == pytest.approx(0.25)
    assert metric_value(metrics, "score.rmse") == pytest.approx(1.0)
    assert metric_value(metrics, "score.n_rows") == 4.0
    assert metric_value({"v1.emotions": {"macro_f1": 0.3}}, "v1.emotions.macro_f1") == 0.3


@pytest.mark.parametrize(
    "name",
    ["sentiment.roc_auc_macro", "missing.macro_f1", "accuracy", ".macro_f1", "sentiment."],
)
def test_metric_value_unknown_names_list_available(name: str) -> None:
    with pytest.raises(ValueError, match="sentiment.macro_f1") as info:
        metric_value(all_heads(), name)
    assert repr(name) in str(info.value)


def test_metric_value_missing_loss_raises() -> None:
    metrics = all_heads()
    del metrics["loss"]
    with pytest.raises(ValueError, match="'loss'"):
        metric_value(metrics, "loss")


def test_metric_value_none_raises() -> None:
    metrics = {"score": regression_metrics(np.array([1.0]), np.array([2.0]))}
    with pytest.raises(ValueError, match="None"):
        metric_value(metrics, "score.r2")


def test_metric_value_non_number_raises() -> None:
    with pytest.raises(ValueError, match="not a number"):
        metric_value(all_heads(), "sentiment.per_label")


# --- is_better -------------------------------------------------------------


def test_lower_is_better_names() -> None:
    assert LOWER_IS_BETTER == {"loss", "hamming_loss", "mae", "rmse"}


@pytest.mark.parametrize(
    ("name", "new", "best", "expected"),
    [
        ("loss", 0.3, 0.5, True),
        ("loss", 0.5, 0.3, False),
        ("mean_macro_f1", 0.6, 0.5, True),
        ("mean_macro_f1", 0.4, 0.5, False),
        ("emotions.macro_f1", 0.6, 0.5, True),
        ("emotions.hamming_loss", 0.1, 0.2, True),
        ("emotions.hamming_loss", 0.3, 0.2, False),
        ("score.mae", 1.0, 2.0, True),
        ("score.rmse", 2.0, 1.0, False),
        ("score.r2", 0.9, 0.8, True),
        ("v1.heads.rmse", 1.0, 2.0, True),
        ("loss", 0.5, 0.5, False),
        ("emotions.macro_f1", 0.5, 0.5, False),
        ("loss", 10.0, None, True),
        ("emotions.macro_f1", -1.0, None, True),
    ],
)
def test_is_better(name: str, new: float, best: float | None, expected: bool) -> None:
    assert is_better(name, new, best) is expected


def test_is_better_with_nan() -> None:
    assert not is_better("loss", math.nan, 1.0)
    assert is_better("loss", 1.0, math.nan)
    assert not is_better("mean_macro_f1", math.nan, 0.1)


def test_multilabel_summary_agrees_with_the_full_metrics() -> None:
    from textheads.metrics import multilabel_summary

    rng = np.random.default_rng(0)
    y_true = (rng.random((50, 6)) < 0.3).astype(int)
    y_true[:, 5] = 0  # a label never true
    y_prob = rng.random((50, 6))
    thresholds = [0.3, 0.5, 0.7, 0.2, 0.9, 0.5]
    for fallback in (False, True):
        full = multilabel_metrics(y_true, y_prob, list("abcdef"), thresholds, fallback)
        fast = multilabel_summary(y_true, y_prob, thresholds, fallback)
        for key in ("micro_f1", "macro_f1", "weighted_f1", "subset_accuracy", "hamming_loss", "n_rows"):
            assert fast[key] == pytest.approx(full[key]), key


def test_metrics_predictions_and_the_export_check_decide_alike_where_float32_rounds_the_threshold() -> None:
    # float32(0.7) is just under 0.7: a model's probability of exactly float32(0.7) is over
    # a 0.7 threshold in every place that decides, as `predict` shows it.
    from textheads.decisions import decide
    from textheads.evaluation import evaluate_outputs
    from textheads.export.agreement import compare_outputs
    from textheads.metrics import multilabel_summary
    from textheads.specs import HeadSpec

    spec = HeadSpec(name="t", kind="multilabel", labels=["a", "b"], threshold=0.7)
    prob = np.array([[0.7, 0.1], [0.2, 0.9]], dtype=np.float32)
    truth = np.array([[1, 0], [0, 1]])
    assert [decide(spec, row) for row in prob] == [["a"], ["b"]]
    metrics = multilabel_metrics(truth, prob, ["a", "b"], spec.thresholds())
    assert metrics["per_label"]["a"]["recall"] == 1.0 and metrics["subset_accuracy"] == 1.0
    assert multilabel_summary(truth, prob, spec.thresholds())["subset_accuracy"] == 1.0

    from types import SimpleNamespace

    labelled = SimpleNamespace(targets={"t": SimpleNamespace(mask=np.array([True, True]), values=truth)})  # what evaluate_outputs reads
    assert evaluate_outputs({"t": spec}, {"t": prob}, labelled)["t"]["subset_accuracy"] == 1.0  # type: ignore[arg-type]
    assert compare_outputs({"t": spec}, {"t": prob}, {"t": prob})["t"].agreement == 1.0
