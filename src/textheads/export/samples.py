"""Sample texts kept with a model, so that an int8 export can be checked against it.

Training stores a bounded, seeded sample of its validation texts (or of its
training texts, when it had no validation data) in the model directory as
`sample_texts.jsonl`, one `{"text": ...}` per line. `textheads export
--quantize int8` compares the quantised model with the fp32 one on them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textheads.io import write_text_atomic

SAMPLE_FILE = "sample_texts.jsonl"
MAX_SAMPLE_TEXTS = 512


def choose_sample(texts: Sequence[str], seed: int, limit: int = MAX_SAMPLE_TEXTS) -> list[str]:
    """Up to `limit` of `texts`, drawn without replacement (seeded), in their original order."""
    if len(texts) <= limit:
        return list(texts)
    chosen = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
    return [texts[i] for i in chosen]


def write_sample_texts(model_dir: str | Path, texts: Sequence[str]) -> None:
    """Write `texts` (already bounded, see `choose_sample`) beside the model, atomically."""
    lines = "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts)
    write_text_atomic(Path(model_dir) / SAMPLE_FILE, lines)


def read_sample_texts(model_dir: str | Path) -> list[str] | None:
    """The sample texts stored with a model, or None when it has none.

    Read and checked like any data file (a damaged line is a `DataError` naming it)."""
    from textheads.data.dataset import load_texts

    path = Path(model_dir) / SAMPLE_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return None
    return load_texts(path, ["text"]) or None
