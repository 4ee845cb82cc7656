"""Texts that appear more than once: repeats, copies whose labels disagree, and leakage (a
validation or test text that is also a training text)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable

import numpy as np

from textheads.data.dataset import LabelledData
from textheads.inspection.figures import DuplicateInspection, RowRef, TextGroup
from textheads.specs import HeadSpec

EXAMPLES = 5


def inspect_duplicates(splits: dict[str, LabelledData], specs: list[HeadSpec]) -> DuplicateInspection:
    """Exact-text duplicates within and across `splits` (keyed train, validation, test)."""
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name, data in splits.items():
        for row, text in enumerate(data.texts):
            groups[text].append((name, row))
    repeated = dict.fromkeys(splits, 0)
    leaked = {name: 0 for name in splits if name != "train"}
    conflicts: list[TextGroup] = []
    leaks: list[TextGroup] = []
    for text, rows in groups.items():
        if len(rows) < 2:
            continue
        seen: set[str] = set()
        for name, _ in rows:
            repeated[name] += name in seen
            seen.add(name)
        in_train = "train" in seen
        for name, _ in rows:
            if in_train and name != "train":
                leaked[name] += 1
        disagree = [spec.name for spec in specs if len({_label(splits[name], spec, row) for name, row in rows} - {None}) > 1]
        if disagree:
            conflicts.append(TextGroup(text, [_ref(splits, name, row) for name, row in rows], disagree))
        if in_train and len(seen) > 1:
            leaks.append(TextGroup(text, [_ref(splits, name, row) for name, row in rows]))
    return DuplicateInspection(
        repeated=repeated,
        conflicting=len(conflicts),
        leaked=leaked,
        conflict_examples=conflicts[:EXAMPLES],
        leak_examples=leaks[:EXAMPLES],
    )


def _label(data: LabelledData, spec: HeadSpec, row: int) -> Hashable | None:
    """The row's answer for a head in a comparable form; None when it has none."""
    target = data.targets[spec.name]
    if not target.mask[row]:
        return None
    value = target.values[row]
    if spec.kind == "multilabel":
        return tuple(np.flatnonzero(value).tolist())
    return value.item()


def _ref(splits: dict[str, LabelledData], name: str, row: int) -> RowRef:
    data = splits[name]
    return RowRef(name, data.source, data.lines[row] if data.lines else row + 1)
