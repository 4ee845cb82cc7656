"""How to combine a long document's windows into one answer: pool the windows' vectors
(mean or max) before the head, or combine the head's logits over the windows (mean or max).

Frozen default encoder (all-MiniLM-L6-v2), windows of 128 tokens overlapping by 32, at
most 8 per document; an MLP head (one hidden layer of 256) trained on each combination,
with truncation (the first window alone) for reference. Reuters-21578 training split
only: rows held out from it for validation (never the test split).

    PYTHONPATH=src python benchmarks/window_combination.py [--train 2400] [--validation 800] [--vectors /tmp/windows.npz]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from textheads.encoder import load_encoder, pool
from textheads.inference.windows import LongText, special_frame, window_rows

DATA = "/work/shared/data/reuters/train.jsonl"


def encode_windows(texts: list[str], max_length: int, long_text: LongText) -> tuple[np.ndarray, np.ndarray]:
    """(window vectors, document index of each window)."""
    encoder, tokenizer = load_encoder("default")
    encoder.eval()
    content = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    frame = special_frame(tokenizer)
    rows, documents = [], []
    for doc, ids in enumerate(content):
        windows, _ = window_rows(ids, max_length - frame.size, long_text)
        for window in windows:
            rows.append(frame.wrap(window))
            documents.append(doc)
    order = np.argsort([-len(r) for r in rows], kind="stable")
    vectors = np.zeros((len(rows), encoder.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            width = max(len(rows[i]) for i in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(batch):
                ids[r, : len(rows[i])] = torch.tensor(rows[i])
                mask[r, : len(rows[i])] = 1
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            vectors[batch] = pool(hidden, mask, "mean").numpy()
    return vectors, np.asarray(documents)


def combine(values: torch.Tensor, documents: torch.Tensor, n: int, how: str) -> torch.Tensor:
    if how == "mean":
        out = torch.zeros((n, values.shape[1]), dtype=values.dtype).index_add_(0, documents, values)
        return out / torch.bincount(documents, minlength=n).clamp(min=1).unsqueeze(1)
    return torch.full((n, values.shape[1]), float("-inf")).index_reduce_(0, documents, values, "amax")


def train_and_score(x: np.ndarray, docs: np.ndarray, y: np.ndarray, train: np.ndarray, valid: np.ndarray, where: str, how: str, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    xs = torch.from_numpy(x)
    mean, std = xs.mean(0), xs.std(0).clamp(min=1e-6)
    xs = (xs - mean) / std
    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(), torch.nn.Dropout(0.1), torch.nn.Linear(256, y.shape[1]))
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    ys = torch.from_numpy(y)

    starts = np.searchsorted(docs, np.arange(len(y) + 1))  # windows of document d: starts[d]:starts[d+1]

    def logits(rows: np.ndarray) -> torch.Tensor:
        # Windows of documents `rows`, renumbered 0..len(rows)-1.
        keep = np.concatenate([np.arange(starts[d], starts[d + 1]) for d in rows])
        index = torch.from_numpy(np.repeat(np.arange(len(rows)), starts[rows + 1] - starts[rows]))
        values = xs[keep]
        if where == "vectors":
            return head(combine(values, index, len(rows), how))
        return combine(head(values), index, len(rows), how)

    rng = np.random.default_rng(seed)
    for _ in range(30):
        head.train()
        order = rng.permutation(train)
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(rows), ys[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.eval()
    with torch.no_grad():
        predicted = (torch.sigmoid(logits(valid)) >= 0.5).numpy()
    truth = y[valid]
    return {"micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)), "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=2400)
    parser.add_argument("--validation", type=int, default=800)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--vectors", help="an .npz file (outside the repository) to keep the window vectors in between runs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with open(DATA, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    rng = np.random.default_rng(0)
    picked = rng.permutation(len(rows))[: args.train + args.validation]
    rows = [rows[i] for i in picked]
    topics = sorted({t for r in rows for t in r["topics"]})
    y = np.array([[t in r["topics"] for t in topics] for r in rows], dtype=np.float32)
    started = time.monotonic()
    if args.vectors and Path(args.vectors).exists():
        saved = np.load(args.vectors)
        x, docs = saved["x"], saved["docs"]
    else:
        x, docs = encode_windows([r["text"] for r in rows], 128, LongText("windows", window_stride=32, max_windows=8))
        if args.vectors:
            np.savez(args.vectors, x=x, docs=docs)
    print(f"{len(rows)} documents, {len(x)} windows, encoded in {time.monotonic() - started:.0f} s")
    train, valid = np.arange(args.train), np.arange(args.train, len(rows))
    first = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])  # each document's first window = truncation
    variants = {"truncate (first window)": ("first", "mean"), "windows: mean of vectors": ("vectors", "mean"), "windows: max of vectors": ("vectors", "max"), "windows: mean of logits": ("logits", "mean"), "windows: max of logits": ("logits", "max")}
    for name, (where, how) in variants.items():
        scores = []
        for seed in range(args.seeds):
            if where == "first":
                scores.append(train_and_score(x[first], docs[first], y, train, valid, "vectors", "mean", seed))
            else:
                scores.append(train_and_score(x, docs, y, train, valid, where, how, seed))
        micro = np.mean([s["micro_f1"] for s in scores])
        macro = np.mean([s["macro_f1"] for s in scores])
        print(f"{name:28s} micro-F1 {micro:.4f}  macro-F1 {macro:.4f}  ({args.seeds} seeds)", flush=True)


if __name__ == "__main__":
    main()
