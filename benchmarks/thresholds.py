"""How much does the choice of thresholds matter? Ways of choosing them on dev, scored on test.

    python benchmarks/thresholds.py --model benchmarks/runs/goemotions-finetune [--model OTHER ...]

For each trained `emotions` model: test macro-F1 at the stored thresholds, at
0.5, at one global threshold, with per-label thresholds shrunk towards the
global one by the label's dev positives, chosen on a smoothed F1 curve, and
(an upper bound, not a result) chosen on test itself. With several models,
also their mean probability (an ensemble). Writes benchmarks/results/thresholds.json.

    python benchmarks/thresholds.py --rare [--data reuters goemotions] [--family frozen tfidf] [--seeds 1 2 3] [--losses bce asl]

Rare labels (issue 16): on Reuters (training file only: own validation and
held-out rows, iteratively stratified) and GoEmotions (its own dev and test),
each way of choosing thresholds for labels with few validation positives
(today's global fallback, shrinkage towards the
global threshold, ties to the lowest threshold, thresholds from out-of-fold
predictions on the training rows, 0.5; GoEmotions also with a validation set
a tenth of its dev split, 10 draws), and each imbalance
tool against the default loss, scored on the held-out rows: micro-F1, macro-F1,
and macro-F1 over the rarest labels (Reuters' 30, GoEmotions' 7). Models: the
frozen default encoder (`train: {freeze: encoder}`, probabilities from the
embedding cache) and TF-IDF + logistic regression. Probabilities are kept under
benchmarks/cache/rare/, so a rerun only scores. Writes benchmarks/results/thresholds-rare.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_split, save

from textheads.decisions import multilabel_decisions
from textheads.thresholds import GRID, _nearest_half_of_best, f1_per_label, tune_global, tune_per_label


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


RULES_K = (2, 5, 10, 20, 50)
"""Shrinkage strengths tried: a label with n validation positives keeps n / (n + k) of its own threshold."""
LOSSES = {
    "bce": {},
    "pos_weight": {"pos_weight": "auto"},
    "asl": {"loss": "asl"},
    "focal": {"loss": "focal"},
}
"""The imbalance tools measured against the default loss (frozen encoder, same budget)."""
DEFAULT_FOLDS = {"reuters/frozen": 5, "reuters/tfidf": 5, "goemotions/frozen": 1, "goemotions/tfidf": 1}
"""Folds of the out-of-fold predictions (1: none): none on GoEmotions (43k rows), to keep a run
affordable on 2 shared cores."""


def threshold_rules(dev_y: np.ndarray, dev_p: np.ndarray, oof_y: np.ndarray, oof_p: np.ndarray) -> dict[str, np.ndarray | float]:
    """Each candidate way of choosing per-label thresholds from validation (and out-of-fold) predictions."""
    global_ = tune_global(dev_y, dev_p)
    own, _ = tune_per_label(dev_y, dev_p, min_positives=1)
    positives = dev_y.sum(axis=0)
    today, tuned = tune_per_label(dev_y, dev_p)
    rules: dict[str, np.ndarray | float] = {"today": today, "0.5": 0.5, "global": global_, "per_label_always": own}
    scores = f1_per_label(dev_y, dev_p, GRID)
    raw = GRID[[_nearest_half_of_best(scores[:, j], GRID) for j in range(scores.shape[1])]]  # without the 0.5 guard
    lowest = GRID[np.argmax(scores >= scores.max(axis=0) - 1e-12, axis=0)]  # ties to the lowest threshold
    for k in (0, *RULES_K):
        weight = positives / (positives + k) if k else (positives > 0).astype(float)
        rules[f"shrunk_k{k}"] = weight * own + (1 - weight) * global_
        rules[f"shrunk_unguarded_k{k}"] = weight * raw + (1 - weight) * global_
        rules[f"lowest_ties_k{k}"] = weight * lowest + (1 - weight) * global_
        rules[f"few_lowest_ties_k{k}"] = np.where(tuned, today, weight * lowest + (1 - weight) * global_)
    if oof_p.any():
        oof, _ = tune_per_label(oof_y, oof_p)
        rules["oof"] = oof
        rules["oof_when_few"] = np.where(tuned, today, oof)
        rules["dev_plus_oof"], _ = tune_per_label(np.concatenate([dev_y, oof_y]), np.concatenate([dev_p, oof_p]))
        for k in (10, 20):
            weight = positives / (positives + k)
            rules[f"shrunk_to_oof_k{k}"] = weight * own + (1 - weight) * oof
    return rules


def held_out_scores(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray | float, rare: np.ndarray) -> dict[str, float]:
    """micro-F1, macro-F1 and rare macro-F1 on held-out rows; macro over the labels with a held-out positive."""
    from sklearn.metrics import f1_score

    predicted = multilabel_decisions(p, thresholds).astype(int)
    present = np.flatnonzero(y.sum(axis=0) > 0)
    rare_present = np.intersect1d(rare, present)

    def f1(average: str, labels: np.ndarray | None = None) -> float:
        return round(float(f1_score(y, predicted, average=average, labels=labels, zero_division=0)), 4)

    return {"micro_f1": f1("micro"), "macro_f1": f1("macro", present), "rare_macro_f1": f1("macro", rare_present)}


def _probabilities_cached(data: object, family: str, loss: str, seed: int, folds: int) -> dict[str, np.ndarray]:
    from rare_data import frozen_probabilities, tfidf_probabilities

    path = Path(__file__).resolve().parent / "cache" / "rare" / f"{data.name}-{family}-{loss}-seed{seed}-k{folds}.npz"  # type: ignore[attr-defined]
    if path.is_file():
        return dict(np.load(path))
    if family == "tfidf":
        out = tfidf_probabilities(data, seed=seed, k=folds, class_weight="balanced" if loss == "pos_weight" else None)  # type: ignore[arg-type]
    else:
        out = frozen_probabilities(data, LOSSES[loss], seed=seed, k=folds)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def rare(args: argparse.Namespace) -> None:
    """The rare-label experiments: threshold rules, then losses, per data set and model family."""
    from rare_data import load_goemotions, load_reuters

    results: dict[str, dict] = {}
    for name in args.data:
        for seed in args.seeds if name == "reuters" else args.seeds[:1]:
            data = load_reuters(seed) if name == "reuters" else load_goemotions()
            for family in args.family:
                losses = ["bce"] + ([loss for loss in args.losses if loss != "bce"] if family == "frozen" else (["pos_weight"] if "pos_weight" in args.losses else []))
                for loss in losses:
                    started = time.perf_counter()
                    folds = args.folds or DEFAULT_FOLDS[f"{name}/{family}"]
                    p = _probabilities_cached(data, family, loss, seed, folds if loss == "bce" else 1)
                    rules = threshold_rules(data.y["dev"], p["dev_p"], data.y["train"], p["oof_p"])
                    key = f"{name}/{family}/{loss}/seed{seed}"
                    results[key] = {rule: held_out_scores(data.y["test"], p["test_p"], t, data.rare) for rule, t in rules.items()}
                    if name == "goemotions" and loss == "bce":
                        results.update(_small_validation(data, p, family, seed))
                    few = int((data.y["dev"].sum(axis=0) < 5).sum())
                    print(f"{key}: {few} labels under 5 validation positives ({time.perf_counter() - started:.0f} s)", flush=True)
    save("thresholds-rare", {"command": "python benchmarks/thresholds.py --rare " + " ".join(sys.argv[2:]), "folds": args.folds or DEFAULT_FOLDS, "held_out": results, "mean": _means(results)})
    _print_table(_means(results))


SMALL_VALIDATION = (0.1, 10)
"""GoEmotions with a validation set a tenth of its dev split (10 draws): its rarer labels
then have the handful of validation positives Reuters' have, the case the rules are for."""


