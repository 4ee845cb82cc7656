"""The model card, `README.md`, of every model folder and ONNX export textheads writes.

Built from the folder's files alone (`facts`): YAML front matter the Hugging Face Hub reads
(`metadata`), then the Markdown sections (`sections`). textheads replaces or deletes only a
card it wrote itself: the marker (or export manifest) keeps the digest of the last card
written, and a README.md with other content, written or edited by hand, is left as it is.

Example:
    >>> write_model_card("runs/advice")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textheads.io import write_text_atomic
from textheads.ownership import (
    CARD,
    CARD_HASH,
    TRAINING_DATA,
    card_is_ours,
    claim_folder,
    read_marker,
    record_files,
    text_digest,
)

__all__ = ["CARD", "CARD_HASH", "SOURCES", "card_text", "kept_card_line", "read_card_sources", "write_card_sources", "write_export_card", "write_model_card"]


def card_text(model_dir: str | Path, *, export: dict[str, Any] | None = None) -> str:
    """The model card of the model directory `model_dir` (of its ONNX export, with the
    export's manifest as `export`)."""
    from huggingface_hub import ModelCard

    from textheads.card.facts import read_facts
    from textheads.card.metadata import card_data
    from textheads.card.sections import body

    facts = read_facts(Path(model_dir), export=export)
    return str(ModelCard(f"---\n{card_data(facts).to_yaml()}\n---\n\n{body(facts)}"))


def kept_card_line(folder: Path, recorded: object) -> str:
    """What to say when the README.md in `folder` is someone else's."""
    how = "edited by hand since textheads wrote it" if isinstance(recorded, str) else "not written by textheads"
    return f"{folder / CARD} was {how}; the model card was left as it is"


def write_model_card(model_dir: str | Path, *, echo: Callable[[str], None] = print) -> bool:
    """Write (or rewrite) the card of a model directory textheads saved; False, with a line
    to `echo`, when its README.md was written or edited by hand (it is kept)."""
    folder = Path(model_dir)
    recorded = (read_marker(folder) or {}).get(CARD_HASH)
    if not card_is_ours(folder, recorded):
        echo(kept_card_line(folder, recorded))
        return False
    text = card_text(folder)
    write_text_atomic(folder / CARD, text)
    claim_folder(folder, "save", **{CARD_HASH: text_digest(text)})
    record_files(folder, [CARD])
    return True


SOURCES = ("validation_metrics.json", "test_metrics.json", TRAINING_DATA, "training_config.yaml")
"""The run's files beside the model that the card reads, besides the model's own config."""


def read_card_sources(model_dir: str | Path) -> dict[str, str]:
    """The files of `SOURCES` that `model_dir` holds, by name, so that a model saved
    elsewhere (`TextClassifier.save`) carries them and its card says as much."""
    sources = {}
    for name in SOURCES:
        try:
            sources[name] = (Path(model_dir) / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return sources


def write_card_sources(model_dir: str | Path, sources: dict[str, str]) -> None:
    """Write `sources` (from `read_card_sources`) beside the model in `model_dir`, listed in its marker."""
    for name, text in sources.items():
        write_text_atomic(Path(model_dir) / name, text)
    record_files(Path(model_dir), sources)


def write_export_card(model_dir: Path, target: Path, staging: Path, manifest: dict[str, Any], *, echo: Callable[[str], None] = print) -> dict[str, str]:
    """Write the card of the ONNX export of `model_dir` (its `manifest` so far) into
    `staging`, the folder that replaces `target`. A README.md in an earlier export at
    `target` that was edited by hand is carried over unchanged instead. Returns the
    manifest's record of the card."""
    recorded = _earlier_card_digest(target)
    if not card_is_ours(target, recorded):
        shutil.copy2(target / CARD, staging / CARD)
        echo(kept_card_line(target, recorded))
        return {CARD_HASH: recorded} if isinstance(recorded, str) else {}
    text = card_text(model_dir, export=manifest)
    (staging / CARD).write_text(text, encoding="utf-8")  # the staging folder is flushed and renamed as a whole
    return {CARD_HASH: text_digest(text)}


def _earlier_card_digest(target: Path) -> object:
    from textheads.errors import ModelLoadError
    from textheads.export.manifest import is_onnx_dir, read_manifest

    try:
        return read_manifest(target).get(CARD_HASH) if is_onnx_dir(target) else None
    except ModelLoadError:
        return None
