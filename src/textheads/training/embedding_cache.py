"""A disk cache of pooled encoder outputs, for training heads on a frozen encoder.

Entries are keyed by the encoder (its config and a digest of its loaded
weights), the tokenizer, the pooling, the max length, how long texts are read
(`model.long_text`: a text's vector is then its windows' combined) and the text itself, so a
second run on the same data, or on data that overlaps it, encodes only the
texts it has not seen, and an encoder whose weights changed never reads
another's vectors, wherever its weights came from (one file, shards, `.bin`,
the hub).

Layout: `CACHE_DIR/embeddings/<encoder-key>/<shard>.safetensors`, each shard
holding `keys` (uint8, n x 20: SHA-1 of each text) and `vectors` (float32,
n x d). A shard is written to a temporary name, flushed to disk and renamed,
so a crash never leaves half a shard under a shard's name; each shard is
checked when read (size, shapes, width), and one that is not whole is deleted
and its texts encoded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from transformers import PreTrainedTokenizerBase

from textheads.inference.windows import TRUNCATE, LongText
from textheads.io import fsync_dir
from textheads.training.integrity import safetensors_problem

KEY_FORMAT = 2
"""Bumped when what a key covers changes, so no older cache entry is read under a new meaning."""


def default_cache_dir() -> Path:
    """`$TEXTHEADS_CACHE`, else `$XDG_CACHE_HOME/textheads`, else `~/.cache/textheads`."""
    if os.environ.get("TEXTHEADS_CACHE"):
        return Path(os.environ["TEXTHEADS_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "textheads"


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict: every tensor's name, dtype, shape and bytes, in name order.

    The same for the same weights however they were stored (one file, shards, `.bin`, the hub)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    """SHA-256 of how a tokenizer splits text (vocabulary, normaliser, special tokens)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # Set per call by `tokenizer(..., truncation=..., padding=...)`, not part of its identity.
        state.pop("truncation", None)
        state.pop("padding", None)
    else:
        state = {"class": type(tokenizer).__name__, "vocab": sorted(tokenizer.get_vocab().items()), "special": tokenizer.special_tokens_map}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def encoder_key(
    encoder_config: dict, weights: str, tokenizer: str, pooling: str, pool_layers: int, max_length: int, long_text: LongText = TRUNCATE
) -> str:
    """A digest naming one way of turning texts into vectors (`weights`, `tokenizer`: their digests).

    `long_text` other than truncation is part of it (a text's vector is then its windows', or
    its head and tail's): a cache of truncated texts is never read for windows."""
    identity: dict[str, Any] = {
        "format": KEY_FORMAT,
        "config": {k: v for k, v in sorted(encoder_config.items()) if not k.startswith("_")},
        "weights": weights,
        "tokenizer": tokenizer,
        "pooling": pooling,
        "pool_layers": pool_layers,
        "max_length": max_length,
    }
    if long_text.mode != "truncate":  # keys of truncating models stay those of caches written before
        identity["long_text"] = dataclasses.asdict(long_text) if long_text.windowed else long_text.mode
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.stack([np.frombuffer(hashlib.sha1(t.encode("utf-8")).digest(), dtype=np.uint8) for t in texts]) if texts else np.zeros((0, 20), np.uint8)


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=4)


# A shard being written: `.<shard name>.<pid>.<host>.tmp`, so that a later run can tell a dead writer's.
_TMP = re.compile(r"\.[0-9a-f]{32}\.(\d+)\.(.+)\.tmp")


class EmbeddingCache:
    """Pooled vectors of `width` floats per text, under one encoder key.

    The shards are read once, on first use, checked, and kept in memory with
    an index from text digest to (shard, row), so several lookups (train,
    validation) cost one read and a gather each. `warn` receives a line for
    each damaged shard dropped and each write that failed (the vectors are
    then used without being cached).
    """

    def __init__(self, root: Path, key: str, *, width: int, warn: Callable[[str], None] | None = None) -> None:
        self.folder = root / "embeddings" / key
        self.width = width
        self.warn = warn or _warn
        self._shards: list[np.ndarray] | None = None
        self._index: dict[bytes, tuple[int, int]] = {}

    def _load(self) -> list[np.ndarray]:
        if self._shards is None:
            self._shards = []
            if self.folder.is_dir():
                self._remove_dead_writers_files()
                for shard in sorted(self.folder.glob("[!.]*.safetensors")):
                    arrays = self._read(shard)
                    if arrays is not None:
                        self._add(*arrays)
        return self._shards

    def _read(self, shard: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """A shard's (keys, vectors); None, with the shard deleted and a warning, when it is not whole."""
        problem = safetensors_problem(shard)
        if problem is None:
            try:
                arrays = load_file(str(shard))
            except (OSError, SafetensorError) as exc:
                problem = f"does not load ({exc})"
            else:
                problem = self._shape_problem(arrays)
        if problem is None:
            return arrays["keys"], arrays["vectors"]
        self.warn(f"embedding cache shard {shard} is {problem}: deleted, its texts will be encoded again")
        shard.unlink(missing_ok=True)
        return None

    def _shape_problem(self, arrays: dict[str, np.ndarray]) -> str | None:
        keys, vectors = arrays.get("keys"), arrays.get("vectors")
        if keys is None or vectors is None:
            return f"not a cache shard (tensors {sorted(arrays)}, expected keys and vectors)"
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 20:
            return f"not a cache shard (keys {keys.dtype} {keys.shape}, expected uint8 n x 20)"
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[1] != self.width:
            return f"stale (vectors {vectors.dtype} {vectors.shape}, expected float32 n x {self.width})"
        if len(keys) != len(vectors):
            return f"inconsistent ({len(keys)} keys, {len(vectors)} vectors)"
        return None

    def _remove_dead_writers_files(self) -> None:
        """Delete temporary shards whose writer, a process on this machine, is gone (killed mid-write)."""
        host = socket.gethostname()
        for path in self.folder.glob(".*.tmp"):
            match = _TMP.fullmatch(path.name)
            if match and match.group(2) == host and not _alive(int(match.group(1))):
                path.unlink(missing_ok=True)

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
            if vectors.shape != (len(rows), self.width):
                raise ValueError(f"the encoder gave vectors of shape {vectors.shape}, expected ({len(rows)}, {self.width})")
            self._write(keys[rows], vectors)
            self._add(keys[rows], vectors)
        if not texts:
            return np.zeros((0, self.width), np.float32), 0
        found = np.array([self._index[digest] for digest in digests], dtype=np.int64)
        out = np.empty((len(texts), self.width), dtype=np.float32)
        for number in np.unique(found[:, 0]):
            positions = np.flatnonzero(found[:, 0] == number)
            out[positions] = shards[number][found[positions, 1]]
        return out, len(missing)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Write a shard: temporary file, fsync, rename, fsync of the folder. A failure (full disk)
        is a warning: the vectors are in memory and this run goes on without caching them."""
        name = uuid.uuid4().hex
        tmp = self.folder / f".{name}.{os.getpid()}.{socket.gethostname()}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            save_file({"keys": np.ascontiguousarray(keys), "vectors": np.ascontiguousarray(vectors)}, str(tmp))
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / f"{name}.safetensors")
            fsync_dir(self.folder)
        except (OSError, SafetensorError) as exc:
            tmp.unlink(missing_ok=True)
            self.warn(f"cannot write to the embedding cache {self.folder} ({exc}); these vectors are not cached")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
