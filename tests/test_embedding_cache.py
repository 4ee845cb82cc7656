"""The frozen path's embedding cache: keyed by the encoder's weights however they are stored, and
never read from a shard that is not whole or not of this encoder's width."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from transformers import AutoTokenizer, BertModel

from conftest import three_head_config
from textheads import TextClassifier
from textheads.config import build_config
from textheads.training.embedding_cache import EmbeddingCache, text_keys


def _save_bin(encoder: BertModel, tokenizer, folder: Path) -> None:
    """What `save_pretrained(safe_serialization=False)` wrote before transformers 5: a pickled state dict."""
    folder.mkdir()
    encoder.config.save_pretrained(folder)
    torch.save(encoder.state_dict(), folder / "pytorch_model.bin")
    tokenizer.save_pretrained(folder)


def _save_sharded(encoder: BertModel, tokenizer, folder: Path) -> None:
    encoder.save_pretrained(folder, max_shard_size="50KB")
    tokenizer.save_pretrained(folder)


LAYOUTS = {"bin": (_save_bin, "pytorch_model.bin"), "sharded": (_save_sharded, "model.safetensors.index.json")}


def _frozen_fit(encoder: Path, data_files: dict, output_dir: Path, cache: Path) -> tuple[TextClassifier, str]:
    """Train heads on the frozen encoder; the line that says how many texts came from the cache."""
    lines: list[str] = []
    raw = three_head_config(encoder, data_files, output_dir, freeze="encoder", max_steps=1, cache_dir=str(cache))
    clf = TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lines.append)
    return clf, "\n".join(lines)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_cache_key_follows_the_encoders_weights_in_any_layout(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, layout: str) -> None:
    save, weights_file = LAYOUTS[layout]
    encoder = BertModel.from_pretrained(tiny_encoder_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    folder, cache = tmp_path / "encoder", tmp_path / "cache"
    save(encoder, tokenizer, folder)
    assert (folder / weights_file).exists() and not (folder / "model.safetensors").exists()

    assert "0 of 126 texts from the embedding cache, 126 encoded" in _frozen_fit(folder, data_files, tmp_path / "first", cache)[1]
    assert "126 of 126 texts from the embedding cache, 0 encoded" in _frozen_fit(folder, data_files, tmp_path / "again", cache)[1]
    with torch.no_grad():
        encoder.embeddings.word_embeddings.weight.mul_(1.5)
    shutil.rmtree(folder)
    save(encoder, tokenizer, folder)  # same path, other weights
    assert "0 of 126 texts from the embedding cache, 126 encoded" in _frozen_fit(folder, data_files, tmp_path / "changed", cache)[1]
    assert len(list((cache / "embeddings").iterdir())) == 2


def test_a_truncated_shard_is_deleted_and_its_texts_encoded_again(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, _ = _frozen_fit(tiny_encoder_dir, data_files, tmp_path / "first", cache)
    (folder,) = (cache / "embeddings").iterdir()
    train_shard = max(folder.glob("*.safetensors"), key=lambda p: p.stat().st_size)  # 96 texts, the validation shard 30
    data = train_shard.read_bytes()
    train_shard.write_bytes(data[: len(data) - 100])

    second, output = _frozen_fit(tiny_encoder_dir, data_files, tmp_path / "second", cache)
    assert f"Warning: embedding cache shard {train_shard} is truncated: {len(data) - 100} bytes, its header declares {len(data)}: deleted, its texts will be encoded again" in output
    assert "30 of 126 texts from the embedding cache, 96 encoded" in output
    assert not train_shard.exists()
    texts = ["python bug today", "oven pasta recipe"]
    for head, values in first.predict_proba(texts).items():
        np.testing.assert_allclose(second.predict_proba(texts)[head], values, atol=1e-6)


def _counting(calls: list[list[str]]):
    def compute(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), ord(t[0]), 1.0] for t in texts], dtype=np.float32)

    return compute


def test_a_shard_of_another_width_is_deleted_and_its_texts_encoded_again(tmp_path: Path) -> None:
    texts = ["ab", "c"]
    folder = tmp_path / "embeddings" / "k"
    folder.mkdir(parents=True)
    stale = folder / f"{uuid.uuid4().hex}.safetensors"
    save_file({"keys": text_keys(texts), "vectors": np.zeros((2, 7), np.float32)}, str(stale))
    calls: list[list[str]] = []
    warnings: list[str] = []
    cache = EmbeddingCache(tmp_path, "k", width=3, warn=warnings.append)
    vectors, new = cache.get_or_compute(texts, _counting(calls))
    assert new == 2 and calls == [texts]
    np.testing.assert_array_equal(vectors, [[2, 97, 1], [1, 99, 1]])
    assert warnings == [f"embedding cache shard {stale} is stale (vectors float32 (2, 7), expected float32 n x 3): deleted, its texts will be encoded again"]
    assert not stale.exists()


def test_a_shard_whose_keys_and_vectors_disagree_is_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "embeddings" / "k"
    folder.mkdir(parents=True)
    save_file({"keys": text_keys(["ab", "c"]), "vectors": np.zeros((1, 3), np.float32)}, str(folder / f"{uuid.uuid4().hex}.safetensors"))
    warnings: list[str] = []
    cache = EmbeddingCache(tmp_path, "k", width=3, warn=warnings.append)
    assert cache.get_or_compute(["ab", "c"], _counting([]))[1] == 2
    assert "inconsistent (2 keys, 1 vectors)" in warnings[0]


def test_a_temporary_shard_of_a_dead_writer_is_removed(tmp_path: Path) -> None:
    folder = tmp_path / "embeddings" / "k"
    folder.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    host = socket.gethostname()
    dead = folder / f".{uuid.uuid4().hex}.{gone.stdout.strip()}.{host}.tmp"
    live = folder / f".{uuid.uuid4().hex}.{os.getpid()}.{host}.tmp"  # a write in progress
    other = folder / "notes.tmp"
    for path in (dead, live, other):
        path.write_bytes(b"half a shard")
    EmbeddingCache(tmp_path, "k", width=3).get_or_compute(["ab"], _counting([]))
    assert not dead.exists() and live.exists() and other.exists()
