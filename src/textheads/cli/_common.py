"""Options and set-up shared by several commands."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from textheads.errors import ConfigError
from textheads.inference.device import check_device_name

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ModelArgument = Annotated[
    str,
    typer.Argument(help="A model directory, ONNX export or Hub id (org/name; a local path of that name wins).", show_default=False),
]
RevisionOption = Annotated[
    str | None,
    typer.Option("--revision", help="With a Hub id: the branch, tag or commit hash to load (default: main). Token: $HF_TOKEN or the stored login."),
]


def _device(value: str) -> str:
    try:
        return check_device_name(value)
    except ConfigError as exc:  # a usage error: exit 2 with the usage
        raise typer.BadParameter(str(exc)) from None


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


DeviceOption = Annotated[
    str,
    typer.Option("--device", callback=_device, help="cpu, cuda, cuda:N, or auto: a CUDA GPU when there is one, else the CPU."),
]
PrecisionOption = Annotated[
    Precision,
    typer.Option("--precision", help="PyTorch models: fp32, fp16 or bf16 (autocast), or auto: fp16 on a CUDA GPU, fp32 on the CPU."),
]


def quiet_library_logs() -> None:
    """Silence transformers' own logs and weight-loading bars: the CLI prints its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
