"""Expected calibration error and reliability bins, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from textheads.calibration import multiclass_reliability, reliability
from textheads.metrics import multiclass_metrics, multilabel_metrics

# Every (text, label) probability is one binary prediction; 10 equal-width bins.
#   0.15 (false) bin 1: gap 0.15        0.45 (true) bin 4: gap 0.55
#   0.55 (true)  bin 5: gap 0.45        0.65 (true) bin 6: gap 0.35
#   0.92 (false), 0.95 (true) bin 9: mean 0.935, frequency 1/2, gap 0.435, 2 predictions
# ECE = (0.15 + 0.55 + 0.45 + 0.35 + 2 * 0.435) / 6 = 2.37 / 6 = 0.395
ML_TRUE = np.array([[1, 0], [0, 1], [1, 1]])
ML_PROB = np.array([[0.95, 0.15], [0.92, 0.55], [0.65, 0.45]])

# Top-class confidence against whether the top class is right:
#   row 0: 0.72, right  row 1: 0.62, wrong  row 2: 0.75, right  row 3: 0.45, right
# bins: 4 (0.45, 1/1: gap 0.55), 6 (0.62, 0/1: gap 0.62), 7 (mean 0.735, 2/2: gap 0.265, 2 rows)
# ECE = (0.55 + 0.62 + 2 * 0.265) / 4 = 1.70 / 4 = 0.425
MC_TRUE = np.array([0, 1, 2, 1])
MC_PROB = np.array([[0.72, 0.18, 0.10], [0.62, 0.28, 0.10], [0.10, 0.15, 0.75], [0.25, 0.45, 0.30]])


def test_multilabel_ece_in_the_metrics_is_the_hand_computed_value() -> None:
    assert multilabel_metrics(ML_TRUE, ML_PROB, ["a", "b"])["ece"] == pytest.approx(0.395)
    # independent of the thresholds: the probabilities are judged, not the decisions
    assert multilabel_metrics(ML_TRUE, ML_PROB, ["a", "b"], [0.9, 0.1])["ece"] == pytest.approx(0.395)


def test_multiclass_ece_in_the_metrics_is_the_hand_computed_value() -> None:
    assert multiclass_metrics(MC_TRUE, MC_PROB, ["x", "y", "z"])["ece"] == pytest.approx(0.425)


def test_reliability_bins_hold_counts_means_and_frequencies() -> None:
    table = multiclass_reliability(MC_TRUE, MC_PROB)
    assert table.counts.tolist() == [0, 0, 0, 0, 1, 0, 1, 2, 0, 0]
    assert table.mean_probability[7] == pytest.approx(0.735)
    assert table.frequency[[4, 6, 7]].tolist() == [1.0, 0.0, 1.0]
    assert np.isnan(table.frequency[0])  # an empty bin has no frequency


def test_a_probability_of_one_falls_in_the_last_bin_and_zero_in_the_first() -> None:
    table = reliability(np.array([0.0, 1.0]), np.array([0, 1]))
    assert table.counts[0] == 1 and table.counts[-1] == 1
    assert table.ece == 0.0


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="one outcome per probability"):
        reliability(np.array([0.5, 0.2]), np.array([1]))
