"""`textheads evaluate MODEL DATA_FILE [--output metrics.json | --json] [--report report.html] [--revision REV]`."""

from __future__ import annotations

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


def evaluate(
    model_dir: ModelArgument,
    data_file: Annotated[Path, typer.Argument(help="Labelled CSV, TSV, JSONL or Parquet file.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write all metrics as JSON to this file ('-': to stdout, instead of the tables).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Write all metrics as JSON to stdout instead of the tables (same as --output -).")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write an HTML report (curves, calibration, worst errors; one file that opens offline).")] = None,
    per_label: Annotated[bool, typer.Option("--per-label/--no-per-label", help="Print the per-label report.")] = True,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoder pass.")] = 64,
    device: DeviceOption = "auto",
    precision: PrecisionOption = Precision.auto,
    revision: RevisionOption = None,
    quiet: Quiet = False,
) -> int:
    """Score a model on labelled data, per head."""
    quiet_library_logs()
    import json

    from textheads.classifier import TextClassifier
    from textheads.errors import ConfigError
    from textheads.io import write_json_atomic
    from textheads.ownership import check_output_file

    to_stdout = json_ or str(output) == "-"
    if output is not None and not to_stdout:
        check_output_file(output, kind="metrics", inputs=[data_file], model_dir=Path(model_dir))
    if report is not None:  # before the model is loaded: a refusal costs nothing
        if output is not None and not to_stdout and report.resolve() == output.resolve():
            raise ConfigError(f"--report and --output both name {report}: give each its own file")
        check_output_file(report, kind="report", option="--report", inputs=[data_file], model_dir=Path(model_dir))
    clf = TextClassifier.load(model_dir, revision=revision, device=device, precision=precision.value)
    metrics = clf.evaluate(data_file, batch_size=batch_size, show_progress=not quiet, report=report)
    if to_stdout:
        typer.echo(json.dumps(metrics, indent=2, ensure_ascii=False))
        typer.echo(clf.truncation_line(), err=True)  # stdout holds the JSON only
        if report is not None:
            typer.echo(f"Report written to {report}", err=True)
        return 0
    print_metrics(metrics, title=f"{data_file}", per_label=per_label)
    typer.echo(clf.truncation_line())
    if output is not None:
        write_json_atomic(output, metrics)
        typer.echo(f"Metrics written to {output}")
    if report is not None:
        typer.echo(f"Report written to {report}")
    return 0


def print_metrics(metrics: dict[str, dict[str, Any]], *, title: str, per_label: bool = True) -> None:
    """A headline table, then a per-label table for each classification head."""
    from textheads.evaluation import summary

    console = Console()
    table = Table(title=title, title_justify="left")
    table.add_column("head.metric")
    table.add_column("value", justify="right")
    for key, value in summary(metrics).items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    if not per_label:
        return
    for head, values in metrics.items():
        labels = values.get("per_label") if isinstance(values, dict) else None
        if not labels:
            continue
        report = Table(title=f"{head}: per label ({values['n_rows']} rows)", title_justify="left")
        for column in ("label", "precision", "recall", "f1", "support"):
            report.add_column(column, justify="left" if column == "label" else "right")
        for label, row in labels.items():
            report.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
        console.print(report)
        matrix = values.get("confusion_matrix")
        if matrix:
            confusion = Table(title=f"{head}: confusion matrix (rows true, columns predicted)", title_justify="left")
            confusion.add_column("")
            for label in matrix["labels"]:
                confusion.add_column(label, justify="right")
            for label, row in zip(matrix["labels"], matrix["matrix"], strict=True):
                confusion.add_row(label, *map(str, row))
            console.print(confusion)


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
