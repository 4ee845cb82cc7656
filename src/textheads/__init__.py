"""textheads: many classification and regression heads on one shared transformer encoder."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from textheads import auto_classes

__version__ = "0.1.0"

# `AutoConfig`/`AutoModel` open textheads model directories after `import textheads`; the
# registration waits for transformers' auto classes to be imported (see auto_classes).
auto_classes.install()

# The public names, imported on first use: `import textheads` (and `textheads --help`)
# must not pay for importing torch and transformers.
_EXPORTS = {
    "TextClassifier": "textheads.classifier",
    "RunConfig": "textheads.config",
    "load_config": "textheads.config",
    "ConfigError": "textheads.errors",
    "DataError": "textheads.errors",
    "DeviceError": "textheads.errors",
    "ModelLoadError": "textheads.errors",
    "ModelOutputError": "textheads.errors",
    "CheckpointError": "textheads.errors",
    "SaveError": "textheads.errors",
    "NotFittedError": "textheads.errors",
    "TextheadsError": "textheads.errors",
    "HeadSpec": "textheads.specs",
    "inspect_data": "textheads.inspection",
}

if TYPE_CHECKING:
    from textheads.classifier import TextClassifier
    from textheads.config import RunConfig, load_config
    from textheads.errors import (
        CheckpointError,
        ConfigError,
        DataError,
        DeviceError,
        ModelLoadError,
        ModelOutputError,
        NotFittedError,
        SaveError,
        TextheadsError,
    )
    from textheads.inspection import inspect_data
    from textheads.specs import HeadSpec

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "HeadSpec",
    "ModelLoadError",
    "ModelOutputError",
    "NotFittedError",
    "RunConfig",
    "SaveError",
    "TextClassifier",
    "TextheadsError",
    "__version__",
    "inspect_data",
    "load_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'textheads' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
