"""How a text longer than the model's `max_length` is read (`model.long_text`).

- `truncate`: the first tokens only (the text's end is dropped).
- `head_tail`: the first quarter of the budget from the text's start and three quarters
  from its end (Sun et al. 2019 found 128 + 382 of 512 the best split on long reviews;
  this is the same ratio at any `max_length`); the middle is dropped.
- `windows`: windows of `max_length` tokens (special tokens in each) that overlap by
  `window_stride` tokens and cover the whole text; the model combines them into one answer.
  A text needing more than `max_windows` windows keeps its first `max_windows` (a longer
  prefix than truncation reads) and counts as truncated.

The windows of a text are spread so that the last ends at the text's end: every window
of a long text is full (no padding), and consecutive windows overlap by at least
`window_stride` tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from transformers import PreTrainedTokenizerBase

LongTextMode = Literal["truncate", "head_tail", "windows"]
LONG_TEXT_MODES: tuple[str, ...] = ("truncate", "head_tail", "windows")


@dataclass(frozen=True)
class LongText:
    """`model.long_text` with its settings, as a model reads texts."""

    mode: LongTextMode = "truncate"
    window_stride: int = 32
    """Tokens shared by consecutive windows (`windows` only)."""
    max_windows: int = 8
    """Most windows read per text (`windows` only)."""
    window_pooling: Literal["mean", "max"] = "mean"
    """How the windows' pooled vectors become the document's (`windows` only)."""

    @property
    def windowed(self) -> bool:
        return self.mode == "windows"


TRUNCATE = LongText()


def window_rows(content: list[int], budget: int, long_text: LongText) -> tuple[list[list[int]], int]:
    """The content tokens of each row the model reads for one text (special tokens not yet
    added; at most `budget` tokens a row), and how many of the text's tokens no row reads."""
    n = len(content)
    if n <= budget:
        return [content], 0
    if long_text.mode == "head_tail":
        head = budget // 4
        return [content[:head] + content[n - (budget - head) :]], n - budget
    if long_text.mode == "truncate":
        return [content[:budget]], n - budget
    step = max(1, budget - min(long_text.window_stride, budget - 1))
    needed = math.ceil((n - budget) / step) + 1
    if needed <= long_text.max_windows:
        starts = [min(k * step, n - budget) for k in range(needed)]
        return [content[s : s + budget] for s in starts], 0
    starts = [k * step for k in range(long_text.max_windows)]
    return [content[s : s + budget] for s in starts], n - (starts[-1] + budget)


@dataclass(frozen=True)
class SpecialFrame:
    """The special tokens a tokenizer puts around one text (e.g. `[CLS] … [SEP]`)."""

    prefix: list[int]
    suffix: list[int]
    token_type: int | None
    """The token type id of a single text's tokens; None when the model takes no token types."""

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def wrap(self, content: list[int]) -> list[int]:
        return [*self.prefix, *content, *self.suffix]


def special_frame(tokenizer: PreTrainedTokenizerBase) -> SpecialFrame:
    """Find the special tokens around a single text by tokenising a probe with and without them
    (transformers 5 has no public call that adds them to given ids for every tokenizer)."""
    probe = "a"
    framed = tokenizer(probe, add_special_tokens=True)
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    ids = framed["input_ids"]
    for start in range(len(ids) - len(bare) + 1):
        if ids[start : start + len(bare)] == bare:
            types = framed.get("token_type_ids")
            return SpecialFrame(ids[:start], ids[start + len(bare) :], types[0] if types else None)
    raise ValueError(f"cannot find where {type(tokenizer).__name__} puts a text between its special tokens")


@dataclass
class Truncation:
    """How many texts a prediction or evaluation did not read whole, and how much of them it missed."""

    texts: int = 0
    cut: int = 0
    """Texts of which some tokens were read by no window."""
    unread: float = 0.0
    """The sum of the cut texts' unread shares (of those whose share is known: `measured`)."""
    measured: int = 0

    def add(self, truncated: np.ndarray, unread: np.ndarray | None = None) -> None:
        """Count a batch of texts: their `truncated` flags and unread shares (if known)."""
        self.texts += len(truncated)
        cut = int(np.count_nonzero(truncated))
        self.cut += cut
        if unread is not None and cut:
            self.unread += float(unread[truncated].sum())
            self.measured += cut

    def add_cut(self, texts: int, cut: int) -> None:
        """Count texts known only by their flags (e.g. rows of a resumed file)."""
        self.texts += texts
        self.cut += cut

    def line(self, max_length: int, long_text: LongText = TRUNCATE) -> str:
        """One sentence for the user, e.g. `37 of 500 texts were longer than 128 tokens; on
        average 41% of their tokens were not read (truncate)`."""
        if long_text.windowed:
            limit = f"the {long_text.max_windows} windows of {max_length} tokens the model reads"
        else:
            limit = f"{max_length} tokens"
        if not self.cut:
            return f"0 of {self.texts} texts were longer than {limit}: every text was read whole"
        share = f"; on average {self.unread / self.measured:.0%} of their tokens were not read" if self.measured else ""
        how = {"truncate": "their end was cut", "head_tail": "their middle was dropped", "windows": "their end was cut"}[long_text.mode]
        return f"{self.cut} of {self.texts} texts were longer than {limit} ({how}){share}"
