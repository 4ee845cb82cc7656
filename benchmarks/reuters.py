"""Reuters-21578 (ModApte training split, 90 topics): long texts and rare labels.

The ModApte test split is held out (we are scored on it), so this script holds
out its own rows: the training file is split once, by iterative stratification
with a fixed seed, into fit (70 %), validation (10 %, for early stopping and
thresholds) and held-out (20 %, scored here and nowhere else used). Every
method sees the same three parts:

    python benchmarks/reuters.py --part tfidf
    python benchmarks/reuters.py --part truncate128 --max-time 30m
    python benchmarks/reuters.py --part truncate256 --max-time 30m
    python benchmarks/reuters.py --part head_tail --max-time 30m
    python benchmarks/reuters.py --part windows --max-time 30m
    python benchmarks/reuters.py --table

Each textheads part is `textheads train CONFIG` from the shell (as a user runs
it, under the same `train.max_time`), then the saved model predicts the
held-out rows at its stored thresholds. Figures: micro-F1 and macro-F1 over
the topics with held-out documents, macro-F1 over the 30 rarest topics of the
training file (those of them with held-out documents), training seconds,
held-out texts per second. Set REUTERS_DIR if the data is not at
../shared/data/reuters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, key_values, save

from textheads.decisions import multilabel_decisions
from textheads.thresholds import tune_per_label

REUTERS = Path(os.environ.get("REUTERS_DIR", ROOT.parent / "shared" / "data" / "reuters"))
WORK = ROOT / "benchmarks" / "runs" / "reuters"
SEED = 2
RAREST = 30

VARIANTS: dict[str, dict[str, Any]] = {
    "truncate128": {"max_length": 128},
    "truncate256": {"max_length": 256},
    "head_tail": {"max_length": 256, "long_text": "head_tail"},
    "windows": {"max_length": 128, "long_text": "windows"},
}


def _read() -> tuple[list[dict], list[str]]:
    if not (REUTERS / "train.jsonl").is_file():
        raise SystemExit(f"Reuters not found at {REUTERS}; set REUTERS_DIR")
    labels = (REUTERS / "labels_topics.txt").read_text().split()
    with (REUTERS / "train.jsonl").open() as handle:
        return [json.loads(line) for line in handle], labels


def _matrix(rows: list[dict], labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(rows), len(labels)), dtype=np.int64)
    for r, row in enumerate(rows):
        y[r, [index[t] for t in row["topics"]]] = 1
    return y


def splits() -> tuple[dict[str, list[dict]], list[str], np.ndarray]:
    """The fixed fit/validation/held-out parts (also written as JSONL under WORK), the
    topics, and the indices of the RAREST topics by training-file frequency."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    rows, labels = _read()
    y = _matrix(rows, labels)
    rest, heldout = next(MultilabelStratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=SEED).split(np.zeros(len(rows)), y))
    fit, validation = next(MultilabelStratifiedShuffleSplit(n_splits=1, test_size=0.125, random_state=SEED).split(np.zeros(len(rest)), y[rest]))
    parts = {
        "fit": [rows[i] for i in np.sort(rest[fit])],
        "validation": [rows[i] for i in np.sort(rest[validation])],
        "heldout": [rows[i] for i in np.sort(heldout)],
    }
    WORK.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        path = WORK / f"{name}.jsonl"
        if not path.is_file():
            path.write_text("".join(json.dumps({"text": r["text"], "topics": r["topics"]}) + "\n" for r in part))
    rarest = np.argsort(y.sum(axis=0), kind="stable")[:RAREST]
    return parts, labels, rarest


def scores(y_true: np.ndarray, decisions: np.ndarray, rarest: np.ndarray) -> dict[str, float]:
    """Micro-F1, macro-F1 over topics with held-out documents, macro-F1 over the rarest of those."""
    from sklearn.metrics import f1_score

    present = np.flatnonzero(y_true.sum(axis=0) > 0)
    rare = np.intersect1d(present, rarest)

    def f1(columns: np.ndarray | None, average: str) -> float:
        t, d = (y_true, decisions) if columns is None else (y_true[:, columns], decisions[:, columns])
        return float(f1_score(t, d, average=average, zero_division=0))

    return {
        "micro_f1": f1(None, "micro"),
        "macro_f1": f1(present, "macro"),
        "macro_f1_rarest": f1(rare, "macro"),
        "topics_scored": len(present),
        "rarest_scored": len(rare),
    }


