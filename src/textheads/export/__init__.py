"""Exporting a model directory to ONNX: the graph (`onnx`), where it may be written
(`target`), the manifest that marks it (`manifest`), and int8 quantisation checked
against the fp32 model on sample texts (`quantize`, `agreement`, `sensitivity`, `samples`).

`export_onnx` and `read_manifest` are imported on first use, so that reading a manifest's
constants does not load the exporter (and torch with it)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textheads.export.manifest import read_manifest
    from textheads.export.onnx import export_onnx

_EXPORTS = {"export_onnx": "textheads.export.onnx", "read_manifest": "textheads.export.manifest"}
__all__ = ["export_onnx", "read_manifest"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'textheads.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
