"""GoEmotions benchmark: textheads against TF-IDF and a hand-written fine-tuning recipe.

Each part runs alone and writes benchmarks/results/goemotions-PART.json;
`--table` prints every saved result side by side. The whole takes hours on 2
CPU cores, so run the parts you need:

    python benchmarks/goemotions.py --part tfidf
    python benchmarks/goemotions.py --part frozen
    python benchmarks/goemotions.py --part finetune --epochs 3
    python benchmarks/goemotions.py --part plain --epochs 3
    python benchmarks/goemotions.py --part multihead
    python benchmarks/goemotions.py --part throughput
    python benchmarks/goemotions.py --table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, load_split, save, scores  # noqa: E402


def part_tfidf(args: argparse.Namespace) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    train_x, train_y, _ = load_split("train")
    dev_x, dev_y, _ = load_split("dev")
    test_x, test_y, _ = load_split("test")
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = OneVsRestClassifier(LogisticRegression(C=4, max_iter=1000), n_jobs=-1)
    model.fit(vectorizer.fit_transform(train_x), train_y)
    seconds = time.perf_counter() - started
    dev_p = model.predict_proba(vectorizer.transform(dev_x))
    test_p = model.predict_proba(vectorizer.transform(test_x))
    save("goemotions-tfidf", {"method": "TF-IDF 1-2-grams + one-vs-rest logistic regression (C 4)", "train_seconds": seconds, **scores(dev_y, dev_p, test_y, test_p)})


def part_plain(args: argparse.Namespace) -> None:
    from reference_loop import train

    train_x, train_y, _ = load_split("train")
    dev_x, dev_y, _ = load_split("dev")
    test_x, test_y, _ = load_split("test")
    epochs_out = []

    def on_epoch(epoch: int, model: object, predict: object, seconds: float) -> None:
        result = {"epoch": epoch, "train_seconds": seconds, **scores(dev_y, predict(dev_x), test_y, predict(test_x))}
        epochs_out.append(result)
        print(json.dumps(result), flush=True)

    started = time.perf_counter()
    rate = train(train_x, train_y, args.epochs, on_epoch)
    save(
        "goemotions-plain",
        {
            "method": "hand-written fine-tune (BASELINES.md recipe): BCE, mean pooling, lr 8e-5/2e-3, warm-up 6 %, decay planned over 5 epochs, batch 32, max length 64",
            "epochs": epochs_out,
            "examples_per_second": rate,
            "wall_seconds": time.perf_counter() - started,
            **{k: v for k, v in epochs_out[-1].items() if k != "epoch"},
        },
    )


PARTS = {"tfidf": part_tfidf, "plain": part_plain}


def print_table() -> None:
    rows = []
    for path in sorted(RESULTS.glob("goemotions-*.json")):
        result = json.loads(path.read_text())
        if "macro_f1@per_label" in result:
            rows.append(result)
    print(f"{'part':<26}{'@0.5':>8}{'@global':>9}{'@per-label':>12}{'micro@pl':>10}  time")
    for r in rows:
        seconds = r.get("wall_seconds", r.get("train_seconds", 0))
        print(f"{r['name']:<26}{r['macro_f1@0.5']:>8.3f}{r['macro_f1@global']:>9.3f}{r['macro_f1@per_label']:>12.3f}{r['micro_f1@per_label']:>10.3f}  {seconds:,.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=sorted(PARTS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.part:
        PARTS[args.part](args)
    if args.table or not args.part:
        print_table()


if __name__ == "__main__":
    main()
