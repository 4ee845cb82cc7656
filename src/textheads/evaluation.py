"""Per-head metrics of a model's outputs against labelled data."""

from __future__ import annotations

from typing import Any

import numpy as np

from textheads.data.dataset import LabelledData
from textheads.metrics import (
    empty_metrics,
    multiclass_metrics,
    multilabel_metrics,
    multilabel_summary,
    regression_metrics,
)
from textheads.specs import HeadSpec
from textheads.thresholds import tuned_spec

_HEADLINE_AT_HALF = ("micro_f1", "macro_f1", "weighted_f1", "subset_accuracy", "hamming_loss")


def evaluate_outputs(
    specs: dict[str, HeadSpec],
    outputs: dict[str, np.ndarray],
    data: LabelledData,
    *,
    tune_thresholds: bool = False,
    detailed: bool = True,
) -> dict[str, dict[str, Any]]:
    """Metrics for every head over the rows labelled for it.

    `outputs` holds probabilities (classification) or values in user units
    (regression), in the row order of `data`. Multilabel heads are scored at
    their stored thresholds, with the headline figures at 0.5 beside them
    (`at_0.5`). With `tune_thresholds`, heads that tune thresholds are scored
    at thresholds tuned on this very data: optimistic, but the fair way to
    compare checkpoints whose thresholds will be tuned afterwards. Without
    `detailed`, multilabel heads get only their headline figures (fast).
    """
    results: dict[str, dict[str, Any]] = {}
    for name, spec in specs.items():
        target = data.targets[name]
        rows = target.mask
        if not rows.any():
            results[name] = empty_metrics(spec.kind)
            continue
        output = outputs[name][rows]
        if spec.kind == "multilabel":
            y_true = target.values[rows].astype(np.int64)
            if tune_thresholds and spec.tune_thresholds:
                spec, _ = tuned_spec(spec, y_true, output)
            if not detailed:
                results[name] = multilabel_summary(y_true, output, spec.thresholds(), spec.top1_fallback)
                continue
            results[name] = multilabel_metrics(y_true, output, spec.labels or [], spec.thresholds(), spec.top1_fallback)
            if any(t != 0.5 for t in spec.thresholds()) or spec.top1_fallback:
                at_half = multilabel_metrics(y_true, output, spec.labels or [], 0.5)
                results[name]["at_0.5"] = {key: at_half[key] for key in _HEADLINE_AT_HALF}
        elif spec.kind == "multiclass":
            results[name] = multiclass_metrics(target.values[rows], output, spec.labels or [])
        else:
            results[name] = regression_metrics(target.values[rows], output)
    return results


def summary(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The headline numbers as flat `head.metric` keys, for logs and tables."""
    keys = ("micro_f1", "macro_f1", "subset_accuracy", "roc_auc_macro", "accuracy", "mae", "rmse", "r2")
    flat = {}
    for head, values in metrics.items():
        if not isinstance(values, dict):
            flat[head] = values
            continue
        for key in keys:
            if values.get(key) is not None:
                flat[f"{head}.{key}"] = round(float(values[key]), 6)
    return flat
