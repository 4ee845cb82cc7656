"""ONNX export: encoder + every head, with sigmoid/softmax and the regression
rescaling inside the graph, dynamic batch and sequence axes; optional int8
quantisation, checked against the fp32 model (see `textheads.export.quantize`).

The exported folder holds everything needed to run it: `model.onnx`, the
tokenizer, `config.json` (heads, labels, thresholds), the model card `README.md`
(see `textheads.card`) and the manifest `textheads_onnx.json`, which also marks the
folder as one textheads may replace.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from textheads.card import write_export_card
from textheads.errors import ConfigError, MissingExtraError
from textheads.export.manifest import (
    MANIFEST,
    ONNX_FILE,
    WINDOW_INPUT,
    exporter_inputs,
    is_onnx_dir,
    read_manifest,
)
from textheads.export.target import check_export_target, publish_export
from textheads.inference.batching import collate, tokenize
from textheads.inference.predict import pad_id
from textheads.io import staging_directory
from textheads.model import TextHeadsModel
from textheads.model_config import long_text_of, max_length_of
from textheads.saving import load_model_dir

__all__ = ["MANIFEST", "ONNX_FILE", "export_onnx", "is_onnx_dir", "read_manifest"]

Calibration = str | Path | Sequence[str] | None


class _ExportWrapper(nn.Module):
    """The model with its user-facing outputs (probabilities, values), one output per head."""

    def __init__(self, model: TextHeadsModel, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(self.input_names, inputs, strict=True))
        outputs = self.model.to_predictions(self.model(**named))
        return tuple(outputs[name] for name in self.model.specs)


def export_onnx(
    model_dir: str | Path,
    output_dir: str | Path | None = None,
    *,
    quantize: str | None = None,
    opset: int = 17,
    min_agreement: float = 0.99,
    calibration: Calibration = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> Path:
    """Export a model directory to ONNX; returns the folder written (default
    MODEL_DIR/onnx, or MODEL_DIR/onnx-int8 with `quantize="int8"`).

    The folder must not exist, be empty, or be an earlier export. With
    `quantize="int8"`, the int8 graph is compared with the fp32 model on the
    sample texts stored with the model (or on `calibration`: a file read with the
    model's text columns, or a list of texts); a classification head that agrees
    on fewer than `min_agreement` of its decisions (each text's class; each text's
    decision on each label) makes it keep the most sensitive matrix products in
    fp32, and refuse (`QuantizationError`) when no such graph reaches the bar,
    unless `force`. The figures go to `echo` and the manifest.

    Example:
        >>> export_onnx("runs/advice", quantize="int8")  # doctest: +SKIP
        PosixPath('runs/advice/onnx-int8')
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingExtraError("onnx and onnxruntime", "onnx") from None
    if quantize not in (None, "int8"):
        raise ConfigError(f"quantize must be 'int8' or None; got {quantize!r}")
    if not 0.0 <= min_agreement <= 1.0:
        raise ConfigError(f"min_agreement must be between 0 and 1; got {min_agreement}")
    model_dir = Path(model_dir)
    target = (Path(output_dir) if output_dir is not None else model_dir / ("onnx-int8" if quantize else "onnx")).resolve()
    check_export_target(target, model_dir)
    model, tokenizer = load_model_dir(model_dir)
    texts = None
    if quantize:
        from textheads.export.quantize import sample_texts_for

        texts = sample_texts_for(model_dir, model, calibration, force=force)
    with staging_directory(target) as staging:
        model.config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        inputs = _export_graph(model, tokenizer, staging / ONNX_FILE, opset)
        manifest: dict[str, Any] = {"format": "onnx", "file": ONNX_FILE, "inputs": inputs, "outputs": list(model.specs), "quantize": quantize, "opset": opset}
        if quantize:
            from textheads.export.quantize import quantize_checked

            manifest.update(quantize_checked(staging / ONNX_FILE, inputs, model, tokenizer, texts, min_agreement=min_agreement, force=force, echo=echo))
        manifest.update(write_export_card(model_dir, target, staging, manifest, echo=echo))
        manifest["files"] = sorted(path.name for path in staging.iterdir())
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for kept in publish_export(staging, target):
            echo(f"Kept {kept}: it appeared in the earlier export while this one was written")
    return target


def _export_graph(model: TextHeadsModel, tokenizer: PreTrainedTokenizerBase, path: Path, opset: int) -> list[str]:
    """Write the fp32 graph to `path`; returns its input names."""
    model.eval()
    long_text = long_text_of(model.config)
    # Under `long_text: windows` the second text has several windows: the graph then takes
    # windows and `window_document`, and answers once per text.
    texts = ["an example text", " ".join(["a second, much longer example text"] * (max_length_of(model.config) // 2))]
    tokens = tokenize(tokenizer, texts, max_length_of(model.config), long_text)
    sample = collate(tokens, np.arange(len(texts)), pad_id(tokenizer))
    inputs = exporter_inputs("token_type_ids" in sample, long_text.windowed)
    outputs = list(model.specs)
    dynamic: dict[str, dict[int, str]] = {name: {0: "windows" if long_text.windowed else "batch", 1: "sequence"} for name in inputs if name != WINDOW_INPUT}
    if long_text.windowed:
        dynamic[WINDOW_INPUT] = {0: "windows"}
    dynamic.update({name: {0: "batch"} for name in outputs})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _ExportWrapper(model, inputs),
            tuple(sample[name] for name in inputs),
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return inputs
