"""textheads: many classification and regression heads on one shared transformer encoder."""

__version__ = "0.1.0"

from textheads.classifier import TextClassifier  # noqa: E402
from textheads.config import RunConfig, load_config  # noqa: E402
from textheads.errors import ConfigError, DataError, ModelLoadError, NotFittedError, TextheadsError  # noqa: E402
from textheads.specs import HeadSpec  # noqa: E402

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
