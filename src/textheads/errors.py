"""Error types raised by textheads.

Each subclasses a builtin so callers can catch them the usual way, and each
message says what was expected, what was found and where.
"""

from __future__ import annotations


class TextheadsError(Exception):
    """Base class of every error textheads raises on purpose."""


class ConfigError(TextheadsError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(TextheadsError, ValueError):
    """A data file, row or column does not fit the configured heads."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        self.path, self.line, self.column = path, line, column
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ModelLoadError(TextheadsError, OSError):
    """A model directory or encoder cannot be found or read."""


class CheckpointError(ModelLoadError):
    """A checkpoint is damaged (truncated, unreadable, not valid JSON) and cannot be resumed from."""


class SaveError(TextheadsError, OSError):
    """A model, checkpoint or cache file could not be written (disk full, no permission)."""


class UploadError(TextheadsError, OSError):
    """A model could not be pushed to the Hugging Face Hub (no token, no access, no connection)."""


class NotFittedError(TextheadsError, ValueError, AttributeError):
    """The classifier was used before `fit` or `load`."""


class MissingExtraError(TextheadsError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"This feature needs the '{package}' package. "
            f"Install it with: pip install -c constraints.txt 'textheads[{extra}]'"
        )


class ModelOutputError(TextheadsError, ValueError):
    """A model gave a non-finite output (NaN or infinity): its weights or statistics are broken."""


class DeviceError(TextheadsError, RuntimeError):
    """The device asked for (a CUDA GPU, a CUDA execution provider) is not on this machine."""
