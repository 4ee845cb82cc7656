"""Decision thresholds for multilabel heads, tuned on validation data.

Each label gets the threshold that maximises its own F1 on the validation
rows; a label with too few validation positives to trust gets the global
threshold that maximises macro-F1 over all labels instead.
"""

from __future__ import annotations

import numpy as np

from textheads.decisions import multilabel_decisions
from textheads.specs import HeadSpec

MIN_POSITIVES = 5
"""Validation positives a label needs for a threshold of its own; fewer get the global one."""
GRID = np.round(np.arange(0.05, 0.95, 0.01), 2)
"""Candidate thresholds: 0.05, 0.06, ..., 0.94."""


def f1_per_label(y_true: np.ndarray, y_prob: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 of every label at every threshold: shape (len(grid), labels)."""
    positives = y_true.astype(bool)
    scores = np.zeros((len(grid), y_true.shape[1]))
    for i, threshold in enumerate(grid):
        predicted = multilabel_decisions(y_prob, threshold)
        tp = (predicted & positives).sum(axis=0)
        fp = (predicted & ~positives).sum(axis=0)
        fn = (~predicted & positives).sum(axis=0)
        denominator = 2 * tp + fp + fn
        scores[i] = np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)
    return scores


def tune_global(y_true: np.ndarray, y_prob: np.ndarray, grid: np.ndarray = GRID) -> float:
    """The one threshold that maximises macro-F1 over all labels."""
    macro = f1_per_label(y_true, y_prob, grid).mean(axis=1)
    return float(grid[int(np.argmax(macro))])


def tune_per_label(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    grid: np.ndarray = GRID,
    min_positives: int = MIN_POSITIVES,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-label thresholds maximising each label's F1.

    Returns (thresholds, tuned) where `tuned[j]` is False for labels with fewer
    than `min_positives` validation positives: those get the global threshold.
    """
    scores = f1_per_label(y_true, y_prob, grid)
    # Ties go to the threshold nearest 0.5: a label the validation data separates over a
    # wide range keeps the calibrated default instead of an arbitrary point of the range.
    best = np.array([_nearest_half_of_best(scores[:, j], grid) for j in range(scores.shape[1])])
    thresholds = grid[best]
    # And 0.5 stays unless the tuned threshold wins by more than one example's worth of
    # F1 (about 1 / positives): on small validation sets smaller gains are mostly noise.
    at_half = f1_per_label(y_true, y_prob, np.array([0.5]))[0]
    positives = np.maximum(y_true.sum(axis=0), 1)
    gain = scores[best, np.arange(scores.shape[1])] - at_half
    thresholds = np.where(gain > 1.0 / positives, thresholds, 0.5)
    tuned = y_true.sum(axis=0) >= min_positives
    if not tuned.all():
        thresholds = np.where(tuned, thresholds, tune_global(y_true, y_prob, grid))
    return thresholds.astype(np.float64), tuned


def _nearest_half_of_best(column: np.ndarray, grid: np.ndarray) -> int:
    winners = np.flatnonzero(column >= column.max() - 1e-12)
    return int(winners[np.argmin(np.abs(grid[winners] - 0.5))])


def tuned_spec(spec: HeadSpec, y_true: np.ndarray, y_prob: np.ndarray, *, min_positives: int = MIN_POSITIVES) -> tuple[HeadSpec, list[str]]:
    """A multilabel spec with per-label thresholds tuned on (y_true, y_prob).

    Returns the spec and the labels that had too few positives to be tuned
    alone (they got the global threshold).
    """
    labels = spec.labels or []
    thresholds, tuned = tune_per_label(y_true, y_prob, min_positives=min_positives)
    threshold = {label: float(t) for label, t in zip(labels, thresholds, strict=True)}
    untuned = [label for label, ok in zip(labels, tuned, strict=True) if not ok]
    return HeadSpec.model_validate({**spec.model_dump(), "threshold": threshold}), untuned
