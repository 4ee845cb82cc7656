"""A disk cache of pooled encoder outputs, for training heads on a frozen encoder.

Entries are keyed by the encoder (its config and weights file), the pooling,
the max length and the text itself, so a second run on the same data, or on
data that overlaps it, encodes only the texts it has not seen.

Layout: `CACHE_DIR/<encoder-key>/<shard>.safetensors`, each shard holding
`keys` (uint8, n x 20: SHA-1 of each text) and `vectors` (float32, n x d).
Shards are written to a temporary name and renamed, so a crash never leaves
a half shard behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file


def default_cache_dir() -> Path:
    """`$TEXTHEADS_CACHE`, else `$XDG_CACHE_HOME/textheads`, else `~/.cache/textheads`."""
    if os.environ.get("TEXTHEADS_CACHE"):
        return Path(os.environ["TEXTHEADS_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "textheads"


def encoder_key(encoder_config: dict, weights: Path | None, pooling: str, pool_layers: int, max_length: int) -> str:
    """A digest naming one way of turning texts into vectors."""
    identity = {
        "config": {k: v for k, v in sorted(encoder_config.items()) if not k.startswith("_")},
        "pooling": pooling,
        "pool_layers": pool_layers,
        "max_length": max_length,
    }
    if weights is not None and weights.exists():
        stat = weights.stat()
        identity["weights"] = [str(weights.resolve()), stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.stack([np.frombuffer(hashlib.sha1(t.encode("utf-8")).digest(), dtype=np.uint8) for t in texts]) if texts else np.zeros((0, 20), np.uint8)


class EmbeddingCache:
    """Pooled vectors of texts under one encoder key.

    The shards are read once, on first use, and kept in memory with an index
    from text digest to (shard, row), so several lookups (train, validation)
    cost one read and a gather each.
    """

    def __init__(self, root: Path, key: str) -> None:
        self.folder = root / "embeddings" / key
        self._shards: list[np.ndarray] | None = None
        self._index: dict[bytes, tuple[int, int]] = {}

    def _load(self) -> list[np.ndarray]:
        if self._shards is None:
            self._shards = []
            if self.folder.is_dir():
                for shard in sorted(self.folder.glob("*.safetensors")):
                    self._add(**load_file(str(shard)))
        return self._shards

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        assert self._shards is not None
        number = len(self._shards)
        self._shards.append(vectors)
        self._index.update((key.tobytes(), (number, row)) for row, key in enumerate(keys))

    def get_or_compute(self, texts: Sequence[str], compute: Callable[[list[str]], torch.Tensor | np.ndarray]) -> tuple[np.ndarray, int]:
        """Vectors for `texts` (in order) and how many had to be computed now."""
        shards = self._load()
        keys = text_keys(texts)
        digests = [key.tobytes() for key in keys]
        missing = [i for i, digest in enumerate(digests) if digest not in self._index]
        if missing:
            # Encode each distinct missing text once.
            unique: dict[bytes, int] = {}
            for i in missing:
                unique.setdefault(digests[i], i)
            rows = list(unique.values())
            vectors = np.asarray(compute([texts[i] for i in rows]), dtype=np.float32)
            self._write(keys[rows], vectors)
            self._add(keys[rows], vectors)
        if not texts:
            return np.zeros((0, shards[0].shape[1] if shards else 0), np.float32), 0
        found = np.array([self._index[digest] for digest in digests], dtype=np.int64)
        out = np.empty((len(texts), shards[found[0, 0]].shape[1]), dtype=np.float32)
        for number in np.unique(found[:, 0]):
            positions = np.flatnonzero(found[:, 0] == number)
            out[positions] = shards[number][found[positions, 1]]
        return out, len(missing)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.folder / f".{name}.tmp"
        save_file({"keys": np.ascontiguousarray(keys), "vectors": np.ascontiguousarray(vectors)}, str(tmp))
        os.replace(tmp, self.folder / f"{name}.safetensors")
