"""Where inference runs and at what precision: `--device` and `--precision` checked
against this machine.

`auto` picks the first CUDA GPU when there is one, else the CPU. Precision
`auto` is fp16 on a CUDA GPU and fp32 on the CPU: inference needs fp16's
finer mantissa more than bf16's range (autocast keeps softmax, layer norms and
sums in fp32), and it runs on every CUDA GPU; bf16 stays a choice.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from textheads.errors import ConfigError, DeviceError

if TYPE_CHECKING:
    import torch

DEVICES = "cpu, cuda, cuda:N or auto"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(value: str) -> str:
    """`value` if it names a device (`cpu`, `cuda`, `cuda:N`, `auto`), else a `ConfigError`.

    Imports no torch: the CLI checks the name before it loads the library.
    """
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ConfigError(f"the device must be one of {DEVICES}; got {value!r}")
    return value


def resolve_device(value: str) -> torch.device:
    """The torch device that `value` names; a `DeviceError` when this machine has none such.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch

    check_device_name(value)
    if value == "cpu" or (value == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "PyTorch finds no CUDA GPU on this machine"
        raise DeviceError(f"device {value!r} is not available: {why}. Use --device cpu (or auto)")
    count = torch.cuda.device_count()
    index = int(value.split(":")[1]) if ":" in value else torch.cuda.current_device()
    if index >= count:
        raise DeviceError(f"device {value!r} is not available: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def resolve_precision(value: str, device: torch.device) -> torch.dtype:
    """The dtype the model computes in on `device` (see the module docstring for `auto`)."""
    import torch

    if value not in PRECISIONS:
        raise ConfigError(f"the precision must be one of {', '.join(PRECISIONS)}; got {value!r}")
    if value == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if value == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise DeviceError(f"{device} ({torch.cuda.get_device_name(device)}) does not compute bf16; use --precision fp16 or fp32")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[value]


def precision_name(dtype: torch.dtype) -> str:
    """`fp32`, `fp16` or `bf16`."""
    return {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}[str(dtype)]
