"""Split a validation set off training data, keeping rare labels on both sides."""

from __future__ import annotations

import numpy as np

from textheads.data.dataset import LabelledData
from textheads.specs import HeadSpec


def label_matrix(data: LabelledData, specs: list[HeadSpec]) -> tuple[np.ndarray, list[str]]:
    """One 0/1 column per (classification head, label); missing labels are zeros."""
    columns, names = [], []
    for spec in specs:
        target = data.targets[spec.name]
        labels = spec.labels or []
        if spec.kind == "multilabel":
            columns.append(np.where(target.mask[:, None], target.values, 0).astype(np.int64))
        elif spec.kind == "multiclass":
            onehot = np.zeros((len(data), len(labels)), dtype=np.int64)
            rows = np.flatnonzero(target.mask)
            onehot[rows, target.values[rows]] = 1
            columns.append(onehot)
        else:
            continue
        names += [f"{spec.name}.{label}" for label in labels]
    if not columns:
        return np.zeros((len(data), 0), dtype=np.int64), []
    return np.concatenate(columns, axis=1), names


def stratified_split(
    data: LabelledData, specs: list[HeadSpec], fraction: float, seed: int
) -> tuple[LabelledData, LabelledData, list[str]]:
    """(train, validation, labels with fewer than 2 examples) by iterative stratification.

    Iterative stratification (Sechidis et al. 2011) places rare labels first, so
    a label with a handful of examples still lands in both parts, where a
    random split often leaves it out of one.
    """
    matrix, names = label_matrix(data, specs)
    counts = matrix.sum(axis=0)
    too_few = [name for name, count in zip(names, counts, strict=True) if count < 2]
    if matrix.shape[1] == 0:
        order = np.random.default_rng(seed).permutation(len(data))
        cut = max(1, round(len(data) * fraction))
        return data.subset(np.sort(order[cut:])), data.subset(np.sort(order[:cut])), too_few
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    if matrix.shape[1] == 1:
        # One label alone reads as a binary target, which iterstrat refuses; beside its
        # complement it is a label matrix, stratified the same way.
        matrix = np.concatenate([matrix, 1 - matrix], axis=1)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    train_idx, validation_idx = next(splitter.split(np.zeros(len(data)), matrix))
    return data.subset(np.sort(train_idx)), data.subset(np.sort(validation_idx)), too_few
