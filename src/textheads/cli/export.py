"""`textheads export MODEL_DIR --format onnx [--quantize int8] [--output DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textheads.errors import ConfigError


def export(
    model_dir: Annotated[Path, typer.Argument(help="A trained model directory.")],
    format: Annotated[str, typer.Option("--format", "-f", help="Export format (onnx).")] = "onnx",
    quantize: Annotated[str | None, typer.Option(help="int8: dynamic int8 quantisation of the weights.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write (default MODEL_DIR/onnx or MODEL_DIR/onnx-int8).")] = None,
) -> int:
    """Export encoder + all heads (probabilities and values inside the graph) to ONNX."""
    from textheads.export import export_onnx

    if format != "onnx":
        raise ConfigError(f"--format must be 'onnx'; got {format!r}")
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize must be 'int8'; got {quantize!r}")
    target = export_onnx(model_dir, output, quantize=quantize)
    typer.echo(f"Exported to {target}. Use it like the model directory: textheads predict {target} \"some text\"")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(export)
