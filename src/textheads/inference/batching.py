"""Tokenise once, then batch texts of similar length so padding stays small; and the
one loop that runs a model over such batches (`run_in_batches`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from textheads.progress import progress


@dataclass
class Tokenized:
    """Token ids of many texts, unpadded, and how many were cut at `max_length`."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> Tokenized:
    """Tokenise without padding; flag texts longer than `max_length` tokens."""
    encoded = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_overflowing_tokens=False,
        return_length=False,
    )
    ids = encoded["input_ids"]
    # A text was cut when it filled the window exactly and has more tokens past it;
    # a cheap check: re-tokenise only those that filled the window.
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    truncated = np.zeros(len(ids), dtype=bool)
    if full:
        longer = tokenizer([texts[i] for i in full], truncation=False, padding=False)["input_ids"]
        for i, row in zip(full, longer, strict=True):
            truncated[i] = len(row) > max_length
    return Tokenized(ids, encoded.get("token_type_ids"), truncated)


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of indices in length order (for inference: least padding)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar-length texts (for training).

    Texts are shuffled, cut into pools of `pool` batches, sorted by length
    inside each pool and batched; then the batches are shuffled. Each batch
    pads little while the order still changes every epoch.
    """
    order = rng.permutation(len(lengths))
    batches = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(tokens: Tokenized, indices: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad one batch to its longest text."""
    types = [tokens.token_type_ids[i] for i in indices] if tokens.token_type_ids is not None else None
    return collate_rows([tokens.input_ids[i] for i in indices], types, pad_id)


def collate_rows(rows: Sequence[list[int]], type_rows: Sequence[list[int]] | None, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad token id rows (and token type rows, if any) to the longest row."""
    width = max(len(row) for row in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        input_ids[r, : len(row)] = row
        attention_mask[r, : len(row)] = 1
    batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
    if type_rows is not None:
        token_type_ids = np.zeros((len(rows), width), dtype=np.int64)
        for r, types in enumerate(type_rows):
            token_type_ids[r, : len(types)] = types
        batch["token_type_ids"] = torch.from_numpy(token_type_ids)
    return batch


def iterate(tokens: Tokenized, batches: list[np.ndarray], pad_id: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Yield (indices, padded tensors) for each batch."""
    for indices in batches:
        yield indices, collate(tokens, indices, pad_id)


def run_in_batches(
    tokens: Tokenized,
    pad_id: int,
    run: Callable[[dict[str, torch.Tensor]], Mapping[str, np.ndarray]],
    out: dict[str, np.ndarray],
    *,
    batch_size: int,
    show_progress: bool = False,
    description: str = "Predicting",
) -> dict[str, np.ndarray]:
    """Run `run` on length-sorted, per-batch-padded batches of `tokens` and write each of its
    arrays' rows into `out` (one array per name, one row per text) in input order.

    Every batched pass over texts (predictions, validation, the frozen path's pooled
    vectors) goes through here; returns `out`.
    """
    batches = sorted_batches(tokens.lengths, batch_size)
    with progress(len(batches), description, enabled=show_progress) as advance:
        for indices, batch in iterate(tokens, batches, pad_id):
            for name, values in run(batch).items():
                out[name][indices] = values
            advance()
    return out
