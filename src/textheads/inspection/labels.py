"""Per head: label counts, missing share, rare labels, co-occurrence, regression values."""

from __future__ import annotations

from collections import Counter

import numpy as np

from textheads.data.dataset import LabelledData
from textheads.data.summary import label_counts
from textheads.inspection.figures import (
    AlwaysWith,
    Distribution,
    HeadInspection,
    Histogram,
    LabelCount,
    LabelPair,
)
from textheads.specs import HeadSpec
from textheads.thresholds import MIN_POSITIVES

TOP_PAIRS = 10
HISTOGRAM_BINS = 20


def inspect_head(spec: HeadSpec, splits: dict[str, LabelledData], *, too_few_to_split: list[str]) -> HeadInspection:
    """The figures of one head over the splits present (`train` always among them).

    `too_few_to_split`: `HEAD.LABEL` names the stratified split reported (any head's).
    """
    masks = {name: data.targets[spec.name].mask for name, data in splits.items()}
    head = HeadInspection(
        name=spec.name,
        kind=spec.kind,
        column=spec.source_column,
        labelled={name: int(mask.sum()) for name, mask in masks.items()},
        missing_share={name: float((~mask).sum() / len(mask)) if len(mask) else 0.0 for name, mask in masks.items()},
    )
    if spec.kind == "regression":
        _add_values(head, spec, splits)
    else:
        _add_labels(head, spec, splits, too_few_to_split)
    return head


def _add_labels(head: HeadInspection, spec: HeadSpec, splits: dict[str, LabelledData], too_few_to_split: list[str]) -> None:
    labels = spec.labels or []
    counts = {name: label_counts(spec, data) for name, data in splits.items()}
    order = sorted(range(len(labels)), key=lambda i: (-counts["train"][i], labels[i]))
    head.label_order = list(labels)
    head.labels = [LabelCount(labels[i], {name: int(c[i]) for name, c in counts.items()}) for i in order]
    head.too_few_to_split = [name.split(".", 1)[1] for name in too_few_to_split if name.split(".", 1)[0] == spec.name]
    if spec.kind == "multilabel" and spec.tune_thresholds and "validation" in counts:
        head.too_few_to_tune = [label for label, n in zip(labels, counts["validation"], strict=True) if n < MIN_POSITIVES]
    head.never_in_train = [label for label, n in zip(labels, counts["train"], strict=True) if n == 0]
    evaluated = [c for name, c in counts.items() if name != "train"]
    head.only_in_evaluation = [label for i, label in enumerate(labels) if counts["train"][i] == 0 and any(c[i] > 0 for c in evaluated)]
    if spec.kind == "multilabel":
        _add_cooccurrence(head, spec, splits["train"])


def _add_cooccurrence(head: HeadInspection, spec: HeadSpec, train: LabelledData) -> None:
    labels = spec.labels or []
    target = train.targets[spec.name]
    rows = target.values[target.mask].astype(np.int64)
    head.labels_per_row = dict(sorted(Counter(rows.sum(axis=1).tolist()).items()))
    both = rows.T @ rows
    head.cooccurrence = both.tolist()
    upper = [(int(both[i, j]), labels[i], labels[j]) for i in range(len(labels)) for j in range(i + 1, len(labels)) if both[i, j] > 0]
    upper.sort(key=lambda item: (-item[0], item[1], item[2]))
    head.pairs = [LabelPair(a, b, n) for n, a, b in upper[:TOP_PAIRS]]
    totals = np.diag(both)
    for i, j in zip(*np.nonzero(both), strict=True):
        # A label seen once "always" shares its row with its other labels: that says nothing.
        if i != j and totals[i] >= 2 and both[i, j] == totals[i] and (totals[j] > totals[i] or (totals[j] == totals[i] and i < j)):
            head.always_with.append(AlwaysWith(labels[i], labels[j], int(totals[i]), mutual=bool(totals[j] == totals[i])))


def _add_values(head: HeadInspection, spec: HeadSpec, splits: dict[str, LabelledData]) -> None:
    for name, data in splits.items():
        target = data.targets[spec.name]
        values = target.values[target.mask].astype(np.float64)
        if len(values):
            head.distribution[name] = _distribution(values)
    train = splits["train"].targets[spec.name]
    values = train.values[train.mask].astype(np.float64)
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    head.histogram = Histogram([_number(e) for e in edges], [int(c) for c in counts])


def _distribution(values: np.ndarray) -> Distribution:
    p5, p25, median, p75, p95 = (_number(p) for p in np.percentile(values, [5, 25, 50, 75, 95]))
    return Distribution(
        count=len(values), min=_number(values.min()), p5=p5, p25=p25, median=median, p75=p75, p95=p95,
        max=_number(values.max()), mean=_number(values.mean()), std=_number(values.std()),
    )


def _number(value: float) -> float:
    # Targets are float32: 0.4 reads back as 0.4000000059604645, a precision the data never had.
    return float(f"{float(value):.7g}")
