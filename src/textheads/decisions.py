"""Decisions from a head's outputs: the one place that turns probabilities (and a
multilabel head's thresholds) into labels.

Prediction records, the Python API, metrics, threshold tuning, the service and
the export's agreement checks all decide here, so that they never disagree.
A probability is compared with its threshold in the probability's own dtype
(float32 from every backend): 0.7 as a float32 probability is over a 0.7
threshold everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textheads.specs import HeadSpec


def multilabel_decisions(y_prob: np.ndarray, thresholds: Sequence[float] | np.ndarray | float, top1_fallback: bool = False) -> np.ndarray:
    """(n, L) booleans: each label whose probability is at least its threshold (with
    `top1_fallback`, a row with none gets its most probable label)."""
    y_prob = np.asarray(y_prob)
    dtype = y_prob.dtype if np.issubdtype(y_prob.dtype, np.floating) else np.float64
    chosen = y_prob >= np.asarray(thresholds, dtype=dtype)
    return apply_top1_fallback(chosen, y_prob) if top1_fallback else chosen


def apply_top1_fallback(decisions: np.ndarray, y_prob: np.ndarray) -> np.ndarray:
    """Make each row predict at least its most probable label."""
    decisions = decisions.copy()
    empty = ~decisions.any(axis=1)
    decisions[empty, np.argmax(y_prob[empty], axis=1)] = 1
    return decisions


def multiclass_decisions(y_prob: np.ndarray) -> np.ndarray:
    """(n,) class indices: the most probable class of each row (the first one on a tie)."""
    return np.asarray(y_prob).argmax(axis=-1)


def head_decisions(spec: HeadSpec, outputs: np.ndarray) -> np.ndarray:
    """A head's decisions for many texts: (n, L) booleans at the spec's thresholds
    (multilabel), (n,) class indices (multiclass), or the (n,) values (regression)."""
    if spec.kind == "multilabel":
        return multilabel_decisions(outputs, spec.thresholds(), spec.top1_fallback)
    if spec.kind == "multiclass":
        return multiclass_decisions(outputs)
    return np.asarray(outputs)


def decide(spec: HeadSpec, output: np.ndarray) -> Any:
    """One text's decision for one head: its labels, its class label, or its value."""
    decision = head_decisions(spec, np.asarray(output)[None])[0]
    labels = spec.labels or []
    if spec.kind == "multilabel":
        return [label for label, chosen in zip(labels, decision, strict=True) if chosen]
    if spec.kind == "multiclass":
        return labels[int(decision)]
    return float(decision)
