"""What textheads may write, replace or delete: only what it wrote itself.

A folder textheads writes (a training run, a saved model, the demo's run) gets
a marker file, `.textheads.json`, naming the purpose and every file saved
there. Commands refuse to write into a non-empty folder without it, `--overwrite`
deletes only the files it lists (and the run's own logs and checkpoints), and
a run holds a lock on its folder so that a second run cannot share it.
Output files (`predict --output`, `evaluate --output`) never replace an input,
a model's own file, or a file that is not a textheads output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textheads.errors import ConfigError
from textheads.export.manifest import MANIFEST, ONNX_FILE
from textheads.export.samples import SAMPLE_FILE
from textheads.io import write_json_atomic

MARKER = ".textheads.json"
LOCK = ".textheads.lock"

TRAINING_DATA = "training_data.json"
"""Rows and label counts of the data a model was trained on (`textheads.data.summary`)."""
RUN_FILES = ("training_config.yaml", "train_log.jsonl", "validation_metrics.json", "test_metrics.json", TRAINING_DATA, SAMPLE_FILE)
"""Files a training run writes beside the model, besides the model's own."""
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
    "merges.txt", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
    "chat_template.jinja",
)
"""What `save_pretrained` writes for common tokenizers: the tokenizer files of model
directories and exports saved before their marker or manifest listed its files."""
UNLISTED_EXPORT_FILES = (ONNX_FILE, MANIFEST, "config.json", *TOKENIZER_FILES)
"""What exports written before the manifest listed its files held: the graph, the manifest,
config.json and the tokenizer files `save_pretrained` writes."""
CHECKPOINTS = "checkpoints"
CARD = "README.md"
CARD_HASH = "model_card_sha256"
"""The key of the marker (or export manifest) holding the SHA-256 of the card textheads last
wrote: a README.md with any other content is someone else's, and is never replaced or deleted."""
_MAX_SNIFF_BYTES = 10_000_000


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's marker, or None when it has none (or an unreadable one)."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("written_by") == "textheads" else None


def _textheads_config(folder: Path) -> bool:
    """True when `folder/config.json` is a textheads model config (written before markers existed)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "textheads"


def is_empty(folder: Path) -> bool:
    """True for a folder that does not exist or holds nothing."""
    return not folder.exists() or (folder.is_dir() and next(folder.iterdir(), None) is None)


def is_textheads_folder(folder: Path) -> bool:
    """True when textheads wrote this folder: it has a marker, or is a model directory or
    run written by a version from before markers."""
    if read_marker(folder) is not None or (folder / LOCK).is_file() or _textheads_config(folder):
        return True
    return (folder / CHECKPOINTS).is_dir() and (folder / "training_config.yaml").is_file()


def holds_model(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()


def describe_contents(folder: Path, limit: int = 5) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    return ", ".join(names[:limit]) + (f", … ({len(names)} entries)" if len(names) > limit else "")


def refuse_foreign_folder(folder: Path, *, option: str) -> None:
    """Raise unless `folder` is new, empty, or written by textheads."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder: choose another {option}")
    if is_empty(folder) or is_textheads_folder(folder):
        return
    raise ConfigError(
        f"{folder} is not empty ({describe_contents(folder)}) and was not written by textheads; "
        f"textheads writes only into a new or empty folder or one of its own. Choose another {option}."
    )


def claim_folder(folder: Path, purpose: str, **details: Any) -> dict[str, Any]:
    """Create `folder` if needed and mark it as textheads' own (keeping an existing marker's
    purpose and file list); returns the marker. The folder must pass `refuse_foreign_folder`."""
    from textheads import __version__

    folder.mkdir(parents=True, exist_ok=True)
    existing = read_marker(folder)
    marker = {**(existing or {"written_by": "textheads", "purpose": purpose, "files": []}), **details, "version": __version__}
    if marker != existing:  # every save claims its folder: write only what changed
        write_json_atomic(folder / MARKER, marker)
    return marker


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def card_is_ours(folder: Path, recorded: object) -> bool:
    """True when `folder` has no README.md, or one whose content is the card textheads last
    wrote there (its digest `recorded`, from the marker or manifest)."""
    path = folder / CARD
    if not path.exists() and not path.is_symlink():
        return True
    if path.is_symlink() or not path.is_file() or not isinstance(recorded, str):
        return False
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    except OSError:
        return False