def part_tfidf(args: argparse.Namespace) -> None:
    """TF-IDF 1–2-grams + one-vs-rest logistic regression, per-label thresholds tuned on validation."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    parts, labels, rarest = splits()
    x = {name: [r["text"] for r in part] for name, part in parts.items()}
    y = {name: _matrix(part, labels) for name, part in parts.items()}
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = OneVsRestClassifier(LogisticRegression(C=10, max_iter=1000), n_jobs=-1)
    # Topics without a fit document cannot be learnt; OneVsRest gives them a constant 0.
    model.fit(vectorizer.fit_transform(x["fit"]), y["fit"])
    validation_p = model.predict_proba(vectorizer.transform(x["validation"]))
    thresholds, _ = tune_per_label(y["validation"], validation_p)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    heldout_p = model.predict_proba(vectorizer.transform(x["heldout"]))
    predict_seconds = time.perf_counter() - started
    save(
        "reuters-tfidf",
        {
            "method": "TF-IDF 1-2-grams (min_df 2, sublinear tf) + one-vs-rest logistic regression (C 10), per-label thresholds tuned on validation",
            "train_seconds": train_seconds,
            "texts_per_second": len(x["heldout"]) / predict_seconds,
            "at_0.5": scores(y["heldout"], multilabel_decisions(heldout_p, 0.5), rarest),
            **scores(y["heldout"], multilabel_decisions(heldout_p, thresholds), rarest),
        },
    )


def part_textheads(variant: str, args: argparse.Namespace) -> None:
    """`textheads train` on fit/validation under `--max-time`, scored on the held-out rows."""
    from textheads import TextClassifier

    parts, labels, rarest = splits()
    name = f"reuters-{variant}" + (f"-{args.tag}" if args.tag else "")
    output = WORK / name
    config = {
        "model": VARIANTS[variant],
        "data": {"train": str(WORK / "fit.jsonl"), "validation": str(WORK / "validation.jsonl")},
        "heads": {"topics": {"kind": "multilabel", "labels_file": str(REUTERS / "labels_topics.txt")}},
        "train": {"max_time": args.max_time, "seed": SEED, **key_values(args.train)},
        "output_dir": str(output),
    }
    config_path = WORK / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    textheads = Path(sys.executable).with_name("textheads")
    started = time.perf_counter()
    subprocess.run([str(textheads), "train", str(config_path), "--overwrite"], check=True)
    train_seconds = time.perf_counter() - started

    clf = TextClassifier.load(output)
    texts = [r["text"] for r in parts["heldout"]]
    y = _matrix(parts["heldout"], labels)
    started = time.perf_counter()
    probabilities = clf.predict_proba(texts)["topics"]
    predict_seconds = time.perf_counter() - started
    order = [clf.heads_["topics"].labels.index(label) for label in labels]
    probabilities = probabilities[:, order]
    thresholds = np.array(clf.heads_["topics"].thresholds())[order]
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    steps = max((r.get("step", 0) for r in log), default=0)
    save(
        name,
        {
            "method": f"textheads {variant} ({VARIANTS[variant]}), train.max_time {args.max_time}",
            "config": config,
            "train_seconds": train_seconds,
            "optimizer_steps": steps,
            "texts_per_second": len(texts) / predict_seconds,
            "at_0.5": scores(y, multilabel_decisions(probabilities, 0.5), rarest),
            **scores(y, multilabel_decisions(probabilities, thresholds), rarest),
        },
    )


def print_table() -> None:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("reuters-*.json"))]
    if not results:
        raise SystemExit("no reuters results yet; run a --part first")
    base = next((r for r in results if r["name"] == "reuters-tfidf"), None)
    print(f"{'run':<28} {'micro-F1':>8} {'macro-F1':>8} {'rare-30':>8} {'@0.5 mi/ma':>13} {'train s':>8} {'texts/s':>8}  vs TF-IDF (macro)")
    for r in results:
        ratio = f"{r['macro_f1'] / base['macro_f1']:.2f}x" if base else "-"
        half = r["at_0.5"]
        print(
            f"{r['name']:<28} {r['micro_f1']:>8.3f} {r['macro_f1']:>8.3f} {r['macro_f1_rarest']:>8.3f} "
            f"{half['micro_f1']:>6.3f}/{half['macro_f1']:.3f} {r['train_seconds']:>8.0f} {r['texts_per_second']:>8.1f}  {ratio}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["tfidf", *VARIANTS])
    parser.add_argument("--max-time", default="30m", help="train.max_time of each textheads part")
    parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="extra train option")
    parser.add_argument("--tag", help="save under reuters-PART-TAG")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        print_table()
    elif args.part == "tfidf":
        part_tfidf(args)
    elif args.part:
        part_textheads(args.part, args)
    else:
        parser.error("give --part or --table")


if __name__ == "__main__":
    main()
