"""What the HTTP process knows of the model: its config and tokenizer, never its weights.

With model processes, only they load the model; the HTTP process reads
`config.json` and the tokenizer to check requests, tokenise and describe the
model, and checks the device before any model process starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from textheads.encoder import usable_max_length
from textheads.errors import MissingExtraError
from textheads.inference.backends import check_onnx_precision, load_tokenizer, onnx_providers
from textheads.inference.device import precision_name, resolve_device, resolve_precision
from textheads.model_config import TextHeadsConfig, max_length_of, read_model_config
from textheads.specs import HeadSpec


@dataclass(frozen=True)
class ModelDescription:
    """A model directory or ONNX export as the service describes it."""

    config: TextHeadsConfig
    tokenizer: PreTrainedTokenizerBase
    max_length: int
    """Tokens read per text (the encoder's limit, if lower than the model's `max_length`)."""
    backend: str
    """`TorchBackend` or `OnnxBackend`."""
    device: str
    precision: str

    @property
    def specs(self) -> dict[str, HeadSpec]:
        return self.config.specs


def describe_model(path: str | Path, *, device: str = "auto", precision: str = "auto") -> ModelDescription:
    """Read the model at `path` (config and tokenizer only) and resolve `device` and
    `precision` for it: a `DeviceError` or `ConfigError` before any weights load."""
    from textheads.export.manifest import is_onnx_dir

    config = read_model_config(path)
    max_length = usable_max_length(max_length_of(config), config.encoder, f"the model in {path}")
    if is_onnx_dir(path):
        check_onnx_precision(precision)
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingExtraError("onnxruntime", "onnx") from None
        cuda = onnx_providers(device, ort.get_available_providers())[0] != "CPUExecutionProvider"
        where = "cpu" if not cuda else device if device.startswith("cuda") else "cuda"
        return ModelDescription(config, load_tokenizer(path), max_length, "OnnxBackend", where, "fp32")
    torch_device = resolve_device(device)
    dtype = resolve_precision(precision, torch_device)
    return ModelDescription(config, load_tokenizer(path), max_length, "TorchBackend", str(torch_device), precision_name(dtype))
