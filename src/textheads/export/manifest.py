"""The manifest of an ONNX export, `textheads_onnx.json`: the graph file, its inputs and
outputs, the files the export wrote, and how an int8 graph was checked.

A manifest is read as untrusted input: it may only name files inside its own
folder, and its inputs and outputs must be what the exporter writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textheads.errors import ModelLoadError

MANIFEST = "textheads_onnx.json"
ONNX_FILE = "model.onnx"
TOKEN_INPUTS = ["input_ids", "attention_mask"]
"""The graph's inputs, followed by `token_type_ids` for encoders that take them."""


def is_onnx_dir(path: str | Path) -> bool:
    """True when `path` holds a manifest (which `read_manifest` then checks)."""
    return (Path(path) / MANIFEST).is_file()


WINDOW_INPUT = "window_document"
"""The last input of a model that reads texts in windows (`long_text: windows`): the text each
window (row) belongs to, numbered 0, 1, ... in the batch; the graph answers once per text."""


def exporter_inputs(with_token_types: bool, windowed: bool = False) -> list[str]:
    """The input names the exporter gives the graph."""
    inputs = [*TOKEN_INPUTS, "token_type_ids"] if with_token_types else list(TOKEN_INPUTS)
    return [*inputs, WINDOW_INPUT] if windowed else inputs


def read_manifest(folder: str | Path, head_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The checked manifest of the export in `folder`.

    `head_names`, when given (from the export's config.json), must be the
    manifest's outputs in order. Raises `ModelLoadError` naming the key.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelLoadError(f"cannot read the ONNX export manifest {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a textheads ONNX manifest: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a textheads ONNX manifest: expected a JSON object; got {type(data).__name__}")
    if data.get("format") != "onnx":
        raise ModelLoadError(f"{path}: key 'format' must be 'onnx'; got {data.get('format')!r}")
    check_file_name(folder, "file", data.get("file"))
    inputs = data.get("inputs")
    allowed = [exporter_inputs(types, windowed) for windowed in (False, True) for types in (False, True)]
    if inputs not in allowed:
        raise ModelLoadError(f"{path}: key 'inputs' must be one of {allowed}; got {inputs!r}")
    outputs = data.get("outputs")
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) and o for o in outputs) or len(set(outputs)) != len(outputs):
        raise ModelLoadError(f"{path}: key 'outputs' must be a list of distinct head names; got {outputs!r}")
    if head_names is not None and outputs != list(head_names):
        raise ModelLoadError(f"{path}: key 'outputs' must be the heads of config.json in order, {list(head_names)}; got {outputs}")
    files = data.get("files", [])
    if not isinstance(files, list):
        raise ModelLoadError(f"{path}: key 'files' must be a list of file names; got {files!r}")
    for name in files:
        check_file_name(folder, "files", name, must_exist=False)
    return data


def check_file_name(folder: Path, key: str, value: object, *, must_exist: bool = True) -> Path:
    """`folder / value`, when `value` is a plain file name that stays inside `folder`."""
    path = folder / MANIFEST
    plain = isinstance(value, str) and value not in ("", ".", "..") and not any(c in value for c in "/\\\0") and Path(value).name == value
    if not plain:
        raise ModelLoadError(f"{path}: key {key!r} must be a file name inside the export's folder (no folders, no '..'); got {value!r}")
    target = folder / str(value)
    if must_exist and not target.is_file():
        raise ModelLoadError(f"{path}: key {key!r} names {value!r}, which is not a file in {folder}")
    if target.exists() and target.resolve().parent not in _own_folders(folder):
        raise ModelLoadError(f"{path}: key {key!r} names {value!r}, a link to a file outside {folder}")
    return target


def _own_folders(folder: Path) -> set[Path]:
    """Where an export's files may lie: its folder, and for a snapshot in the Hugging Face
    cache (`models--org--name/snapshots/<commit>`, whose files are links) that repo's blobs."""
    own = {folder.resolve()}
    if folder.resolve().parent.name == "snapshots":
        own.add(folder.resolve().parent.parent / "blobs")
    return own
