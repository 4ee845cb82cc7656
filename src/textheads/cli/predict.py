"""`textheads predict MODEL_DIR [TEXT ...] [--input FILE --output FILE.jsonl] [--revision REV]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from textheads.cli._common import (
    DeviceOption,
    ModelArgument,
    Precision,
    PrecisionOption,
    Quiet,
    RevisionOption,
    quiet_library_logs,
)
from textheads.errors import ConfigError


def predict(
    model_dir: ModelArgument,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", "-i", help="CSV, TSV, JSONL or Parquet file of texts.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write one JSON record per text here.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoder pass.")] = 64,
    device: DeviceOption = "auto",
    precision: PrecisionOption = Precision.auto,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted --input/--output run after its last complete row.")] = False,
    revision: RevisionOption = None,
    quiet: Quiet = False,
) -> int:
    """Print a table per text and head, or stream a file's predictions to JSONL."""
    if not texts and input_file is None:
        raise ConfigError("give texts to classify, or --input FILE")
    if resume and (input_file is None or output is None):
        raise ConfigError("--resume continues a run that writes a file's predictions: give --input FILE and --output FILE.jsonl")
    if output is not None:
        from textheads.ownership import check_output_file

        check_output_file(output, kind="predictions", inputs=[input_file] if input_file else [], model_dir=Path(model_dir))
    quiet_library_logs()
    from textheads.classifier import TextClassifier

    clf = TextClassifier.load(model_dir, revision=revision, device=device, precision=precision.value)
    if input_file is not None and output is not None:
        count, _ = _predict_file(clf, input_file, output, batch_size=batch_size, resume=resume, quiet=quiet)
        typer.echo(f"Wrote {count} predictions to {output}")
        typer.echo(clf.truncation_line())
        return 0
    if input_file is not None:  # one JSON record per line on stdout, streamed
        for record in clf.iter_file_records(input_file, batch_size=batch_size, show_progress=not quiet):
            typer.echo(json.dumps(record, ensure_ascii=False))
        typer.echo(clf.truncation_line(), err=True)  # stdout holds the records only
        return 0
    records = clf.predict_records(list(texts or []), batch_size=batch_size)
    if output is not None:
        _write_jsonl(output, records)
        typer.echo(f"Wrote {len(records)} predictions to {output}")
        typer.echo(clf.truncation_line())
    else:
        print_tables(clf.heads_, records)
    return 0


def _predict_file(clf: Any, input_file: Path, output: Path, *, batch_size: int, resume: bool, quiet: bool) -> tuple[int, int]:
    """`predict_file_to_jsonl`, saying how to continue when interrupted."""
    from textheads.inference.resumable import partial_paths

    try:
        return clf.predict_file_to_jsonl(input_file, output, batch_size=batch_size, show_progress=not quiet, resume=resume)
    except KeyboardInterrupt:
        partial = partial_paths(output)[0]
        if partial.exists():
            typer.echo(f"Interrupted: the predictions so far are kept in {partial}; add --resume to the same command to continue", err=True)
        raise


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    from textheads.io import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def print_tables(specs: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """One table per text and classification head; regression values on one line."""
    console = Console()
    for record in records:
        console.rule(f"[bold]{record['text'][:100]}", align="left")
        for name, spec in specs.items():
            entry = record[name]
            if spec.kind == "regression":
                console.print(f"[bold]{name}[/]: {entry['value']:.3f}")
                continue
            chosen = set(entry["labels"]) if spec.kind == "multilabel" else {entry["label"]}
            table = Table(title=f"{name} ({spec.kind})", title_justify="left", show_edge=False)
            table.add_column("Label")
            table.add_column("Prediction", justify="right")
            table.add_column("")
            thresholds = spec.thresholds_by_label()
            for label, p in sorted(entry["probabilities"].items(), key=lambda item: -item[1]):
                mark = "✓" if label in chosen else ""
                if thresholds:
                    mark = f"{mark} (≥ {thresholds[label]:.2f})" if mark else ""
                table.add_row(label, f"{p:.2f}", mark)
            console.print(table)
        if record.get("truncated"):
            console.print("[yellow]note: this text was longer than the model reads; part of it was not read[/]")


def register(app: typer.Typer) -> None:
    app.command()(predict)