def record_files(folder: Path, names: Iterable[str]) -> None:
    """Add `names` to the files the marker says textheads wrote in `folder`."""
    marker = read_marker(folder) or {"written_by": "textheads", "purpose": "save", "files": []}
    marker["files"] = sorted(set(marker.get("files", [])) | set(names))
    write_json_atomic(folder / MARKER, marker)


def remove_run(folder: Path) -> list[str]:
    """Delete what textheads wrote in a run or model folder (its listed files, the run's logs
    and checkpoints); anything else stays. Returns the names deleted."""
    marker = read_marker(folder)
    names = set(marker.get("files", [])) if marker else set()
    names |= {*RUN_FILES, *MODEL_FILES, CHECKPOINTS}
    if marker is None:  # a model directory from before markers listed its tokenizer files
        names |= set(TOKENIZER_FILES)
    removed = []
    for name in sorted(names):
        path = folder / name
        if Path(name).name != name or name in (MARKER, LOCK):
            continue  # never a path outside the folder; the lock is held by the caller
        if name == CARD and not card_is_ours(folder, marker.get(CARD_HASH) if marker else None):
            continue  # a README.md written or edited by hand
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    if marker is not None:
        marker["files"] = []
        write_json_atomic(folder / MARKER, marker)
    return removed


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder (created if needed) for the duration.

    The operating system releases it when the process ends, however it ends, so
    a killed run never leaves a stale lock behind.
    """
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no locking
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / LOCK).open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise ConfigError(
                f"{folder} is in use by another textheads run{f' (process {holder})' if holder.isdigit() else ''}: "
                "wait for it to finish, or choose another --output-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def check_output_file(path: Path, *, kind: str, inputs: Sequence[Path] = (), model_dir: Path | None = None, option: str = "--output") -> None:
    """Refuse to write `path` when that would replace an input, a model's own file, or an
    existing file that is not a textheads output of this `kind` (`predictions`, `metrics` or `report`)."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    for source in inputs:
        if _same_file(path, source):
            raise ConfigError(f"{option} {path} is the input file {source}: writing there would replace it. Choose another {option}.")
    if model_dir is not None and path.resolve().parent == model_dir.resolve() and path.name in _model_dir_files(model_dir):
        raise ConfigError(f"{option} {path} is a file of the model in {model_dir}: writing there would damage it. Choose another {option}.")
    if path.exists() and not _looks_like_output(path, kind):
        raise ConfigError(
            f"{option} {path} exists and is not a textheads {kind} file, so it is left as it is. "
            f"Choose another {option}, or move the file away first."
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _model_dir_files(model_dir: Path) -> set[str]:
    marker = read_marker(model_dir)
    listed = set(marker.get("files", [])) if marker else set()
    return listed | {*MODEL_FILES, *TOKENIZER_FILES, "training_config.yaml", SAMPLE_FILE, MANIFEST, ONNX_FILE, MARKER, LOCK}


def _looks_like_output(path: Path, kind: str) -> bool:
    """True when an existing file is what textheads writes as `kind` (so replacing it loses
    nothing textheads did not write)."""
    if not path.is_file():
        return False
    size = path.stat().st_size
    if size == 0:
        return True
    if kind == "report":
        from textheads.reports.page import is_report

        return is_report(path)
    if kind == "metrics" and size > _MAX_SNIFF_BYTES:  # no metrics file is this large
        return False
    try:
        with path.open(encoding="utf-8") as handle:
            if kind == "predictions":
                first = json.loads(handle.readline())
                return isinstance(first, dict) and isinstance(first.get("truncated"), bool)
            content = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and bool(content) and all(isinstance(v, dict) for v in content.values())
