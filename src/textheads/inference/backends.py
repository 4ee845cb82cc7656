"""Inference backends: the PyTorch model, or an exported ONNX model run by ONNX Runtime.

Both take a padded batch and return every head's user-facing outputs
(sigmoid or softmax probabilities, regression values in the target's units),
on the device they were opened on (see `textheads.inference.device`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from textheads.encoder import usable_max_length
from textheads.errors import ConfigError, DeviceError, MissingExtraError, ModelLoadError
from textheads.inference.device import check_device_name, precision_name, resolve_device, resolve_precision
from textheads.model import TextHeadsModel
from textheads.model_config import TextHeadsConfig, max_length_of, read_model_config
from textheads.specs import HeadSpec

CUDA_PROVIDER = "CUDAExecutionProvider"


class Backend(Protocol):
    specs: dict[str, HeadSpec]
    max_length: int
    config: TextHeadsConfig

    def run(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """User-facing outputs of every head for one padded batch."""
        ...


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """`model` in eval mode for the block, then back in the mode it was in."""
    # Switching modes walks every module (milliseconds per pass), so only when needed.
    was_training = model.training
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def raw_outputs(model: TextHeadsModel, batch: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Each head's raw output (logits, standardised values) in fp32 for one padded batch,
    computed on the model's device; under fp16/bf16 autocast unless `dtype` is fp32."""
    device = next(model.parameters()).device
    # Autocast, not a cast of the weights: the weights stay as saved (a loaded model saves
    # unchanged), and autocast keeps softmax, layer norms and sums in fp32.
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        outputs = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()})
    return {name: values.float() for name, values in outputs.items()}


