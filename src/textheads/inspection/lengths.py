"""Texts' lengths in the encoder's tokens, and what `max_length` (and `long_text`) would cut."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedTokenizerBase

from textheads.inference.windows import LongText, special_frame, window_rows
from textheads.inspection.figures import Histogram, LengthInspection

_CHUNK = 4096
HISTOGRAM_BINS = 40


def content_lengths(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> np.ndarray:
    """Tokens of each text, special tokens not counted (chunked: one chunk's ids held at a time)."""
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), _CHUNK):
        # verbose=False: texts longer than the encoder reads are what is being counted here.
        ids = tokenizer(list(texts[start : start + _CHUNK]), add_special_tokens=False, truncation=False, padding=False, verbose=False)["input_ids"]
        lengths[start : start + len(ids)] = [len(row) for row in ids]
    return lengths


def unread_tokens(length: int, budget: int, long_text: LongText) -> tuple[int, int]:
    """(rows read, tokens not read) of a text of `length` content tokens, exactly as the model
    reads it (`window_rows`), with `budget` content tokens a row."""
    if length <= budget:
        return 1, 0
    rows, dropped = window_rows(list(range(length)), budget, long_text)
    return len(rows), dropped


def inspect_lengths(
    tokenizer: PreTrainedTokenizerBase,
    texts_by_split: dict[str, Sequence[str]],
    *,
    encoder: str,
    max_length: int,
    long_text: LongText,
) -> LengthInspection:
    """Token lengths of every split's texts against `max_length`, read as `long_text` says."""
    frame = special_frame(tokenizer)
    budget = max_length - frame.size
    content = {name: content_lengths(tokenizer, texts) for name, texts in texts_by_split.items()}
    every = np.concatenate(list(content.values())) if content else np.zeros(0, np.int64)
    read = np.array([unread_tokens(int(n), budget, long_text) for n in every], dtype=np.int64).reshape(-1, 2)
    rows, dropped = read[:, 0], read[:, 1]
    cut = dropped > 0
    totals = every + frame.size
    cut_by_split, offset = {}, 0
    for name, lengths in content.items():
        cut_by_split[name] = int(cut[offset : offset + len(lengths)].sum())
        offset += len(lengths)
    figures = LengthInspection(
        encoder=encoder,
        max_length=max_length,
        long_text=long_text.mode,
        texts=len(every),
        percentiles={f"p{q}": int(np.percentile(totals, q, method="higher")) for q in (50, 90, 95, 99)} | {"max": int(totals.max())} if len(totals) else {},
        cut=int(cut.sum()),
        cut_by_split=cut_by_split,
    )
    if cut.any():
        figures.tokens_not_read = {
            "mean": float(dropped[cut].mean()),
            "median": float(np.median(dropped[cut])),
            "max": int(dropped[cut].max()),
            "mean_share": float((dropped[cut] / every[cut]).mean()),
        }
    if long_text.windowed:
        figures.max_windows = long_text.max_windows
        figures.windows = {"mean": float(rows.mean()), "max": int(rows.max())} if len(rows) else {}
    if len(totals):
        counts, edges = np.histogram(totals, bins=min(HISTOGRAM_BINS, max(1, int(totals.max() - totals.min()))))
        figures.histogram = Histogram([float(e) for e in edges], [int(c) for c in counts])
    return figures
