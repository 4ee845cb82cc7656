"""Tell a head's kind from the cells of its column, where the cells leave no doubt.

- any cell holding a list (JSON `["a", "b"]`, or such a string in CSV): `multilabel`;
- every cell a number, some not whole or more than `MAX_CLASSES` distinct: `regression`;
- every cell a name (not a number): `multiclass`.

Whole numbers of few distinct values (star ratings, 0/1) could be classes or a scale:
that is refused with the choice named, never guessed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from textheads.data.cells import is_missing
from textheads.data.dataset import check_columns
from textheads.data.reading import header_columns, read_records
from textheads.errors import ConfigError
from textheads.specs import HeadKind

MAX_CLASSES = 10
"""Whole-number columns with more distinct values than this read as a regression target."""


def infer_kind(path: str | Path, column: str) -> HeadKind:
    """The kind of the head whose labels are in `column` of the file at `path`."""
    header = header_columns(path)
    if header is not None:
        check_columns(str(path), [column], [], header)
    numbers: set[float] = set()
    names = 0
    present: set[str] = set()
    for _, record in read_records(path, columns=[column]):
        present.update(record)
        value = record.get(column)
        if is_missing(value):
            continue
        if _is_list(value):
            return "multilabel"
        number = _number(value)
        if number is None:
            names += 1
        else:
            numbers.add(number)
    if header is None:  # JSONL: the columns are the keys its rows hold
        check_columns(str(path), [column], [], sorted(present))
    return _kind_of(column, path, numbers, names)


def _kind_of(column: str, path: str | Path, numbers: set[float], names: int) -> HeadKind:
    choose = f"name the kind: --heads {column}:multiclass or {column}:regression"
    if not numbers and not names:
        raise ConfigError(f"cannot tell the kind of head {column!r}: column {column!r} of {path} holds no label; name the kind: --heads {column}:KIND")
    if names:
        return "multiclass"  # names (a few among numbers, too: classes, some named by numbers)
    if any(not n.is_integer() for n in numbers) or len(numbers) > MAX_CLASSES:
        return "regression"
    values = sorted(numbers)
    raise ConfigError(
        f"cannot tell the kind of head {column!r}: column {column!r} of {path} holds {len(values)} whole numbers "
        f"({', '.join(f'{v:g}' for v in values)}), which may be classes or a scale; {choose}"
    )


def _is_list(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return True
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return isinstance(json.loads(value), list)
        except json.JSONDecodeError:
            return False
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
