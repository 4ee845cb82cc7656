"""`textheads export MODEL_DIR --format onnx [--quantize int8] [--output DIR] [--revision REV]`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from textheads.cli._common import RevisionOption, quiet_library_logs
from textheads.errors import ConfigError


class Format(str, Enum):
    onnx = "onnx"


class Quantization(str, Enum):
    int8 = "int8"


def export(
    model_dir: Annotated[str, typer.Argument(help="A trained model directory or Hub id (org/name; a local path of that name wins).", show_default=False)],
    format: Annotated[Format, typer.Option("--format", "-f", help="Export format.")] = Format.onnx,
    quantize: Annotated[Quantization | None, typer.Option(help="int8: dynamic int8 quantisation of the encoder, checked against the fp32 model.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write: new, empty, or an earlier export (default MODEL_DIR/onnx or MODEL_DIR/onnx-int8; needed for a Hub id).")] = None,
    min_agreement: Annotated[float, typer.Option(min=0.0, max=1.0, help="int8: the share of decisions (each text's class; each text's decision on each label) in which every classification head must agree with the fp32 model.")] = 0.99,
    calibration: Annotated[Path | None, typer.Option(help="int8: a data file whose texts (the model's text column) the check runs on, instead of the sample texts stored with the model.")] = None,
    force: Annotated[bool, typer.Option("--force", help="int8: export even below --min-agreement, or without texts to check on.")] = False,
    revision: RevisionOption = None,
) -> int:
    """Export encoder + all heads (probabilities and values inside the graph) to ONNX."""
    if quantize is None and (calibration is not None or force):
        raise ConfigError("--calibration and --force apply to --quantize int8 only")
    quiet_library_logs()
    from textheads.export import export_onnx
    from textheads.hub.download import is_repo_id, resolve_model

    if output is None and not Path(model_dir).exists() and is_repo_id(model_dir):
        raise ConfigError(f"give --output for a model loaded by Hub id: the default, MODEL_DIR/onnx, would write into the Hugging Face cache's copy of {model_dir}")
    target = export_onnx(resolve_model(model_dir, revision=revision), output, quantize=quantize.value if quantize else None, min_agreement=min_agreement, calibration=calibration, force=force, echo=typer.echo)
    shown = target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target  # as the user would type it
    typer.echo(f"Exported to {shown}. Use it like the model directory: textheads predict {shown} \"some text\"")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(export)
