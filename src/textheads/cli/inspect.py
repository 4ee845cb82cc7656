"""`textheads inspect CONFIG [--set key=value ...]` and `textheads inspect DATA_FILE --heads NAME:KIND,...`:
the data of a training run described before training, with `--json` or `--report FILE.html`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textheads.cli._common import quiet_library_logs

_DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")  # data.reading.SUPPORTED_SUFFIXES, without importing it
_KINDS = ("multilabel", "multiclass", "regression")


def parse_heads(values: list[str]) -> dict[str, str | None]:
    """`topics:multilabel,level:multiclass` (one or several options) as {head: kind}; a head
    named without its kind (`topics,level`) maps to None: its kind is told from its cells."""
    heads: dict[str, str | None] = {}
    for value in values:
        for item in value.split(","):
            name, colon, kind = (part.strip() for part in item.partition(":"))
            if not name or (colon and kind not in _KINDS):
                raise typer.BadParameter(f"expected NAME or NAME:KIND with KIND one of {', '.join(_KINDS)}, e.g. topics:multilabel; got {item.strip()!r}", param_hint="--heads")
            if name in heads:
                raise typer.BadParameter(f"head {name!r} is named twice", param_hint="--heads")
            heads[name] = kind or None
    return heads


def inspect(
    path: Annotated[Path, typer.Argument(help="A YAML run config (as for train), or a labelled CSV, TSV, JSONL or Parquet file with --heads.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set model.max_length=256 or --set data.validation=dev.jsonl.")] = None,
    heads: Annotated[list[str] | None, typer.Option("--heads", help="A data file's heads, each named by its label column: NAME:KIND,... with KIND multilabel, multiclass or regression; NAME alone: the kind its cells show.")] = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="A data file's text column (default: text).")] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", help="A data file's encoder, whose tokens are counted (default: the default encoder).")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", min=8, help="A data file's max_length in tokens (default: 128).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Write the figures as JSON to stdout instead of the tables.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the figures as a self-contained HTML page.")] = None,
) -> int:
    """Describe a run's data before training: rows per split, label counts, rare labels, co-occurrence, token lengths, duplicates."""
    data_file = path.suffix.lower() in _DATA_SUFFIXES
    given = [flag for flag, value in (("--heads", heads), ("--text-column", text_column), ("--encoder", encoder), ("--max-length", max_length)) if value]
    if data_file and not heads:
        raise typer.BadParameter(f"{path} is a data file: name its heads, e.g. --heads topics:multilabel,level:multiclass", param_hint="--heads")
    if not data_file and given:
        raise typer.BadParameter(f"{', '.join(given)} describe a data file; {path} is read as a run config: set its keys with --set (e.g. --set model.max_length=256)", param_hint=given[0])
    head_kinds = parse_heads(heads or [])
    quiet_library_logs()
    import json

    from textheads.config import load_config
    from textheads.inspection import data_file_config, inspect_data
    from textheads.inspection.terminal import print_inspection
    from textheads.ownership import check_output_file

    if data_file:
        config = data_file_config(path, head_kinds, text=text_column, encoder=encoder, max_length=max_length, overrides=set_ or [])
    else:
        config = load_config(path, set_ or [])
    if report is not None:
        inputs = [Path(p) for p in (config.data.train, config.data.validation, config.data.test) if p is not None]
        check_output_file(report, kind="report", option="--report", inputs=[path, *inputs])
    figures = inspect_data(config)
    if json_:
        typer.echo(json.dumps(figures.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_inspection(figures)
    if report is not None:
        from textheads.reports.inspection import write_inspection_report

        write_inspection_report(figures, report, title=f"Data inspection: {path.name}")
        typer.echo(f"Report written to {report}", err=json_)
    return 0


def register(app: typer.Typer) -> None:
    app.command()(inspect)
