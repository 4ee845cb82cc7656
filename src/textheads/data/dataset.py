"""Load a labelled file into texts plus per-head targets and masks.

Every row is checked before anything trains; problems are collected and
reported together, each naming file, line and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from textheads.data.cells import MISSING, CellError, parse_cell
from textheads.data.reading import Record, header_columns, read_records
from textheads.errors import DataError
from textheads.specs import HeadSpec

Split = Literal["train", "validation", "test"]
_MAX_REPORTED = 10


@dataclass
class HeadTargets:
    """One head's targets for every row, and which rows have them."""

    values: np.ndarray
    """multilabel: float32 (n, L) of 0/1; multiclass: int64 (n,); regression: float32 (n,)."""
    mask: np.ndarray
    """bool (n,): True where the row has a label for this head."""


@dataclass
class LabelledData:
    """Texts with targets for each head, as read from one file."""

    texts: list[str]
    targets: dict[str, HeadTargets]
    source: str = ""
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabelledData:
        """The rows at `indices`, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return LabelledData(
            texts=[self.texts[i] for i in idx],
            targets={
                name: HeadTargets(t.values[idx], t.mask[idx]) for name, t in self.targets.items()
            },
            source=self.source,
            lines=[self.lines[i] for i in idx] if self.lines else [],
        )


class _Problems:
    """Collects row problems and raises them together."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[int | None, str | None, str]] = []

    def add(self, line: int | None, column: str | None, message: str) -> None:
        self.items.append((line, column, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        line, column, message = self.items[0]
        extra = ""
        if len(self.items) > 1:
            shown = [
                f"  line {ln}, column {col!r}: {msg}" if col else f"  line {ln}: {msg}"
                for ln, col, msg in self.items[1:_MAX_REPORTED]
            ]
            more = len(self.items) - _MAX_REPORTED
            extra = f"\n{len(self.items) - 1} more problem(s) in this file:\n" + "\n".join(shown)
            if more > 0:
                extra += f"\n  ... and {more} more"
        raise DataError(message + extra, path=self.path, line=line, column=column)


def check_columns(path: str, required: Iterable[str], records: list[tuple[int, Record]], header: list[str] | None) -> None:
    """Fail when a configured column is in no row (or not in the header)."""
    present = set(header) if header is not None else set().union(*(r.keys() for _, r in records))
    for column in required:
        if column not in present:
            raise DataError(
                f"column {column!r} not found; the file has columns {sorted(present)}. "
                f"Set the column name in the config (data.text, or heads.NAME.column).{_delimiter_hint(header)}",
                path=path,
            )


def _delimiter_hint(header: list[str] | None) -> str:
    # One column whose name holds a ';' (or tab, or comma) is a file split by another delimiter.
    if header is None or len(header) != 1:
        return ""
    found = [name for name, char in (("';'", ";"), ("tabs", "\t"), ("','", ","), ("'|'", "|")) if char in header[0]]
    if not found:
        return ""
    return f" The header reads as one column: the file seems split by {found[0]}; textheads reads ',' in .csv and tabs in .tsv files."


def _join_text(record: Record, columns: Sequence[str], separator: str) -> str | tuple[str, str]:
    """The row's text, or (column, problem) when a text cell is unusable."""
    parts = []
    for column in columns:
        value = record.get(column)
        if not isinstance(value, str):
            kind = "missing" if value is None else f"not a string ({type(value).__name__})"
            return column, f"text is {kind}; expected a non-empty string"
        if not value.strip():
            return column, "text is empty; expected a non-empty string"
        parts.append(value)
    return separator.join(parts)


Source = str | Path | Sequence[Mapping[str, Any]]


def _read(source: Source) -> tuple[str, list[tuple[int, Record]], list[str] | None]:
    """(name, numbered records, header columns) of a file or of in-memory records."""
    if isinstance(source, (str, Path)):
        return str(source), list(read_records(source)), header_columns(source)
    records = []
    for row, record in enumerate(source, start=1):
        if not isinstance(record, Mapping):
            raise DataError(f"expected a mapping of column to value; got {type(record).__name__}", path="<records>", line=row)
        records.append((row, dict(record)))
    return "<records>", records, None


def load_texts(source: Source, text_columns: Sequence[str], separator: str = "\n") -> list[str]:
    """Read only the text of each row, for prediction (none for an empty file)."""
    path, records, header = _read(source)
    if not records:
        return []  # an empty JSONL file has no columns to check
    check_columns(path, text_columns, records, header)
    problems = _Problems(path)
    texts = []
    for line, record in records:
        text = _join_text(record, text_columns, separator)
        if isinstance(text, tuple):
            problems.add(line, *text)
        else:
            texts.append(text)
    problems.raise_if_any()
    return texts


def check_text_file(path: str | Path, text_columns: Sequence[str], separator: str = "\n") -> int:
    """Check the text of every row of a file (a lazy pass: any size); returns the number of rows."""
    path = str(path)
    header = header_columns(path)
    if header is not None:
        check_columns(path, text_columns, [], header)
    problems = _Problems(path)
    rows = 0
    for line, record in read_records(path, columns=text_columns):  # one row at a time, none kept
        rows += 1
        text = _join_text(record, text_columns, separator)
        if isinstance(text, tuple):
            problems.add(line, *text)
            if len(problems.items) >= _MAX_REPORTED:
                break
    problems.raise_if_any()
    return rows


def iter_text_chunks(
    path: str | Path,
    text_columns: Sequence[str],
    separator: str = "\n",
    chunk_size: int = 4096,
    *,
    checked: bool = False,
    start: int = 0,
) -> Iterator[list[str]]:
    """Texts of a file in chunks, for files too large to hold in memory; one chunk is
    held at a time.

    The whole file is checked first (`check_text_file`; skipped when `checked` says the
    caller did), so a bad row at the end fails before any prediction is written.
    Rows before `start` are read past, not kept.
    """
    if not checked:
        check_text_file(path, text_columns, separator)
    chunk: list[str] = []
    for row, (_, record) in enumerate(read_records(path, columns=text_columns)):
        if row < start:
            continue
        chunk.append(_join_text(record, text_columns, separator))  # type: ignore[arg-type]
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_labelled(
    source: Source,
    heads: Sequence[HeadSpec],
    text_columns: Sequence[str],
    *,
    split: Split,
    separator: str = "\n",
    allow_new_labels: bool = False,
) -> tuple[LabelledData, list[HeadSpec]]:
    """Read and check a labelled file.

    Returns the data and the head specs with their labels filled in: heads
    without labels get them from this file when `allow_new_labels` is true
    (training data), in sorted order. Otherwise a label outside a head's set
    is an error naming where it is.
    """
    path, records, header = _read(source)
    if not records:
        raise DataError("the file has no data rows", path=path)
    check_columns(path, [*text_columns, *(h.source_column for h in heads)], records, header)
    problems = _Problems(path)
    texts: list[str] = []
    lines: list[int] = []
    cells: dict[str, list[Any]] = {h.name: [] for h in heads}
    for line, record in records:
        text = _join_text(record, text_columns, separator)
        if isinstance(text, tuple):
            problems.add(line, *text)
            continue
        row_cells = {}
        bad_cell = False
        for head in heads:
            try:
                row_cells[head.name] = parse_cell(record.get(head.source_column, MISSING), head)
            except CellError as exc:
                problems.add(line, head.source_column, str(exc))
                row_cells[head.name] = MISSING
                bad_cell = True
        if not bad_cell and all(value is MISSING for value in row_cells.values()):
            columns = sorted({h.source_column for h in heads})
            problems.add(line, None, f"the row has no label for any head (columns {columns})")
        texts.append(text)
        lines.append(line)
        for name, value in row_cells.items():
            cells[name].append(value)
    if split == "train":
        _require_labels_per_head(heads, cells, problems, text_columns, len(records))
    problems.raise_if_any()

    resolved = [_resolve_labels(h, cells[h.name], allow_new_labels, path) for h in heads]
    targets = {}
    for head in resolved:
        targets[head.name] = _encode(head, cells[head.name], lines, problems)
    problems.raise_if_any()
    return LabelledData(texts=texts, targets=targets, source=path, lines=lines), resolved


def unlabelled_head_error(head: HeadSpec, rows: int, path: str, *, after_split: bool = False) -> DataError:
    """The error for a head that has no labelled training row: it could learn nothing
    (and a regression head would have no mean or spread of its targets)."""
    where = f"{rows} training rows left after holding out validation rows" if after_split else f"{rows} training rows"
    return DataError(
        f"head {head.name!r} has no labelled row to train on: the column is missing or empty "
        f"in all {where}. Label some rows, point heads.{head.name}.column at the right column, "
        "or remove the head",
        path=path,
        column=head.source_column,
    )


def _require_labels_per_head(
    heads: Sequence[HeadSpec], cells: dict[str, list[Any]], problems: _Problems, text_columns: Sequence[str], rows: int
) -> None:
    # The root cause before its symptoms (rows without any label), unless rows were
    # skipped for their text or the column's cells were unreadable: problems name those.
    unreadable = {column for _, column, _ in problems.items}
    if unreadable.intersection(text_columns):
        return
    for head in heads:
        if head.source_column not in unreadable and all(value is MISSING for value in cells[head.name]):
            raise unlabelled_head_error(head, rows, problems.path)


def require_labelled_rows(data: LabelledData, heads: Sequence[HeadSpec], *, after_split: bool = False) -> None:
    """Fail unless every head has at least one labelled row in `data` (training data)."""
    for head in heads:
        if not data.targets[head.name].mask.any():
            raise unlabelled_head_error(head, len(data), data.source, after_split=after_split)


def _resolve_labels(head: HeadSpec, cells: list[Any], discover: bool, path: str) -> HeadSpec:
    if head.labels_file is not None and head.labels is None:
        # A config read by `load_config` has its labels files read already (relative to the
        # config); one given in Python (`TextClassifier(heads=…)`) is read here, from the cwd.
        head = head.with_labels_resolved()
    if head.kind == "regression" or head.labels is not None:
        return head
    if not discover:
        raise DataError(f"head {head.name!r} has no label set to check this data against", path=path)
    seen: set[str] = set()
    for value in cells:
        if value is not MISSING:
            seen.update(value if isinstance(value, list) else [value])
    if head.kind == "multiclass" and len(seen) < 2:
        raise DataError(
            f"head {head.name!r} is multiclass but column {head.source_column!r} holds "
            f"{len(seen)} distinct label(s); a multiclass head needs at least 2",
            path=path,
        )
    if not seen:
        raise DataError(
            f"column {head.source_column!r} holds no labels for head {head.name!r}: every labelled "
            f"row is an empty list. Label some rows or give heads.{head.name}.labels",
            path=path,
        )
    try:
        return HeadSpec.model_validate({**head.model_dump(), "labels": sorted(seen)})
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise DataError(f"head {head.name!r} with the labels found in column {head.source_column!r}: {problems}", path=path) from None


def _encode(head: HeadSpec, cells: list[Any], lines: list[int], problems: _Problems) -> HeadTargets:
    n = len(cells)
    mask = np.array([value is not MISSING for value in cells], dtype=bool)
    if head.kind == "regression":
        values = np.array([np.nan if v is MISSING else v for v in cells], dtype=np.float32)
        return HeadTargets(values, mask)
    index = {label: i for i, label in enumerate(head.labels or [])}
    allowed = _preview(head.labels or [])
    if head.kind == "multiclass":
        values = np.full(n, -100, dtype=np.int64)
        for row, value in enumerate(cells):
            if value is MISSING:
                continue
            if value not in index:
                problems.add(lines[row], head.source_column, f"unknown label {value!r}; expected one of {allowed}")
            else:
                values[row] = index[value]
        return HeadTargets(values, mask)
    values = np.zeros((n, len(index)), dtype=np.float32)
    for row, value in enumerate(cells):
        if value is MISSING:
            continue
        for label in value:
            if label not in index:
                problems.add(lines[row], head.source_column, f"unknown label {label!r}; expected labels from {allowed}")
            else:
                values[row, index[label]] = 1.0
    return HeadTargets(values, mask)


def _preview(labels: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(label) for label in labels[:limit])
    return f"[{shown}{', ...' if len(labels) > limit else ''}]"
