"""Calibration: do a head's probabilities mean what they say?

A reliability table puts predictions into equal-width probability bins and
compares, per bin, the mean predicted probability with how often the event
happened. The expected calibration error (ECE) is the row-weighted mean gap:
`sum over bins of (n_bin / n) * |frequency_bin - mean_probability_bin|`.

What counts as one prediction:
- multilabel: every (text, label) probability, as a binary prediction that the
  label applies; the event is "the label is true";
- multiclass: each text's top-class probability (its confidence); the event is
  "the top class is the true class".

Example:
    >>> import numpy as np
    >>> # bin 0.9-1.0: mean 0.9, happened 1 of 2 (gap 0.4); bin 0.2-0.3: 0.2, 0 of 1 (gap 0.2)
    >>> round(expected_calibration_error(np.array([0.9, 0.9, 0.2]), np.array([1, 0, 0])), 4)
    0.3333
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textheads.decisions import multiclass_decisions

N_BINS = 10


@dataclass(frozen=True)
class Reliability:
    """Per equal-width bin over [0, 1]: how many predictions, their mean probability, and
    how often the event happened (NaN for an empty bin)."""

    edges: np.ndarray
    counts: np.ndarray
    mean_probability: np.ndarray
    frequency: np.ndarray

    @property
    def ece(self) -> float:
        """The expected calibration error (0 for no predictions)."""
        total = self.counts.sum()
        if total == 0:
            return 0.0
        used = self.counts > 0
        gaps = np.abs(self.frequency[used] - self.mean_probability[used])
        return float((self.counts[used] * gaps).sum() / total)


def reliability(probability: np.ndarray, happened: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Bin `probability` (any shape) into `n_bins` equal-width bins; the last bin includes 1.0."""
    probability = np.asarray(probability, dtype=float).reshape(-1)
    happened = np.asarray(happened, dtype=float).reshape(-1)
    if probability.shape != happened.shape:
        raise ValueError(f"Expected one outcome per probability; got {probability.size} probabilities and {happened.size} outcomes.")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(probability, edges[1:-1], right=False), 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_probability = np.bincount(bins, weights=probability, minlength=n_bins) / counts
        frequency = np.bincount(bins, weights=happened, minlength=n_bins) / counts
    return Reliability(edges=edges, counts=counts, mean_probability=mean_probability, frequency=frequency)


def expected_calibration_error(probability: np.ndarray, happened: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of binary predictions (see the module docstring), over `n_bins` equal-width bins."""
    return reliability(probability, happened, n_bins).ece


def multilabel_reliability(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Every (text, label) probability against whether the label is true."""
    return reliability(y_prob, y_true, n_bins)


def multiclass_reliability(y_true: np.ndarray, y_prob: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Each text's top-class probability against whether the top class is right."""
    y_prob = np.asarray(y_prob, dtype=float)
    return reliability(y_prob.max(axis=1), multiclass_decisions(y_prob) == np.asarray(y_true), n_bins)
