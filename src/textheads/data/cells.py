"""Parse one cell of a label column into the value its head expects.

A cell is *missing* when the key is absent, null, NaN or an empty string:
that row then adds no loss for that head. An empty list is a real multilabel
answer ("none of the labels"), written `[]` in JSON and in CSV cells.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from textheads.specs import HeadSpec, is_number

MISSING = object()
FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: regression targets (and the model) compute in float32."""


class CellError(ValueError):
    """A cell that cannot be read as the head's kind of label."""


def is_missing(value: Any) -> bool:
    """True for absent, null, NaN and blank cells."""
    if value is None or value is MISSING:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def parse_cell(value: Any, spec: HeadSpec) -> Any:
    """Return the cell's labels (list), class (str) or number (float), or MISSING."""
    if is_missing(value):
        return MISSING
    if spec.kind == "multilabel":
        return _multilabel(value, spec.separator)
    if spec.kind == "multiclass":
        return _multiclass(value)
    return _number(value)


def _label_name(value: Any) -> str:
    # Numbers name classes as in the config (`labels: [1, 2.5]` -> '1', '2.5').
    if not isinstance(value, str) and not is_number(value):
        raise CellError(f"expected label names (strings); got {_short(value)}")
    return str(value).strip()


def _multilabel(value: Any, separator: str | None) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise CellError(f"expected a JSON list of labels such as [\"a\", \"b\"]; got {text!r}") from None
        elif separator is not None:
            return [part.strip() for part in text.split(separator) if part.strip()]
        else:
            return [text]
    if isinstance(value, (list, tuple)):
        labels = [_label_name(item) for item in value]
        return [label for label in labels if label]
    if is_number(value):
        return [str(value)]
    raise CellError(f"expected a list of labels or a delimited string; got {value!r}")


def _multiclass(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return _label_name(value[0])
        raise CellError(f"expected one label for a multiclass head; got {len(value)}: {value!r}")
    return _label_name(value)


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CellError(f"expected a number; got {_short(value)}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        comma = isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+,\d+\s*", value)
        hint = f" (write decimals with a point: {value.strip().replace(',', '.')})" if comma else ""
        raise CellError(f"expected a number; got {_short(value)}{hint}") from None
    except OverflowError:  # an int of hundreds of digits
        number = FLOAT32_MAX * 2
    if math.isnan(number):
        return MISSING
    if math.isinf(number):
        raise CellError(f"expected a finite number; got {_short(value)}")
    if abs(number) > FLOAT32_MAX:
        raise CellError(f"{_short(value)} is too large: regression targets are float32, at most {FLOAT32_MAX:.4g} in size")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"
