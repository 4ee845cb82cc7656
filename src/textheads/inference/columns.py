"""Predictions as Arrow columns, one per head: what the Spark and Ray integrations append
to a table of texts, and the per-process model cache their workers share.

Each head's column, by kind (a label is a struct field name as it is, dots and spaces
included):

- multilabel: `struct<probabilities: struct<LABEL: float32, ...>, labels: list<string>>`,
  the labels at or over their thresholds;
- multiclass: `struct<probabilities: struct<LABEL: float32, ...>, label: string>`;
- regression: `float64`, the value in the target's units.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from textheads.classifier import TextClassifier
from textheads.decisions import decide, head_decisions
from textheads.errors import ConfigError, DataError, ModelLoadError
from textheads.specs import HeadSpec

OnEmpty = Literal["error", "null"]
ON_EMPTY = ("error", "null")


def head_type(spec: HeadSpec) -> pa.DataType:
    """The Arrow type of one head's column."""
    if spec.kind == "regression":
        return pa.float64()
    probabilities = pa.struct([pa.field(label, pa.float32()) for label in spec.labels or []])
    decision = pa.field("labels", pa.list_(pa.string())) if spec.kind == "multilabel" else pa.field("label", pa.string())
    return pa.struct([pa.field("probabilities", probabilities), decision])


def output_schema(specs: dict[str, HeadSpec], prefix: str = "") -> pa.Schema:
    """The columns `predict_columns` gives, named `prefix` + head name."""
    return pa.schema([pa.field(prefix + name, head_type(spec)) for name, spec in specs.items()])


def check_arguments(*, text_column: str, columns: Sequence[str] | None, specs: dict[str, HeadSpec], prefix: str, on_empty: str) -> None:
    """Refuse, before any work, an unknown `on_empty`, and (when the `columns` are known) a
    missing text column or an output column that would replace an input column (compared
    without case, as Spark does by default)."""
    if on_empty not in ON_EMPTY:
        raise ConfigError(f"on_empty must be one of {list(ON_EMPTY)}; got {on_empty!r} instead")
    if columns is None:
        return
    if text_column not in columns:
        raise ConfigError(f"no text column {text_column!r}: the columns are {list(columns)}; pass text_column=")
    taken = {c.lower() for c in columns}
    clashes = [prefix + name for name in specs if (prefix + name).lower() in taken]
    if clashes:
        raise ConfigError(
            f"the prediction column(s) {clashes} would replace input column(s) of the same name; "
            "pass prefix= (e.g. prefix='predicted_') or rename those columns first"
        )


def load_cached(model: str | Path, threads: int | None = None) -> TextClassifier:
    """The model at `model`, loaded once per process (and again only when its config.json
    changes, as a new save at the same path does), its CPU threads capped at `threads`."""
    path = Path(model).resolve()
    try:
        stamp = (path / "config.json").stat()
    except OSError as exc:
        raise ModelLoadError(
            f"cannot read the model {path} on host {socket.gethostname()}: {exc.strerror}. "
            "The model path must be readable on every worker (a shared file system, or copied to each node)"
        ) from None
    return _load(str(path), stamp.st_mtime_ns, stamp.st_size, threads)


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, size: int, threads: int | None) -> TextClassifier:
    return TextClassifier.load(path, threads=threads)


def predict_columns(
    clf: TextClassifier,
    texts: Sequence[object],
    *,
    column: str,
    batch_size: int = 64,
    on_empty: OnEmpty = "error",
) -> dict[str, pa.Array]:
    """One Arrow array per head (see the module docstring) for `texts`, in their order,
    through `TextClassifier.predict_proba` and the library's own decisions.

    A null or blank text is a `DataError` naming `column`, or (`on_empty="null"`) gets
    null in every head's column.
    """
    valid = np.fromiter((isinstance(t, str) and bool(t.strip()) for t in texts), dtype=bool, count=len(texts))
    if not valid.all() and on_empty == "error":
        first = texts[int(np.argmin(valid))]
        raise DataError(
            f"{int((~valid).sum())} of {len(texts)} texts in a batch are null or blank (the first: {first!r}); "
            "expected non-empty strings. Filter them out first, or pass on_empty='null' to get null predictions for them",
            column=column,
        )
    kept = [t for t, ok in zip(texts, valid, strict=True) if ok]
    outputs = clf.predict_proba(kept, batch_size=batch_size) if kept else _no_outputs(clf.heads_)
    return {name: _head_array(spec, outputs[name], valid) for name, spec in clf.heads_.items()}


def _no_outputs(specs: dict[str, HeadSpec]) -> dict[str, np.ndarray]:
    return {name: np.zeros((0,) if s.kind == "regression" else (0, s.num_outputs), dtype=np.float32) for name, s in specs.items()}


def _head_array(spec: HeadSpec, output: np.ndarray, valid: np.ndarray) -> pa.Array:
    """One head's column for the valid rows' `output`, with nulls where `valid` is false."""
    rows = np.cumsum(valid) - 1  # row in `output` of each valid text
    mask = pa.array(~valid)
    if spec.kind == "regression":
        values = np.zeros(len(valid), dtype=np.float64)
        values[valid] = output
        return pa.array(values, type=pa.float64(), mask=~valid)
    labels = spec.labels or []
    spread = np.zeros((len(valid), len(labels)), dtype=np.float32)
    spread[valid] = output
    probabilities = pa.StructArray.from_arrays([pa.array(spread[:, j]) for j in range(len(labels))], fields=list(head_type(spec)[0].type))
    if spec.kind == "multilabel":
        chosen = head_decisions(spec, output) if len(output) else np.zeros((0, len(labels)), dtype=bool)
        names = np.asarray(labels, dtype=object)
        decisions = [names[chosen[rows[i]]].tolist() if ok else None for i, ok in enumerate(valid)]
        decision = pa.array(decisions, type=pa.list_(pa.string()))
    else:
        decision = pa.array([decide(spec, output[rows[i]]) if ok else None for i, ok in enumerate(valid)], type=pa.string())
    return pa.StructArray.from_arrays([probabilities, decision], fields=list(head_type(spec)), mask=mask)
