"""The README's screenshots of the evaluation report, on the advice example.

Trains the advice example (the demo's config; `--set KEY=VALUE` overrides it, e.g.
`--set train.freeze=encoder` for a quick run), writes `evaluate --report` on its
test file, and saves two 1280 x 900 views of the page, opened offline in headless
Chromium, to docs/images/:

    python benchmarks/report_screenshot.py

Or views of a report written already, each PNG scrolled to the element a CSS
selector names (how the README's GoEmotions views were taken):

    python benchmarks/report_screenshot.py --page report.html \
        --shot 'docs/images/goemotions-pr.png=[data-chart="emotions.precision_recall"]'
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the Chromium driver the tests use

from browser import CHROMIUM, capture

EXAMPLE = ROOT / "src" / "textheads" / "examples" / "advice"
IMAGES = ROOT / "docs" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key of the example's config")
    parser.add_argument("--keep", type=Path, help="also keep the report here")
    parser.add_argument("--page", type=Path, help="take the views of this report instead of training the example")
    parser.add_argument("--shot", action="append", default=[], metavar="PNG=SELECTOR", help="with --page: a view to save")
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    if args.page is not None:
        shots = {Path(png): selector or None for png, _, selector in (shot.partition("=") for shot in args.shot)}
        capture(args.page, shots)
        for png in shots:
            print(f"wrote {png}")
        return
    from textheads import TextClassifier, load_config

    keep = args.keep.resolve() if args.keep else None  # before the change of folder
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # The page names the model and data as a user who ran the demo would: runs/advice, examples/advice.
        os.chdir(tmp)
        Path("examples").mkdir()
        Path("examples/advice").symlink_to(EXAMPLE)
        config = load_config(EXAMPLE / "config.yaml", ["output_dir=runs/advice", *args.set])
        TextClassifier.from_config(config).fit(show_progress=False)
        print(f"trained in {time.perf_counter() - started:.0f} s")
        report = keep or Path(tmp) / "report.html"
        TextClassifier.load("runs/advice").evaluate("examples/advice/test.jsonl", report=report)
        IMAGES.mkdir(parents=True, exist_ok=True)
        shots = {IMAGES / "report-top.png": None, IMAGES / "report-multilabel.png": '[data-section="head-advice"]'}
        capture(report, shots)
    for png in shots:
        print(f"wrote {png.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
