"""Shared pieces of the benchmark scripts: GoEmotions loading, scoring, result files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from textheads.decisions import multilabel_decisions
from textheads.thresholds import tune_global, tune_per_label

ROOT = Path(__file__).resolve().parents[1]
GOEMOTIONS = Path(os.environ.get("GOEMOTIONS_DIR", ROOT.parent / "shared" / "data" / "goemotions"))
RESULTS = ROOT / "benchmarks" / "results"


def require_goemotions() -> Path:
    if not (GOEMOTIONS / "train.jsonl").is_file():
        raise SystemExit(f"GoEmotions not found at {GOEMOTIONS}; set GOEMOTIONS_DIR")
    return GOEMOTIONS


def load_split(split: str, taxonomy: str = "emotions") -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, a (n, L) 0/1 matrix and the label names of one split."""
    folder = require_goemotions()
    labels = (folder / f"labels_{taxonomy}.txt").read_text().split()
    index = {label: i for i, label in enumerate(labels)}
    texts, rows = [], []
    with (folder / f"{split}.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            texts.append(record["text"])
            row = np.zeros(len(labels), dtype=np.int64)
            row[[index[label] for label in record[taxonomy]]] = 1
            rows.append(row)
    return texts, np.stack(rows), labels


def scores(dev_true: np.ndarray, dev_prob: np.ndarray, test_true: np.ndarray, test_prob: np.ndarray) -> dict[str, float]:
    """Test macro/micro-F1 at 0.5, at a global threshold and at per-label thresholds tuned on dev."""
    glob = tune_global(dev_true, dev_prob)
    per_label, _ = tune_per_label(dev_true, dev_prob)

    def f1(threshold: Any, average: str) -> float:
        return float(f1_score(test_true, multilabel_decisions(test_prob, threshold).astype(int), average=average, zero_division=0))

    return {
        "macro_f1@0.5": f1(0.5, "macro"),
        "macro_f1@global": f1(glob, "macro"),
        "macro_f1@per_label": f1(per_label, "macro"),
        "micro_f1@0.5": f1(0.5, "micro"),
        "micro_f1@per_label": f1(per_label, "micro"),
        "global_threshold": glob,
    }


def machine() -> str:
    import torch

    return f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"name": name, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), **result}
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return path


def key_values(pairs: list[str]) -> dict:
    """`key=value` pairs from the command line, values parsed as YAML (numbers, lists, words)."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options
