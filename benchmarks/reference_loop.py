"""The plain fine-tuning recipe of BASELINES.md, written by hand as a reference.

BCE, mean pooling, AdamW (encoder lr 8e-5, head 2e-3), linear warm-up 6 % and
decay planned over 5 epochs, batch 32, length-sorted batches shuffled,
per-batch padding, max length 64. Deliberately independent of textheads'
training code: it is what we compare against.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

from textheads.encoder import default_encoder_path


class MeanPoolClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(encoder.config.hidden_size, labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))


def _batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = np.argsort(lengths + rng.random(len(lengths)))  # length-sorted, ties shuffled
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad(ids: list[list[int]], idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [ids[i] for i in idx]
    width = max(map(len, rows))
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    return input_ids, mask


@torch.inference_mode()
def predict(model: MeanPoolClassifier, ids: list[list[int]], batch: int = 128) -> np.ndarray:
    model.eval()
    out = np.zeros((len(ids), model.head.out_features), dtype=np.float32)
    order = np.argsort([len(x) for x in ids])
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        out[idx] = torch.sigmoid(model(*_pad(ids, idx))).numpy()
    model.train()
    return out


def train(
    train_texts: list[str],
    train_y: np.ndarray,
    epochs: int,
    on_epoch: Callable[[int, MeanPoolClassifier, Callable[[list[str]], np.ndarray], float], None],
    planned_epochs: int = 5,
    max_examples: int | None = None,
    seed: int = 42,
) -> float:
    """Train; call `on_epoch(epoch, model, predict_texts, train_seconds)` after each epoch.

    Returns training examples per second (evaluation excluded).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    path = str(default_encoder_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = MeanPoolClassifier(AutoModel.from_pretrained(path, local_files_only=True), train_y.shape[1])
    ids = tokenizer(train_texts, truncation=True, max_length=64)["input_ids"]
    if max_examples:
        ids, train_y = ids[:max_examples], train_y[:max_examples]
    lengths = np.array([len(x) for x in ids])
    steps_per_epoch = math.ceil(len(ids) / 32)
    total = steps_per_epoch * planned_epochs
    optimizer = torch.optim.AdamW(
        [{"params": model.encoder.parameters(), "lr": 8e-5}, {"params": model.head.parameters(), "lr": 2e-3}],
        weight_decay=0.01,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    loss_fn = nn.BCEWithLogitsLoss()
    targets = torch.tensor(train_y, dtype=torch.float32)
    train_seconds, seen = 0.0, 0

    def predict_texts(texts: list[str]) -> np.ndarray:
        return predict(model, tokenizer(texts, truncation=True, max_length=64)["input_ids"])

    model.train()
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for idx in _batches(lengths, 32, rng):
            loss = loss_fn(model(*_pad(ids, idx)), targets[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            seen += len(idx)
        train_seconds += time.perf_counter() - started
        on_epoch(epoch, model, predict_texts, train_seconds)
    return seen / train_seconds
