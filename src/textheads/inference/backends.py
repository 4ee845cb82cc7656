"""Inference backends: the PyTorch model, or an exported ONNX model run by ONNX Runtime.

Both take a padded batch and return every head's user-facing outputs
(sigmoid or softmax probabilities, regression values in the target's units).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from textheads.encoder import usable_max_length
from textheads.errors import MissingExtraError, ModelLoadError
from textheads.model import TextHeadsConfig, TextHeadsModel
from textheads.specs import HeadSpec


class Backend(Protocol):
    specs: dict[str, HeadSpec]
    max_length: int

    def run(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """User-facing outputs of every head for one padded batch."""
        ...


class TorchBackend:
    """Runs a `TextHeadsModel` under `torch.inference_mode`."""

    def __init__(self, model: TextHeadsModel) -> None:
        self.model = model
        where = f"the model in {model.name_or_path}"
        self.max_length = usable_max_length(model.config.max_text_length, model.config.encoder, where)

    @property
    def specs(self) -> dict[str, HeadSpec]:  # type: ignore[override]
        return self.model.specs

    @specs.setter
    def specs(self, specs: dict[str, HeadSpec]) -> None:
        self.model.config.head_specs = [spec.model_dump(mode="json") for spec in specs.values()]
        self.model.refresh_specs()

    def run(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        # Switching modes walks every module (milliseconds per pass), so only when needed.
        was_training = self.model.training
        if was_training:
            self.model.eval()
        try:
            device = next(self.model.parameters()).device
            with torch.inference_mode():
                outputs = self.model.to_predictions(self.model(**{k: v.to(device) for k, v in batch.items()}))
        finally:
            if was_training:
                self.model.train()
        return {name: values.float().cpu().numpy() for name, values in outputs.items()}


class OnnxBackend:
    """Runs an exported model (see `textheads.export`) with ONNX Runtime."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        from textheads.export.manifest import read_manifest

        folder = Path(folder)
        try:
            config = TextHeadsConfig.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the config.json of the ONNX export in {folder}: {exc}") from None
        manifest = read_manifest(folder, [spec["name"] for spec in config.head_specs])
        self._start(folder / manifest["file"], config, manifest["inputs"], threads)

    @classmethod
    def for_graph(cls, graph: Path, config: TextHeadsConfig, inputs: list[str], *, threads: int | None = None) -> OnnxBackend:
        """A backend for a graph file outside an export folder (e.g. while exporting)."""
        backend = cls.__new__(cls)
        backend._start(graph, config, inputs, threads)
        return backend

    def _start(self, graph: Path, config: TextHeadsConfig, inputs: list[str], threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError("onnxruntime", "onnx") from None
        self.config = config
        self.graph = Path(graph)
        self.specs = {d["name"]: HeadSpec.model_validate(d) for d in config.head_specs}
        self.max_length = usable_max_length(config.max_text_length, config.encoder, f"the ONNX model {graph}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's error classes (Fail, InvalidProtobuf, ...) derive from Exception only
            raise ModelLoadError(f"ONNX Runtime cannot load {graph}: {exc}") from None
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


def load_backend(path: str | Path) -> tuple[Backend, PreTrainedTokenizerBase, TextHeadsModel | None]:
    """(backend, tokenizer, PyTorch model or None) for a model or ONNX export directory."""
    from textheads.export.manifest import is_onnx_dir
    from textheads.saving import load_model_dir

    if is_onnx_dir(path):
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer of the ONNX export in {path}: {exc}") from None
        return OnnxBackend(path), tokenizer, None
    model, tokenizer = load_model_dir(path)
    return TorchBackend(model), tokenizer, model
