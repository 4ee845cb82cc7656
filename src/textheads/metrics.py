"""Evaluation metrics for each kind of head, and choosing the best checkpoint.

Every standard definition comes from scikit-learn; this module only decides
which ones to report and turns the results into plain Python types, so that
each returned dict can be written with `json.dumps` as it is.

Example:
    >>> import numpy as np
    >>> m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    >>> m["mae"], m["n_rows"]
    (0.3333333333333333, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    mean_absolute_error,
    precision_recall_fscore_support,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from textheads.calibration import multiclass_reliability, multilabel_reliability
from textheads.decisions import multiclass_decisions, multilabel_decisions
from textheads.errors import ConfigError

HEAD_KINDS = ("multilabel", "multiclass", "regression")
LOWER_IS_BETTER: frozenset[str] = frozenset({"loss", "hamming_loss", "mae", "rmse"})
"""Metric names (the part after the last '.') for which smaller is better."""

MEAN_MACRO_F1 = "mean_macro_f1"


def empty_metrics(kind: str) -> dict:
    """Metrics of a head that has no labelled rows in the evaluated data."""
    if kind not in HEAD_KINDS:
        raise ValueError(f"Unknown head kind {kind!r}; expected one of {HEAD_KINDS}.")
    return {"n_rows": 0}


def multilabel_metrics(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    labels: list[str],
    thresholds: Sequence[float] | np.ndarray | float = 0.5,
    top1_fallback: bool = False,
) -> dict:
    """Metrics of a multilabel head.

    `y_true` is an (n, L) 0/1 matrix and `y_prob` the (n, L) probabilities; a
    label is predicted when its probability is >= its threshold. Macro
    averages are over all L labels, so a label that is never true and never
    predicted counts with precision, recall and F1 of 0 (`zero_division=0`).
    `roc_auc_macro` averages only the labels whose ROC-AUC is defined (both
    classes present in `y_true`) and is None when there is none. With
    `top1_fallback`, a row with no label over its threshold predicts its most
    probable label. `ece` is the expected calibration error of every (text,
    label) probability (`textheads.calibration`), independent of thresholds.
    """
    y_true = np.asarray(y_true).astype(int)
    _check_matrix(y_true, np.asarray(y_prob), labels)
    if len(y_true) == 0:
        return empty_metrics("multilabel")
    cuts = _thresholds(thresholds, len(labels))
    y_pred = multilabel_decisions(y_prob, cuts, top1_fallback).astype(int)
    y_prob = np.asarray(y_prob, dtype=float)

    truth, pred, ids = _sklearn_view(y_true, y_pred)
    result: dict = {}
    for average in ("micro", "macro"):
        result[f"{average}_f1"] = _f1(truth, pred, average, ids)
    result["weighted_f1"] = _f1(truth, pred, "weighted", ids)
    for average in ("micro", "macro"):
        result[f"{average}_precision"] = float(
            precision_score(truth, pred, labels=ids, average=average, zero_division=0)
        )
        result[f"{average}_recall"] = float(
            recall_score(truth, pred, labels=ids, average=average, zero_division=0)
        )
    result["subset_accuracy"] = float(accuracy_score(y_true, y_pred))
    result["hamming_loss"] = float(hamming_loss(y_true, y_pred))

    aucs = [_roc_auc(y_true[:, j], y_prob[:, j]) for j in range(len(labels))]
    defined = [auc for auc in aucs if auc is not None]
    result["roc_auc_macro"] = float(np.mean(defined)) if defined else None
    result["ece"] = multilabel_reliability(y_true, y_prob).ece
    result["n_rows"] = len(y_true)

    per_label = _per_label(truth, pred, ids, labels)
    for name, auc, cut in zip(labels, aucs, cuts.tolist()):
        per_label[name]["roc_auc"] = auc
        per_label[name]["threshold"] = float(cut)
    result["per_label"] = per_label
    return result


def multilabel_summary(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    thresholds: Sequence[float] | np.ndarray | float = 0.5,
    top1_fallback: bool = False,
) -> dict:
    """The headline multilabel figures only, from one confusion-matrix pass.

    Same definitions as `multilabel_metrics` (which tests hold them to), at a
    fraction of the cost: used to compare checkpoints while training.
    """
    y_true = np.asarray(y_true).astype(bool)
    if len(y_true) == 0:
        return empty_metrics("multilabel")
    y_pred = multilabel_decisions(y_prob, _thresholds(thresholds, y_true.shape[1]), top1_fallback)
    tp = (y_pred & y_true).sum(axis=0).astype(float)
    fp = (y_pred & ~y_true).sum(axis=0).astype(float)
    fn = (~y_pred & y_true).sum(axis=0).astype(float)
    per_label = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    support = y_true.sum(axis=0)
    micro_denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "micro_f1": float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0,
        "macro_f1": float(per_label.mean()),
        "weighted_f1": float((per_label * support).sum() / support.sum()) if support.sum() else 0.0,
        "subset_accuracy": float((y_pred == y_true).all(axis=1).mean()),
        "hamming_loss": float((y_pred != y_true).mean()),
        "n_rows": len(y_true),
    }


def multiclass_metrics(y_true: np.ndarray, y_prob: np.ndarray, labels: list[str]) -> dict:
    """Metrics of a multiclass head; the prediction is the argmax of `y_prob`.

    `y_true` holds (n,) class indices and `y_prob` (n, C) probabilities.
    Macro and weighted averages are over all C classes of the head
    (`labels=range(C)`, `zero_division=0`): a class absent from `y_true`
    counts with F1 0, which lowers the macro average. The confusion matrix
    has one row per true class and one column per predicted class, in label
    order, including classes that never occur. `ece` is the expected
    calibration error of the top-class probability (`textheads.calibration`).
    """
    y_true = np.asarray(y_true).astype(int)
    y_prob = np.asarray(y_prob, dtype=float)
    _check_multiclass(y_true, y_prob, labels)
    if len(y_true) == 0:
        return empty_metrics("multiclass")
    y_pred = multiclass_decisions(y_prob)
    classes = list(range(len(labels)))

    result: dict = {"accuracy": float(accuracy_score(y_true, y_pred))}
    result["macro_f1"] = _f1(y_true, y_pred, "macro", classes)
    result["weighted_f1"] = _f1(y_true, y_pred, "weighted", classes)
    result["macro_precision"] = float(
        precision_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
    )
    result["macro_recall"] = float(
        recall_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
    )
    result["ece"] = multiclass_reliability(y_true, y_prob).ece
    result["n_rows"] = len(y_true)
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    result["confusion_matrix"] = {"labels": list(labels), "matrix": matrix.tolist()}
    result["per_label"] = _per_label(y_true, y_pred, classes, labels)
    return result


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE and R² of a regression head; R² is None below 2 rows."""
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has {y_true.size} values but y_pred has {y_pred.size}; "
            "expected one prediction per row."
        )
    if y_true.size == 0:
        return empty_metrics("regression")
    r2 = float(r2_score(y_true, y_pred)) if y_true.size >= 2 else None
    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "r2": r2,
        "n_rows": int(y_true.size),
    }