class TorchBackend:
    """Runs a `TextHeadsModel` under `torch.inference_mode`, on `device` (default: where the
    model is) and in `dtype` (fp32, or fp16/bf16 autocast)."""

    def __init__(self, model: TextHeadsModel, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> None:
        if device is not None:
            model.to(device)
        self.model, self.dtype = model, dtype
        where = f"the model in {model.name_or_path}"
        self.max_length = usable_max_length(max_length_of(model.config), model.config.encoder, where)

    @property
    def config(self) -> TextHeadsConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    @property
    def specs(self) -> dict[str, HeadSpec]:  # type: ignore[override]
        return self.model.specs

    @specs.setter
    def specs(self, specs: dict[str, HeadSpec]) -> None:
        self.model.config.head_specs = [spec.model_dump(mode="json") for spec in specs.values()]
        self.model.refresh_specs()

    def run(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        with evaluating(self.model), torch.inference_mode():
            outputs = self.model.to_predictions(raw_outputs(self.model, batch, self.dtype))
        return {name: values.cpu().numpy() for name, values in outputs.items()}


class OnnxBackend:
    """Runs an exported model (see `textheads.export`) with ONNX Runtime, on the CPU or on
    the CUDA execution provider (`onnxruntime-gpu`).

    `device`: `cpu`; `cuda` or `cuda:N` (a `DeviceError` when ONNX Runtime cannot run
    there); `auto`: CUDA when ONNX Runtime can run there, else the CPU.
    """

    def __init__(self, folder: str | Path, *, threads: int | None = None, device: str = "cpu") -> None:
        from textheads.export.manifest import read_manifest

        folder = Path(folder)
        config = read_model_config(folder)
        manifest = read_manifest(folder, [spec["name"] for spec in config.head_specs])
        self._start(folder / manifest["file"], config, manifest["inputs"], threads, device)

    @classmethod
    def for_graph(cls, graph: Path, config: TextHeadsConfig, inputs: list[str], *, threads: int | None = None) -> OnnxBackend:
        """A backend for a graph file outside an export folder (e.g. while exporting)."""
        backend = cls.__new__(cls)
        backend._start(graph, config, inputs, threads, "cpu")
        return backend

    def _start(self, graph: Path, config: TextHeadsConfig, inputs: list[str], threads: int | None, device: str = "cpu") -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError("onnxruntime", "onnx") from None
        self.config = config
        self.graph = Path(graph)
        self.specs = config.specs
        self.max_length = usable_max_length(max_length_of(config), config.encoder, f"the ONNX model {graph}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = onnx_providers(check_device_name(device), ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's error classes (Fail, InvalidProtobuf, ...) derive from Exception only
            raise ModelLoadError(f"ONNX Runtime cannot load {graph}: {exc}") from None
        if device != "auto" and device != "cpu" and self.session.get_providers()[0] != CUDA_PROVIDER:
            # ONNX Runtime falls back to the CPU when CUDA will not start (no GPU, no CUDA libraries).
            raise DeviceError(f"device {device!r} is not available to ONNX Runtime: its CUDA execution provider did not start (is there a GPU, and the CUDA and cuDNN libraries onnxruntime-gpu needs?). Use --device cpu")
        self.device = "cuda" if self.session.get_providers()[0] == CUDA_PROVIDER else "cpu"
        self.precision = "fp32"
        self.inputs = inputs
        self.outputs = list(self.specs)
        graph_inputs = [i.name for i in self.session.get_inputs()]
        graph_outputs = [o.name for o in self.session.get_outputs()]
        if graph_inputs != inputs or graph_outputs != self.outputs:
            raise ModelLoadError(
                f"the graph {graph} takes {graph_inputs} and gives {graph_outputs}; its manifest and config.json say {inputs} and {self.outputs}"
            )

    def run(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        values = self.session.run(self.outputs, self._feed(batch))
        return {name: np.asarray(value, dtype=np.float32) for name, value in zip(self.outputs, values, strict=True)}

    def _feed(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The graph's inputs for one padded batch."""
        return {name: batch[name].numpy().astype(np.int64) for name in self.inputs}


def onnx_providers(device: str, available: list[str]) -> list[str | tuple[str, dict[str, int]]]:
    """ONNX Runtime's execution providers for `device`, given the `available` ones."""
    if device == "cpu" or (device == "auto" and CUDA_PROVIDER not in available):
        return ["CPUExecutionProvider"]
    if CUDA_PROVIDER not in available:
        raise DeviceError(
            f"device {device!r} needs ONNX Runtime's CUDA execution provider, and this onnxruntime has only {', '.join(available)}: "
            "replace it with onnxruntime-gpu (pip uninstall onnxruntime && pip install onnxruntime-gpu), or use --device cpu"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    return [(CUDA_PROVIDER, {"device_id": index}), "CPUExecutionProvider"]


def open_backend(path: str | Path, *, device: str = "auto", precision: str = "auto", threads: int | None = None) -> Backend:
    """The backend of `load_backend`, alone."""
    return load_backend(path, device=device, precision=precision, threads=threads)[0]


def load_backend(
    path: str | Path, *, device: str = "auto", precision: str = "auto", threads: int | None = None
) -> tuple[Backend, PreTrainedTokenizerBase, TextHeadsModel | None]:
    """(backend, tokenizer, PyTorch model or None) for a model directory or ONNX export, on
    `device` at `precision` (see `textheads.inference.device`). The device is checked
    before anything loads; `threads` caps the CPU threads of the backend."""
    from textheads.export.manifest import is_onnx_dir
    from textheads.saving import load_model_dir

    check_device_name(device)
    if is_onnx_dir(path):
        check_onnx_precision(precision)
        return OnnxBackend(path, threads=threads, device=device), load_tokenizer(path), None
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    if threads:
        torch.set_num_threads(threads)
    model, tokenizer = load_model_dir(path)
    return TorchBackend(model, device=torch_device, dtype=dtype), tokenizer, model


def check_onnx_precision(precision: str) -> None:
    """A `ConfigError` for a precision other than `auto` or `fp32`, which an ONNX export cannot change."""
    if precision not in ("auto", "fp32"):
        raise ConfigError(f"precision {precision!r} applies to PyTorch model directories; an ONNX export runs at the precision it was exported in (fp32, or int8 from --quantize int8)")


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model directory or ONNX export."""
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer in {path}: {exc}") from None