def _small_validation(data: object, p: dict[str, np.ndarray], family: str, seed: int) -> dict[str, dict]:
    fraction, draws = SMALL_VALIDATION
    y = data.y  # type: ignore[attr-defined]
    out = {}
    for draw in range(draws):
        rows = np.sort(np.random.default_rng(draw).choice(len(y["dev"]), round(fraction * len(y["dev"])), replace=False))
        rules = threshold_rules(y["dev"][rows], p["dev_p"][rows], y["train"], np.zeros_like(p["oof_p"]))
        out[f"goemotions-dev10%/{family}/bce/seed{seed}.{draw}"] = {rule: held_out_scores(y["test"], p["test_p"], t, data.rare) for rule, t in rules.items()}  # type: ignore[attr-defined]
    return out


def _means(results: dict[str, dict]) -> dict[str, dict]:
    """Each (data set, family, loss) averaged over seeds."""
    groups: dict[str, list[dict]] = {}
    for key, value in results.items():
        groups.setdefault(key.rsplit("/", 1)[0], []).append(value)  # seeds and draws
    return {
        group: {rule: {m: round(float(np.mean([run[rule][m] for run in runs])), 4) for m in runs[0][rule]} for rule in runs[0]}
        for group, runs in groups.items()
    }


def _print_table(means: dict[str, dict]) -> None:
    for group, rules in means.items():
        print(f"\n{group}  (micro / macro / rare macro)")
        for rule, m in rules.items():
            print(f"  {rule:<20} {m['micro_f1']:.4f}  {m['macro_f1']:.4f}  {m['rare_macro_f1']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--head", default="emotions")
    parser.add_argument("--rare", action="store_true", help="the rare-label experiments (issue 16)")
    parser.add_argument("--data", nargs="+", default=["reuters", "goemotions"], choices=["reuters", "goemotions"])
    parser.add_argument("--family", nargs="+", default=["frozen", "tfidf"], choices=["frozen", "tfidf"])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1], help="Reuters splits (GoEmotions: the first only)")
    parser.add_argument("--folds", type=int, help="folds of the out-of-fold predictions (default: Reuters 5, GoEmotions 3)")
    args = parser.parse_args()
    if args.rare:
        rare(args)
        return
    if not args.model:
        parser.error("give --model (stored-model comparison) or --rare")

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