def metric_value(metrics: dict[str, dict], name: str) -> float:
    """The value of metric `name` in `metrics` ({head name: head metrics}).

    `name` is "loss" (the top-level "loss" value), "mean_macro_f1" (mean
    `macro_f1` of the heads with rows; mean `r2` of regression heads when no
    head has a macro F1) or "HEAD.METRIC", e.g. "emotions.macro_f1".
    Raises ConfigError (a ValueError) when the value is missing or None.
    """
    if name == MEAN_MACRO_F1:
        return _mean_macro_f1(metrics)
    if name == "loss":
        return _number(metrics, "loss", name, metrics)
    head, _, metric = name.rpartition(".")
    head_metrics = metrics.get(head)
    values = head_metrics if head and isinstance(head_metrics, dict) else {}
    return _number(values, metric, name, metrics)


def is_better(name: str, new: float, best: float | None) -> bool:
    """True when `new` strictly improves on `best` for metric `name` (or best is None).

    A NaN is never better, and any number beats a NaN best.
    """
    if best is None:
        return True
    if math.isnan(new):
        return False
    if math.isnan(best):
        return True
    if name.rpartition(".")[2] in LOWER_IS_BETTER:
        return new < best
    return new > best


def _check_matrix(y_true: np.ndarray, y_prob: np.ndarray, labels: list[str]) -> None:
    """Raise ValueError unless both arrays are (n, len(labels))."""
    expected = (len(y_true), len(labels))
    if y_true.ndim != 2 or y_true.shape != y_prob.shape or y_true.shape != expected:
        raise ValueError(
            f"Expected y_true and y_prob of shape (n, {len(labels)}) for labels "
            f"{labels}; got {y_true.shape} and {y_prob.shape}."
        )


