"""Tokenise once, then batch texts of similar length so padding stays small; and the
one loop that runs a model over such batches (`run_in_batches`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from textheads.inference.windows import TRUNCATE, LongText, special_frame, window_rows
from textheads.progress import progress


@dataclass
class Tokenized:
    """Token ids of many texts, unpadded: one row per text, or under `long_text: windows` one
    row per window, `window_starts` saying which rows are whose."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: np.ndarray
    """bool (texts,): some of the text's tokens are read by no row."""
    unread: np.ndarray | None = None
    """float (texts,): the share of each text's tokens read by no row (0 where none were dropped)."""
    window_starts: np.ndarray | None = None
    """int64 (texts + 1,): text i's windows are rows `window_starts[i]:window_starts[i+1]`; None: row i is text i."""

    def __len__(self) -> int:
        return len(self.truncated)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens of each text over all its rows (what length-sorted batching sorts by)."""
        rows = np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))
        if self.window_starts is None:
            return rows
        return np.add.reduceat(rows, self.window_starts[:-1]) if len(rows) else rows

    @property
    def windows(self) -> np.ndarray:
        """int64 (texts,): the rows (windows) of each text."""
        if self.window_starts is None:
            return np.ones(len(self), dtype=np.int64)
        return np.diff(self.window_starts)

    def rows_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The rows of the texts at `indices`, text after text."""
        if self.window_starts is None:
            return np.asarray(indices, dtype=np.int64)
        starts = self.window_starts
        return np.concatenate([np.arange(starts[i], starts[i + 1]) for i in indices]) if len(indices) else np.zeros(0, np.int64)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Tokenized:
        """The texts at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.rows_of(indices)
        types = [self.token_type_ids[r] for r in rows] if self.token_type_ids is not None else None
        starts = None if self.window_starts is None else np.concatenate([[0], np.cumsum(self.windows[indices])]).astype(np.int64)
        unread = self.unread[indices] if self.unread is not None else None
        return Tokenized([self.input_ids[r] for r in rows], types, self.truncated[indices], unread, starts)


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, long_text: LongText = TRUNCATE) -> Tokenized:
    """Tokenise without padding, reading texts longer than `max_length` tokens as `long_text`
    says; flag the texts that had tokens dropped, and how many."""
    if long_text.mode == "truncate":
        return _truncated(tokenizer, texts, max_length)
    frame = special_frame(tokenizer)
    budget = max_length - frame.size
    content = tokenizer(list(texts), add_special_tokens=False, truncation=False, padding=False, verbose=False)["input_ids"] if texts else []
    rows: list[list[int]] = []
    counts = np.zeros(len(content), dtype=np.int64)
    unread = np.zeros(len(content), dtype=np.float64)
    for i, ids in enumerate(content):
        windows, dropped = window_rows(ids, budget, long_text)
        rows += [frame.wrap(window) for window in windows]
        counts[i] = len(windows)
        unread[i] = dropped / len(ids) if dropped else 0.0
    types = [[frame.token_type] * len(row) for row in rows] if frame.token_type is not None else None
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64) if long_text.windowed else None
    return Tokenized(rows, types, unread > 0, unread, starts)


def _truncated(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> Tokenized:
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
    unread = np.zeros(len(ids), dtype=np.float64)
    if full:
        # verbose=False: reading past the encoder's limit here is on purpose (counting), not a mistake.
        longer = tokenizer([texts[i] for i in full], truncation=False, padding=False, verbose=False)["input_ids"]
        special = tokenizer.num_special_tokens_to_add(pair=False)
        for i, row in zip(full, longer, strict=True):
            if len(row) > max_length:
                unread[i] = (len(row) - max_length) / max(1, len(row) - special)
    return Tokenized(ids, encoded.get("token_type_ids"), unread > 0, unread)


def sorted_batches(lengths: np.ndarray, batch_size: int, windows: np.ndarray | None = None) -> list[np.ndarray]:
    """Batches of indices in length order (for inference: least padding).

    With `windows` (rows per text), a batch holds at most `batch_size` rows (and at least one
    text), so that a batch of long texts read in windows takes no more memory than one of
    short texts."""
    order = np.argsort(-lengths, kind="stable")
    if windows is None or (windows == 1).all():
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches, current, rows = [], [], 0
    for index in order:
        if current and rows + windows[index] > batch_size:
            batches.append(np.asarray(current, dtype=np.int64))
            current, rows = [], 0
        current.append(index)
        rows += int(windows[index])
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


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
    """Pad one batch of texts (all their windows, under `long_text: windows`) to its longest row."""
    rows = tokens.rows_of(indices)
    types = [tokens.token_type_ids[i] for i in rows] if tokens.token_type_ids is not None else None
    batch = collate_rows([tokens.input_ids[i] for i in rows], types, pad_id)
    if tokens.window_starts is not None:
        batch["window_document"] = window_documents(tokens.windows[np.asarray(indices, dtype=np.int64)])
    return batch


def window_documents(windows: Sequence[int] | np.ndarray) -> torch.Tensor:
    """The model's `window_document` input: for each row, the position of its text in the batch
    (texts in order, each text's windows together), from the number of windows of each text."""
    return torch.from_numpy(np.repeat(np.arange(len(windows), dtype=np.int64), np.asarray(windows, dtype=np.int64)))


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
    batches = sorted_batches(tokens.lengths, batch_size, tokens.windows if tokens.window_starts is not None else None)
    with progress(len(batches), description, enabled=show_progress) as advance:
        for indices, batch in iterate(tokens, batches, pad_id):
            for name, values in run(batch).items():
                out[name][indices] = values
            advance()
    return out
