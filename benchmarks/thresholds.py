"""How much does the choice of thresholds matter? Ways of choosing them on dev, scored on test.

    python benchmarks/thresholds.py --model benchmarks/runs/goemotions-finetune [--model OTHER ...]

For each trained `emotions` model: test macro-F1 at the stored thresholds, at
0.5, at one global threshold, with per-label thresholds shrunk towards the
global one by the label's dev positives, chosen on a smoothed F1 curve, and
(an upper bound, not a result) chosen on test itself. With several models,
also their mean probability (an ensemble). Writes benchmarks/results/thresholds.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_split, save

from textheads.decisions import multilabel_decisions
from textheads.thresholds import GRID, f1_per_label, tune_global, tune_per_label


def _probabilities(model: Path, head: str) -> dict[str, np.ndarray]:
    from textheads import TextClassifier

    clf = TextClassifier.load(model)
    out = {"stored": np.array(clf.heads_[head].thresholds())}
    for split in ("dev", "test"):
        texts, y, _ = load_split(split)
        out[f"{split}_p"], out[f"{split}_y"] = clf.predict_proba(texts, batch_size=32)[head], y
    return out


def _smoothed_choice(scores: np.ndarray, grid: np.ndarray, window: int) -> np.ndarray:
    kernel = np.ones(window) / window
    padded = np.pad(scores, ((window // 2, window // 2), (0, 0)), mode="edge")
    smooth = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(scores.shape[1])], axis=1)
    return grid[np.argmax(smooth, axis=0)]


def compare(p: dict[str, np.ndarray]) -> dict[str, float]:
    """Test macro-F1 of each way of choosing thresholds."""
    from sklearn.metrics import f1_score

    def test_f1(thresholds: float | np.ndarray) -> float:
        return round(float(f1_score(p["test_y"], multilabel_decisions(p["test_p"], thresholds), average="macro", zero_division=0)), 4)

    dev_y, dev_p = p["dev_y"], p["dev_p"]
    per_label, _ = tune_per_label(dev_y, dev_p)
    global_ = tune_global(dev_y, dev_p)
    positives = dev_y.sum(axis=0)
    result = {"stored": test_f1(p["stored"]), "0.5": test_f1(0.5), "global": test_f1(global_), "per_label": test_f1(per_label)}
    for k in (10, 50, 200):
        weight = positives / (positives + k)
        result[f"shrunk_k{k}"] = test_f1(weight * per_label + (1 - weight) * global_)
    scores = f1_per_label(dev_y, dev_p, GRID)
    for window in (3, 9):
        result[f"smoothed_{window}"] = test_f1(_smoothed_choice(scores, GRID, window))
    result["chosen_on_test_upper_bound"] = test_f1(GRID[np.argmax(f1_per_label(p["test_y"], p["test_p"], GRID), axis=0)])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--head", default="emotions")
    args = parser.parse_args()

    probabilities = {model.name: _probabilities(model, args.head) for model in args.model}
    results = {name: compare(p) for name, p in probabilities.items()}
    if len(probabilities) > 1:
        first = next(iter(probabilities.values()))
        mean = {key: np.mean([p[key] for p in probabilities.values()], axis=0) for key in ("dev_p", "test_p")}
        ensemble = {**first, **mean}
        ensemble["stored"], _ = tune_per_label(ensemble["dev_y"], ensemble["dev_p"])
        results["ensemble"] = compare(ensemble)
    save("thresholds", {"head": args.head, "models": [str(m) for m in args.model], "test_macro_f1": results})
    names = list(results)
    print(f"{'thresholds chosen':<30}" + "".join(f"{n[-24:]:>26}" for n in names))
    for key in results[names[0]]:
        print(f"{key:<30}" + "".join(f"{results[n][key]:>26.4f}" for n in names))


if __name__ == "__main__":
    main()
