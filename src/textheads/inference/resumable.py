"""A predictions file that survives an interrupted run.

`predict --input F --output O` writes `.O.partial` beside O, with a marker
`.O.partial.json` naming the input, the model and the batching it belongs to,
and renames the partial to O only once it is complete (O appears whole or not
at all). A killed run leaves both behind; `--resume` keeps the partial's
complete rows (a torn last line is dropped) and appends the rest, so the final
O is what an uninterrupted run writes. Without `--resume` the partial, being
textheads' own, is replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from textheads.errors import ConfigError
from textheads.io import fsync_dir, write_json_atomic
from textheads.model_config import long_text_of

_HEAD_BYTES = 1 << 20
_TRUNCATED_END = b'"truncated": true}\n'
"""How a record of a truncated text ends (json.dumps: a quote inside a text is escaped, and
a line holds no raw newline, so no text can end a line this way)."""


@dataclass
class ResumedRows:
    """What the partial already holds: its complete rows, and how many of their texts were truncated."""

    rows: int = 0
    truncated: int = 0


def partial_paths(output: Path) -> tuple[Path, Path]:
    """(partial file, its marker) beside `output`."""
    return output.with_name(f".{output.name}.partial"), output.with_name(f".{output.name}.partial.json")


def input_identity(path: Path) -> dict[str, Any]:
    """What tells this input file from another, or from itself after an edit: where it is,
    its size and modification time, and a digest of its first MiB."""
    stat = path.stat()
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


def model_identity(backend: Any) -> str:
    """A digest of what decides a backend's outputs: its heads (labels, thresholds), max length,
    and weights (the PyTorch parameters, or the ONNX graph file), and where it runs."""
    digest = hashlib.sha256()
    specs = {name: spec.model_dump(mode="json") for name, spec in backend.specs.items()}
    reading: list[Any] = [specs, backend.max_length]
    long_text = long_text_of(backend.config)
    if long_text.mode != "truncate":  # identities of truncating models stay those of partials written before
        reading.append(dataclasses.asdict(long_text))
    digest.update(json.dumps(reading, sort_keys=True).encode())
    model = getattr(backend, "model", None)
    if model is not None:
        import torch

        for name, tensor in model.state_dict().items():
            digest.update(name.encode())
            digest.update(str(tensor.device).encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        digest.update(json.dumps(backend.session.get_providers()).encode())
        with Path(backend.graph).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


@contextmanager
def resumable_output(output: Path, settings: dict[str, Any], *, resume: bool) -> Iterator[tuple[TextIO, ResumedRows]]:
    """Yield (a text handle appending to the partial, the rows it already holds); once the
    body returns, the partial becomes `output`. On any error or interruption the partial and
    its marker stay, for `resume`.

    `settings` (input identity, model identity, batching) must equal the marker's to resume:
    the kept rows were predicted for them.
    """
    partial, marker = partial_paths(output)
    kept = _resumable_rows(partial, marker, settings) if resume else ResumedRows()
    if not kept.rows:
        _refuse_foreign(partial, marker)
        write_json_atomic(marker, {"written_by": "textheads", "purpose": "partial predictions", "output": output.name, **settings})
    with partial.open("a" if kept.rows else "w", encoding="utf-8") as handle:
        yield handle, kept
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, output)
    marker.unlink(missing_ok=True)
    fsync_dir(output.parent)


def _refuse_foreign(partial: Path, marker: Path) -> None:
    """Raise when the partial's (or the marker's) name is taken by a file textheads did not write."""
    taken = [path for path in (partial, marker) if path.exists()]
    if taken and _read_marker(marker) is None:
        raise ConfigError(f"{taken[0]} exists and was not written by textheads, so it is left as it is; move it away first")


def _read_marker(marker: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and content.get("written_by") == "textheads" else None


def _resumable_rows(partial: Path, marker: Path, settings: dict[str, Any]) -> ResumedRows:
    """The complete rows of a partial that belongs to `settings` (its torn last line cut off);
    none when there is no partial to resume."""
    recorded = _read_marker(marker)
    if recorded is None or not partial.is_file():
        return ResumedRows()
    differences = [_difference(key, recorded.get(key), value) for key, value in settings.items() if recorded.get(key) != value]
    if differences:
        raise ConfigError(
            f"cannot resume from {partial}: {'; '.join(differences)}. Its rows would not be this run's; "
            "run without --resume to start again (the partial is replaced)"
        )
    kept = ResumedRows()
    complete = 0
    with partial.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # torn by the interruption: predicted again
            kept.rows += 1
            kept.truncated += line.endswith(_TRUNCATED_END)
            complete += len(line)
    if complete < partial.stat().st_size:
        os.truncate(partial, complete)
    return kept


def _difference(key: str, was: Any, now: Any) -> str:
    """What a setting recorded with the partial has that this run's has not, in words."""
    if key == "input":
        where = was.get("path") if isinstance(was, dict) else was
        return f"it was written for the input {where}, " + ("which has changed since" if where == now["path"] else f"not {now['path']}")
    if key == "model":
        return "it was written by another model (or the model, or the device it runs on, has changed since)"
    if key == "batch_size":
        return f"it was written with --batch-size {was}, not {now}"
    return f"it was written with {key} {was}, not {now}"
