"""Seconds of one textheads training run on the first N GoEmotions training texts, printed
as one JSON line: what `goemotions.py --part throughput` runs, once per precision and per
checkout (whichever `textheads` is first on the path), each in a fresh process.

    python benchmarks/loop_seconds.py --examples 2560 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

# Not benchmarks/common.py: it imports today's textheads, and this script also runs older checkouts.
GOEMOTIONS = Path(os.environ.get("GOEMOTIONS_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2560)
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()

    import textheads
    from textheads import TextClassifier

    labels = (GOEMOTIONS / "labels_emotions.txt").read_text().split()
    with (GOEMOTIONS / "train.jsonl").open(encoding="utf-8") as handle:
        records = [{"text": r["text"], "emotions": r["emotions"]} for r in map(json.loads, handle)][: args.examples]
    train = {"epochs": 1, "batch_size": 32, "precision": args.precision}
    clf = TextClassifier({"emotions": {"kind": "multilabel", "labels": labels}}, max_length=64, validation_split=0, train=train)
    started = time.perf_counter()
    clf.fit(records, show_progress=False, echo=lambda _: None)
    fit_seconds = time.perf_counter() - started
    print(json.dumps({"textheads": textheads.__file__, "precision": args.precision, "fit_seconds": fit_seconds, "loop_seconds": clf.train_result_.train_seconds}))


if __name__ == "__main__":
    main()
