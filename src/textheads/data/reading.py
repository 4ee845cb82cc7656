"""Read CSV, TSV, JSONL and Parquet files as records with their line numbers.

Line numbers are 1-based as an editor shows them: for CSV and TSV the header
is line 1; for JSONL each record is its own line; for Parquet the number is
the row's position (1-based), since the file has no lines.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textheads.errors import DataError

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")

Record = dict[str, Any]


def file_format(path: Path) -> str:
    """The format named by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"unsupported file type {suffix or '(none)'!r}; expected one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}",
            path=str(path),
        )
    return {".json": "jsonl"}.get(suffix, suffix[1:])


def read_records(path: str | Path, columns: Sequence[str] | None = None) -> Iterator[tuple[int, Record]]:
    """Yield `(line_number, record)` for each data row of a file, one row at a time.

    `columns`, when given, are the only ones a Parquet file's records hold (its other
    columns are not read); other formats hold every column, as their rows are parsed whole.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise DataError("file not found", path=str(path))
    with _reading(path):
        if fmt == "parquet":
            yield from _read_parquet(path, columns)
        elif fmt == "jsonl":
            yield from _read_jsonl(path)
        else:
            yield from _read_delimited(path, "," if fmt == "csv" else "\t")


def header_columns(path: str | Path) -> list[str] | None:
    """Column names fixed by the file's header or schema; None for JSONL."""
    path = Path(path)
    fmt = file_format(path)
    if fmt in ("csv", "tsv"):
        with _reading(path), path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle, delimiter="," if fmt == "csv" else "\t"), [])
    if fmt == "parquet":
        with _reading(path):
            return list(_parquet_file(path).schema_arrow.names)
    return None


def undecodable_line(path: Path) -> tuple[int, str]:
    """(1-based line, description) of the first bytes in a file that are not UTF-8.

    Lines end at \\n, \\r\\n or a lone \\r, as Python's text files (and editors) count them.
    """
    with path.open("rb") as handle:
        start = handle.read(2)
        if start in (b"\xff\xfe", b"\xfe\xff"):
            return 1, "the file is UTF-16 (its byte-order mark says so), not UTF-8"
        handle.seek(0)
        line = 1
        for chunk in handle:  # ends at b"\n"; a UTF-8 character never holds a \n or \r byte
            for piece in chunk.splitlines(keepends=True):
                try:
                    piece.decode("utf-8")
                except UnicodeDecodeError as exc:
                    character = len(piece[: exc.start].decode("utf-8")) + 1
                    return line, f"byte 0x{piece[exc.start]:02x} at character {character} is not UTF-8"
                line += 1
    return line, "the text is not UTF-8"


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a file that cannot be read or decoded into a DataError naming it (and the line)."""
    try:
        yield
    except UnicodeDecodeError:
        line, problem = undecodable_line(path)
        excel = " (in Excel: Save As 'CSV UTF-8')" if path.suffix.lower() in (".csv", ".tsv") else ""
        raise DataError(f"{problem}; save the file as UTF-8{excel}", path=str(path), line=line) from None
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", path=str(path)) from None


def _read_jsonl(path: Path) -> Iterator[tuple[int, Record]]:
    # utf-8-sig: a byte-order mark (as Windows tools write) is not part of the first record.
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                array = line.lstrip().startswith("[")
                array = "; expected one JSON object per line (JSON Lines), not a JSON array" if array else ""
                raise DataError(
                    f"not valid JSON ({exc.msg} at character {exc.pos + 1}){array}",
                    path=str(path),
                    line=line_number,
                ) from None
            except ValueError as exc:  # an integer of more digits than Python converts
                raise DataError(f"not readable JSON: {exc}", path=str(path), line=line_number) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"expected a JSON object per line; got {type(record).__name__}",
                    path=str(path),
                    line=line_number,
                )
            yield line_number, record


def _read_delimited(path: Path, delimiter: str) -> Iterator[tuple[int, Record]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, None)
            if not header:
                raise DataError("the file is empty; expected a header row", path=str(path))
            _check_header(header, path)
            start = reader.line_num + 1
            for row in reader:
                line_number, start = start, reader.line_num + 1
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"expected {len(header)} fields as in the header; got {len(row)}",
                        path=str(path),
                        line=line_number,
                    )
                yield line_number, dict(zip(header, row, strict=True))
        except csv.Error as exc:
            long = "; a text this long needs a JSONL or Parquet file" if "field limit" in str(exc) else ""
            message = f"not readable as {path.suffix[1:].upper()} ({exc}){long}"
            raise DataError(message, path=str(path), line=reader.line_num) from None


def _check_header(header: list[str], path: Path) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        message = f"the header names column(s) {repeated} more than once; give each column its own name"
        raise DataError(message, path=str(path), line=1)


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except pa.ArrowException as exc:
        raise DataError(f"not a readable Parquet file ({exc})", path=str(path)) from None


def _read_parquet(path: Path, columns: Sequence[str] | None) -> Iterator[tuple[int, Record]]:
    # Batch by batch: memory holds one row group's column chunks (the writer chose their
    # size), never the whole file.
    parquet = _parquet_file(path)
    if columns is not None:
        columns = [name for name in dict.fromkeys(columns) if name in parquet.schema_arrow.names]
    row_number = 0
    for batch in parquet.iter_batches(batch_size=4096, columns=columns):
        for record in batch.to_pylist():
            row_number += 1
            yield row_number, record
