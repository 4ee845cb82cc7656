"""int8 against fp32 on held-out texts: decision agreement and speed of each quantisation.

For one trained model: ONNX fp32; int8 with every matrix product of the encoder
quantised (`--force`, the recipe before the agreement check); and the int8 graph
that `textheads export --quantize int8` chooses at each `--min-agreement` (or its
refusal). Each is compared with the fp32 PyTorch model on `--texts` (held out:
not the calibration texts): per classification head, the share of texts whose
decisions are all equal and the share of single labels that are; the largest
probability difference; texts per second (best of two passes, batch 32).

    python benchmarks/quantize.py --model runs/goemotions-frozen --texts data/test.jsonl \\
        --calibration data/dev.jsonl --min-agreement 0.99 0.95 --name goemotions-frozen

Writes benchmarks/results/quantize-NAME.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save

from textheads import TextClassifier
from textheads.data.dataset import load_texts
from textheads.export import export_onnx, read_manifest
from textheads.export.agreement import compare_outputs
from textheads.export.quantize import QuantizationError


def speed(clf: TextClassifier, texts: list[str]) -> float:
    clf.predict_proba(texts[:64], batch_size=32)  # warm-up
    best = 0.0
    for _ in range(2):
        started = time.perf_counter()
        clf.predict_proba(texts, batch_size=32)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def agreement(reference: TextClassifier, candidate: TextClassifier, texts: list[str]) -> dict[str, dict[str, float]]:
    """Per head, as the export's own check measures it (`textheads.export.agreement`), on held-out texts."""
    report = compare_outputs(reference.heads_, reference.predict_proba(texts), candidate.predict_proba(texts))
    result: dict[str, dict[str, float]] = {}
    for name, head in report.items():
        if head.agreement is None:  # regression
            result[name] = {"max_abs_error": head.max_abs_error}
            continue
        texts_agree = head.same_label_sets if head.same_label_sets is not None else head.agreement
        result[name] = {"texts_agree": texts_agree, "labels_agree": head.agreement, "max_abs_diff": head.max_abs_diff}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True, help="held-out texts (the model's text column) to measure on")
    parser.add_argument("--calibration", type=Path, help="texts to choose the int8 graph on (default: the model's stored sample texts)")
    parser.add_argument("--min-agreement", type=float, nargs="+", default=[0.99])
    parser.add_argument("--name", default="model")
    args = parser.parse_args()

    reference = TextClassifier.load(args.model)
    texts = load_texts(args.texts, reference.config.data.text_columns)
    rows: dict[str, dict] = {"pytorch fp32": {"texts_per_second": speed(reference, texts)}}
    quiet = lambda _: None
    with tempfile.TemporaryDirectory() as tmp:
        runs: list[tuple[str, dict]] = [("onnx fp32", {}), ("int8, all products (--force)", {"quantize": "int8", "force": True, "min_agreement": 0.0})]
        runs += [(f"int8 at --min-agreement {bar}", {"quantize": "int8", "min_agreement": bar}) for bar in args.min_agreement]
        for i, (label, options) in enumerate(runs):
            started = time.perf_counter()
            try:
                folder = export_onnx(args.model, Path(tmp) / str(i), calibration=args.calibration if options else None, echo=quiet, **options)
            except QuantizationError:
                rows[label] = {"refused": True, "export_seconds": time.perf_counter() - started}
                continue
            row: dict = {"export_seconds": time.perf_counter() - started}
            if options:
                row["quantization"] = read_manifest(folder)["quantization"]
            candidate = TextClassifier.load(folder)
            row["heads"] = agreement(reference, candidate, texts)
            row["texts_per_second"] = speed(candidate, texts)
            rows[label] = row
    base = rows["pytorch fp32"]["texts_per_second"]
    save(f"quantize-{args.name}", {"model": str(args.model), "texts": len(texts), "rows": rows})
    print(f"\n{'':34}{'texts/s':>9}{'x fp32':>8}  per head: texts agreeing (labels agreeing)")
    for label, row in rows.items():
        if row.get("refused"):
            print(f"{label:34}{'refused: no int8 graph reaches the bar':>40}")
            continue
        share = f" [{row['quantization']['int8_weight_share']:.0%} of weights int8]" if "quantization" in row else ""
        heads = "  ".join(f"{name} {h['texts_agree']:.1%} ({h['labels_agree']:.2%})" for name, h in row.get("heads", {}).items() if "texts_agree" in h)
        print(f"{label:34}{row['texts_per_second']:>9.0f}{row['texts_per_second'] / base:>8.2f}  {heads}{share}")


if __name__ == "__main__":
    main()