def _check_multiclass(y_true: np.ndarray, y_prob: np.ndarray, labels: list[str]) -> None:
    """Raise ValueError unless shapes fit and every class index is in range."""
    if y_true.ndim != 1 or y_prob.shape != (len(y_true), len(labels)):
        raise ValueError(
            f"Expected y_true of shape (n,) and y_prob of shape (n, {len(labels)}); "
            f"got {y_true.shape} and {y_prob.shape}."
        )
    if y_true.size and (y_true.min() < 0 or y_true.max() >= len(labels)):
        raise ValueError(
            f"Class indices must lie in [0, {len(labels)}); "
            f"got values from {y_true.min()} to {y_true.max()}."
        )


def _sklearn_view(
    y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Indicator matrices in a form sklearn reads as multilabel, and the label ids.

    sklearn takes an (n, 1) matrix for a binary target and would average over
    its classes 0 and 1, so a single label is scored as class 1 of a 1-d target.
    """
    if y_true.shape[1] == 1:
        return y_true.ravel(), y_pred.ravel(), [1]
    return y_true, y_pred, list(range(y_true.shape[1]))


def _thresholds(thresholds: Sequence[float] | np.ndarray | float, n_labels: int) -> np.ndarray:
    """One threshold per label, from a single float or a sequence."""
    cuts = np.asarray(thresholds, dtype=float)
    if cuts.ndim == 0:
        return np.full(n_labels, float(cuts))
    if cuts.shape != (n_labels,):
        raise ValueError(f"Expected 1 or {n_labels} thresholds; got {cuts.size}.")
    return cuts


def _f1(
    y_true: np.ndarray, y_pred: np.ndarray, average: str, labels: list[int] | None = None
) -> float:
    """sklearn's F1 with the given average and zero_division=0, as a float."""
    return float(f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0))


def _roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float | None:
    """ROC-AUC of one label, or None when y_true lacks positives or negatives."""
    if len(np.unique(y_true)) < 2:
        return None
    return float(roc_auc_score(y_true, y_score))


def _per_label(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[int], labels: list[str]
) -> dict[str, dict]:
    """Precision, recall, F1 and support of each label, keyed by label name."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    return {
        name: {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for name, p, r, f, s in zip(labels, precision, recall, f1, support)
    }


def _mean_macro_f1(metrics: dict[str, dict]) -> float:
    """Mean macro F1 over heads with rows, else mean R² over regression heads."""
    heads = [m for m in metrics.values() if isinstance(m, dict) and m.get("n_rows", 0) > 0]
    f1s = [m["macro_f1"] for m in heads if m.get("macro_f1") is not None]
    if f1s:
        return float(np.mean(f1s))
    r2s = [m["r2"] for m in heads if m.get("r2") is not None]
    if r2s:
        return float(np.mean(r2s))
    raise ConfigError(
        f"Cannot compute '{MEAN_MACRO_F1}': no head with rows has a macro_f1 or r2; "
        f"available metrics: {_available(metrics)}."
    )


def _number(values: dict, key: str, name: str, metrics: dict[str, dict]) -> float:
    """`values[key]` as a float; ConfigError when it is missing, None or not a number."""
    if key not in values:
        raise ConfigError(
            f"Unknown metric {name!r}; expected 'loss', '{MEAN_MACRO_F1}' or "
            f"'HEAD.METRIC', one of {_available(metrics)}."
        )
    value = values[key]
    if value is None:
        raise ConfigError(f"Metric {name!r} is None (undefined for this data).")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"Metric {name!r} is not a number: {type(value).__name__}.")
    return float(value)


def _available(metrics: dict[str, dict]) -> list[str]:
    """Every name `metric_value` accepts for these metrics."""
    names = ["loss"] if isinstance(metrics.get("loss"), (int, float)) else []
    names.append(MEAN_MACRO_F1)
    for head, values in metrics.items():
        if isinstance(values, dict):
            names.extend(
                f"{head}.{key}"
                for key, value in values.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            )
    return names
