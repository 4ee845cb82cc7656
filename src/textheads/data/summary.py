"""What a model was trained on, in numbers: rows per split and each head's label counts.

Training writes it beside the model (`training_data.json`) so that the model card can be
rebuilt from the model folder alone, long after the data files have moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from textheads.data.dataset import LabelledData
from textheads.ownership import TRAINING_DATA
from textheads.specs import HeadSpec

__all__ = ["TRAINING_DATA", "label_counts", "source_name", "split_summary"]


def split_summary(data: LabelledData, specs: list[HeadSpec], *, source: str) -> dict[str, Any]:
    """Rows of one split and, per head, how many rows carry its label and how often each
    label occurs (a regression head: the range of its targets).

    `source` says where the rows came from (a file, or "held out from the training data").

    Example:
        >>> split_summary(data, specs, source="train.jsonl")  # doctest: +SKIP
        {'source': 'train.jsonl', 'rows': 96, 'heads': {'topics': {'kind': 'multilabel', 'labelled': 96, 'label_counts': {...}}}}
    """
    return {"source": source, "rows": len(data), "heads": {spec.name: _head_summary(spec, data) for spec in specs}}


def _head_summary(spec: HeadSpec, data: LabelledData) -> dict[str, Any]:
    target = data.targets[spec.name]
    values = target.values[target.mask]
    summary: dict[str, Any] = {"kind": spec.kind, "labelled": int(target.mask.sum())}
    if spec.kind in ("multilabel", "multiclass"):
        counts = label_counts(spec, data)
        summary["label_counts"] = {label: int(count) for label, count in zip(spec.labels or [], counts, strict=True)}
    elif len(values):
        numbers = values.astype(np.float64)
        summary.update(mean=float(numbers.mean()), std=float(numbers.std()), min=float(numbers.min()), max=float(numbers.max()))
    return summary


def label_counts(spec: HeadSpec, data: LabelledData) -> np.ndarray:
    """Rows carrying each label of a classification head, in label order."""
    target = data.targets[spec.name]
    values = target.values[target.mask]
    if spec.kind == "multilabel":
        return values.sum(axis=0).astype(np.int64) if len(values) else np.zeros(len(spec.labels or []), dtype=np.int64)
    return np.bincount(values.astype(np.int64), minlength=len(spec.labels or [])).astype(np.int64)


def source_name(source: str) -> str:
    """A data source as the card shows it: a file's name (its folder says nothing to a reader)."""
    return Path(source).name if source and source != "<records>" else "records passed in Python"
