"""Data and probabilities for the rare-label experiments of benchmarks/thresholds.py.

Reuters-21578 (training split only: our own train / validation / held-out rows,
iteratively stratified) and GoEmotions (its own train / dev / test). Probabilities
come from textheads with a frozen default encoder (`train: {freeze: encoder}`,
vectors from the embedding cache) or from TF-IDF + one-vs-rest logistic
regression; each model also gives out-of-fold probabilities on its training rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT, load_split

REUTERS = Path(os.environ.get("REUTERS_DIR", ROOT.parent / "shared" / "data" / "reuters"))
HELD_OUT = 0.25
"""Reuters: the share of the training file held out as our "test" rows."""
VALIDATION = 0.1
"""Reuters: the share of the rest used as validation rows (textheads' default split)."""


@dataclass
class Split:
    """Texts and 0/1 label matrices of one data set's train, validation and held-out rows."""

    name: str
    labels: list[str]
    rare: np.ndarray
    """Indices of the rarest labels (by training-file frequency)."""
    texts: dict[str, list[str]]
    y: dict[str, np.ndarray]


def load_reuters(seed: int) -> Split:
    path = REUTERS / "train.jsonl"
    if not path.is_file():
        raise SystemExit(f"Reuters not found at {REUTERS}; set REUTERS_DIR")
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    labels = (REUTERS / "labels_topics.txt").read_text().split()
    index = {label: i for i, label in enumerate(labels)}
    texts, rows = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        texts.append(record["text"])
        row = np.zeros(len(labels), dtype=np.int64)
        row[[index[t] for t in record["topics"]]] = 1
        rows.append(row)
    y = np.stack(rows)

    def split(rows: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        keep, out = next(splitter.split(np.zeros(len(rows)), y[rows]))
        return rows[np.sort(keep)], rows[np.sort(out)]

    rest, test = split(np.arange(len(y)), HELD_OUT)
    train, dev = split(rest, VALIDATION)
    parts = {"train": train, "dev": dev, "test": test}
    rare = np.argsort(y.sum(axis=0), kind="stable")[:30]
    return Split("reuters", labels, rare, {k: [texts[i] for i in v] for k, v in parts.items()}, {k: y[v] for k, v in parts.items()})


def load_goemotions() -> Split:
    texts, y, labels = {}, {}, []
    for split in ("train", "dev", "test"):
        texts[split], y[split], labels = load_split(split)
    rare = np.argsort(y["train"].sum(axis=0), kind="stable")[:7]
    return Split("goemotions", labels, rare, texts, y)


def folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """K iteratively stratified folds of the rows of `y` (each a sorted index array)."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    splitter = MultilabelStratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [np.sort(held) for _, held in splitter.split(np.zeros(len(y)), y)]


# -- textheads, frozen default encoder ----------------------------------------------


def frozen_probabilities(data: Split, head: dict[str, Any], *, seed: int, k: int, train: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """dev, test and out-of-fold train probabilities of `train: {freeze: encoder}` with `head`."""
    out: dict[str, np.ndarray] = {}
    clf = _fit_frozen(data, head, seed=seed, train_rows=np.arange(len(data.texts["train"])), train=train)
    out["dev_p"], out["test_p"] = (_proba(clf, data.texts[s]) for s in ("dev", "test"))
    oof = np.zeros(data.y["train"].shape)
    for held in folds(data.y["train"], k, seed) if k > 1 else []:
        fold_clf = _fit_frozen(data, head, seed=seed, train_rows=np.setdiff1d(np.arange(len(oof)), held), train=train)
        oof[held] = _proba(fold_clf, [data.texts["train"][i] for i in held])
    out["oof_p"] = oof
    return out


def _records(texts: list[str], y: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    return [{"text": t, "labels": [labels[j] for j in np.flatnonzero(row)]} for t, row in zip(texts, y, strict=True)]


def _fit_frozen(data: Split, head: dict[str, Any], *, seed: int, train_rows: np.ndarray, train: dict[str, Any] | None) -> Any:
    from textheads import TextClassifier

    clf = TextClassifier(
        heads={"labels": {"kind": "multilabel", "labels": data.labels, **head}},
        train={"freeze": "encoder", "seed": seed, **(train or {})},
        validation_split=0,
    )
    texts = [data.texts["train"][i] for i in train_rows]
    clf.fit(_records(texts, data.y["train"][train_rows], data.labels), _records(data.texts["dev"], data.y["dev"], data.labels), show_progress=False, echo=lambda _: None)
    return clf


def _proba(clf: Any, texts: list[str]) -> np.ndarray:
    """Probabilities from the cached pooled vectors (no second pass through the encoder)."""
    import torch

    from textheads.training.frozen import encode_with_cache

    vectors, _ = encode_with_cache(clf.model_, clf.tokenizer_, texts, cache_dir=None)
    clf.model_.eval()
    with torch.inference_mode():
        return clf.model_.to_predictions(clf.model_.forward_heads(torch.from_numpy(vectors)))["labels"].numpy()


# -- TF-IDF + one-vs-rest logistic regression ---------------------------------------


def tfidf_probabilities(data: Split, *, seed: int, k: int, class_weight: str | None = None) -> dict[str, np.ndarray]:
    """dev, test and out-of-fold train probabilities of TF-IDF 1-2-grams + one-vs-rest LR (C 4, liblinear)."""
    out: dict[str, np.ndarray] = {}
    model = _fit_tfidf(data.texts["train"], data.y["train"], class_weight)
    out["dev_p"], out["test_p"] = (model(data.texts[s]) for s in ("dev", "test"))
    oof = np.zeros(data.y["train"].shape)
    for held in folds(data.y["train"], k, seed) if k > 1 else []:
        rest = np.setdiff1d(np.arange(len(oof)), held)
        fold_model = _fit_tfidf([data.texts["train"][i] for i in rest], data.y["train"][rest], class_weight)
        oof[held] = fold_model([data.texts["train"][i] for i in held])
    out["oof_p"] = oof
    return out


def _fit_tfidf(texts: list[str], y: np.ndarray, class_weight: str | None) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x = vectorizer.fit_transform(texts)
    # One binary model per label; a label without positives in these rows predicts 0.
    models = [LogisticRegression(C=4, solver="liblinear", class_weight=class_weight).fit(x, y[:, j]) if 0 < y[:, j].sum() < len(y) else None for j in range(y.shape[1])]

    def predict(new: list[str]) -> np.ndarray:
        z = vectorizer.transform(new)
        return np.stack([m.predict_proba(z)[:, 1] if m is not None else np.zeros(len(new)) for m in models], axis=1)

    return predict
