"""Save and load a model directory: config.json, model.safetensors, tokenizer files."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from textheads.errors import ModelLoadError, SaveError
from textheads.io import publish_files
from textheads.model import TextHeadsModel
from textheads.ownership import claim_folder, record_files, refuse_foreign_folder

_TMP_PREFIX = ".tmp-model-"
# The folders `save_model_dir` writes in (tempfile's 8 random characters), as a killed save leaves them.
_PARTIAL = re.compile(re.escape(_TMP_PREFIX) + r"[a-z0-9_]{8}")


def save_model_dir(model: TextHeadsModel, tokenizer: PreTrainedTokenizerBase, path: str | Path) -> None:
    """Write the model directory; each file is replaced atomically.

    `path` must be new, empty or textheads' own (a model directory or run): a folder
    of someone else's is refused, since saving would replace its `config.json`.
    Files are written to a temporary folder inside `path` first; an interruption (Ctrl-C, a full
    disk) removes it, and a `SaveError` says what failed.
    """
    path = Path(path)
    refuse_foreign_folder(path, option="folder to save the model in")
    try:
        claim_folder(path, "save")
        tmp = Path(tempfile.mkdtemp(dir=path, prefix=_TMP_PREFIX))
    except OSError as exc:
        raise SaveError(f"cannot save the model to {path}: {exc}") from None
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record_files(path, publish_files(tmp, path))
    except (OSError, SafetensorError) as exc:
        raise SaveError(f"cannot save the model to {path}: {exc} (is the disk full?)") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_partial_saves(path: Path) -> None:
    """Remove the temporary folders that a killed `save_model_dir` left in `path`; nothing else."""
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and _PARTIAL.fullmatch(child.name):
                shutil.rmtree(child, ignore_errors=True)


def load_model_dir(path: str | Path) -> tuple[TextHeadsModel, PreTrainedTokenizerBase]:
    """Load a model directory written by textheads (no pickle, no network)."""
    path = Path(path)
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelLoadError(
            f"{path} is not a textheads model directory: expected config.json and "
            "model.safetensors (train one with `textheads train CONFIG`)"
        )
    try:
        model = TextHeadsModel.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load the model in {path}: {exc}") from None
    if getattr(model.config, "model_type", None) != "textheads" or not model.config.head_specs:
        raise ModelLoadError(f"{path}/config.json is not a textheads model config (no head specs)")
    model.eval()
    return model, tokenizer
