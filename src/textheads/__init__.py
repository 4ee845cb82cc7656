"""textheads: many classification and regression heads on one shared transformer encoder."""

__version__ = "0.1.0"

from textheads.classifier import TextClassifier
from textheads.config import RunConfig, load_config
from textheads.errors import ConfigError, DataError, ModelLoadError, NotFittedError, TextheadsError
from textheads.specs import HeadSpec

__all__ = [
    "ConfigError",
    "DataError",
    "HeadSpec",
    "ModelLoadError",
    "NotFittedError",
    "RunConfig",
    "TextClassifier",
    "TextheadsError",
    "__version__",
    "load_config",
]
