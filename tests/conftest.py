"""Shared fixtures: a tiny random BERT with a small written vocabulary, and example data.

The encoder is built once per session and saved as a local model directory,
so the library loads it exactly as it loads any Hugging Face encoder.
"""

from __future__ import annotations

import json
import os
import random
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ["python", "code", "function", "bug", "debug", "compiler", "git", "test", "loop", "class", "learn", "beginner", "start", "easy", "recipe", "oven", "pasta", "bake", "cook", "salt", "garlic", "spice", "dinner", "soup", "sleep", "run", "walk", "doctor", "stretch", "water", "health", "exercise", "rest", "pain", "great", "thanks", "lol", "funny", "today", "weather", "good", "bad", "the", "a", "to", "and", "is", "it", "you", "your", "for", "of", "in", "my", "with", "this", "that", "not", "just", "very", "really"]
CJK = list("中文学习编程好的很我你是在了不有人大天")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocabulary() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + ".,!?'-:;()") + ["ä", "ö", "ü", "ß"]
    return SPECIAL + chars + ["##" + c for c in chars] + CJK + WORDS


@pytest.fixture(scope="session", autouse=True)
def _own_embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Frozen-encoder runs cache their vectors in the session's temporary folder, never in the
    user's ~/.cache/textheads: no test reads what an earlier run left (and CI's times are honest)."""
    os.environ["TEXTHEADS_CACHE"] = str(tmp_path_factory.mktemp("embedding-cache"))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, width-32 random BERT and its tokenizer, saved as a local model directory."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    vocab = _vocabulary()
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


TOPICS = {
    "code": ["python", "code", "function", "bug", "debug", "compiler", "git", "test", "loop", "class"],
    "cook": ["recipe", "oven", "pasta", "bake", "cook", "salt", "garlic", "spice", "dinner", "soup"],
    "health": ["sleep", "run", "walk", "doctor", "stretch", "water", "health", "exercise", "rest", "pain"],
}
LEVELS = ["beginner", "mid", "expert"]


def make_rows(n: int, seed: int = 0, missing: bool = True) -> list[dict[str, Any]]:
    """Rows with a learnable multilabel `topics`, multiclass `level` and regression `score`.

    Some rows miss `level` or `score` (null or absent) when `missing` is true.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topics = sorted(rng.sample(sorted(TOPICS), rng.choice([1, 1, 2])))
        words = [rng.choice(TOPICS[t]) for t in topics for _ in range(3)]
        level = LEVELS[i % 3]
        if level == "beginner":
            words += ["learn", "start", "easy"]
        words += rng.sample(["the", "a", "is", "very", "really", "my", "your"], 2)
        rng.shuffle(words)
        row: dict[str, Any] = {"text": " ".join(words), "topics": topics, "level": level, "score": round(len(topics) * 2.0 + rng.random(), 2)}
        if missing and i % 7 == 3:
            row["level"] = None
        if missing and i % 5 == 4:
            del row["score"]
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def data_files(tmp_path: Path) -> dict[str, Path]:
    """train/dev/test JSONL files with three heads and missing labels."""
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", make_rows(96, seed=1)),
        "validation": write_jsonl(tmp_path / "dev.jsonl", make_rows(30, seed=2)),
        "test": write_jsonl(tmp_path / "test.jsonl", make_rows(30, seed=3)),
    }


def three_head_config(encoder: Path, files: dict[str, Path], output_dir: Path, **train: Any) -> dict[str, Any]:
    """A raw run config with multilabel + multiclass + regression heads on the tiny encoder."""
    return {
        "model": {"encoder": str(encoder), "pooling": "mean", "max_length": 32},
        "data": {"train": str(files["train"]), "validation": str(files["validation"]), "test": str(files["test"])},
        "heads": {
            "topics": {"kind": "multilabel"},
            "level": {"kind": "multiclass", "labels": LEVELS, "weight": 0.5},
            "score": {"kind": "regression", "loss": "huber", "weight": 0.5},
        },
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "head_learning_rate": 5e-3, "seed": 7, "log_every_steps": 2, **train},
        "output_dir": str(output_dir),
    }


def train_toy_model(
    encoder: Path, root: Path, *, rows: int = 96, validation_rows: int = 30, heads: dict[str, dict[str, Any]] | None = None, **train: Any
) -> Any:
    """A three-head TextClassifier fitted on toy rows written under `root` (its model dir:
    `root/model`; the validation rows, `root/dev.jsonl`, double as test rows). `heads` adds
    keys to the heads' configs, e.g. `{"topics": {"hidden_sizes": [16]}}`."""
    from textheads import TextClassifier
    from textheads.config import build_config

    files = {"train": write_jsonl(root / "train.jsonl", make_rows(rows, seed=1)), "validation": write_jsonl(root / "dev.jsonl", make_rows(validation_rows, seed=2))}
    files["test"] = files["validation"]
    raw = three_head_config(encoder, files, root / "model", **train)
    for name, keys in (heads or {}).items():
        raw["heads"][name].update(keys)
    return TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)


@pytest.fixture()
def config_file(tmp_path: Path, tiny_encoder_dir: Path, data_files: dict[str, Path]) -> Path:
    """A YAML config for the three-head run, writing to tmp_path/model."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(three_head_config(tiny_encoder_dir, data_files, tmp_path / "model")), encoding="utf-8")
    return path
