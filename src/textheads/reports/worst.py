"""The worst errors of a head: its most confident wrong answers, as table rows.

- multilabel: false positives with the highest probability, and false negatives
  with the lowest, each naming the label (decisions at the stored thresholds);
- multiclass: wrong classes with the highest probability;
- regression: the largest absolute errors.
Texts are user data: the page escapes them (`textheads.reports.page`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOP = 10
TEXT_CHARS = 400


@dataclass(frozen=True)
class Rows:
    """The rows of one head: their texts and file lines, in the order of its arrays."""

    texts: Sequence[str]
    lines: Sequence[int]

    def text(self, i: int) -> str:
        text = self.texts[i]
        return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


def multilabel_errors(rows: Rows, y_true: np.ndarray, y_prob: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], thresholds: Sequence[float], top: int = TOP) -> list[Table]:
    """The `top` most probable false positives and the `top` least probable false negatives."""
    columns = ["line", "label", "probability", "threshold", "true labels", "predicted labels", "text"]
    tables = []
    for title, wrong, order in (
        ("Most confident false positives (predicted, not true)", (y_pred == 1) & (y_true == 0), -1),
        ("Most confident false negatives (true, not predicted)", (y_pred == 0) & (y_true == 1), 1),
    ):
        cells = np.argwhere(wrong)
        ranked = cells[np.argsort(order * y_prob[wrong], kind="stable")][:top]
        tables.append(Table(title, columns, [
            [rows.lines[i], labels[j], float(y_prob[i, j]), float(thresholds[j]), _names(y_true[i], labels), _names(y_pred[i], labels), rows.text(i)]
            for i, j in ranked
        ]))
    return tables


def multiclass_errors(rows: Rows, y_true: np.ndarray, y_prob: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], top: int = TOP) -> list[Table]:
    """The `top` wrong answers given with the highest probability."""
    wrong = np.flatnonzero(y_pred != y_true)
    confidence = y_prob[wrong, y_pred[wrong]]
    ranked = wrong[np.argsort(-confidence, kind="stable")][:top]
    columns = ["line", "true", "predicted", "p(predicted)", "p(true)", "text"]
    return [Table("Most confident wrong classes", columns, [
        [rows.lines[i], labels[y_true[i]], labels[y_pred[i]], float(y_prob[i, y_pred[i]]), float(y_prob[i, y_true[i]]), rows.text(i)]
        for i in ranked
    ])]


def regression_errors(rows: Rows, y_true: np.ndarray, y_pred: np.ndarray, top: int = TOP) -> list[Table]:
    """The `top` largest absolute errors."""
    error = np.abs(y_pred - y_true)
    ranked = np.argsort(-error, kind="stable")[:top]
    columns = ["line", "true", "predicted", "absolute error", "text"]
    return [Table("Largest errors", columns, [
        [rows.lines[i], float(y_true[i]), float(y_pred[i]), float(error[i]), rows.text(i)] for i in ranked
    ])]


def _names(chosen: np.ndarray, labels: Sequence[str]) -> str:
    return ", ".join(label for label, on in zip(labels, chosen, strict=True) if on)
