"""Peak memory of `textheads predict --input FILE --output OUT.jsonl` at 10 k and 1 M rows.

Each run is its own process; its peak resident memory (max RSS, from `os.wait4`) is
compared across input sizes: a run that holds its input (or its output) grows with it,
a streaming one does not (target: 1 M rows within 1.2x of 10 k rows).

The model is a tiny random BERT (2 layers, width 32, a fast tokenizer) with linear
heads, trained for a few steps and saved as a model directory, so that a million rows finish in minutes on
2 CPU cores; the encoder's size adds the same to every run, whatever the input size.

    python benchmarks/predict_memory.py                      # 10 k and 1 M rows
    python benchmarks/predict_memory.py --rows 10000 100000  # quicker

Writes benchmarks/results/predict-memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save

WORDS = ["python", "code", "bug", "test", "oven", "pasta", "salt", "soup", "sleep", "run", "water", "doctor", "the", "a", "is", "very"]


def tiny_model(folder: Path) -> Path:
    """Train a tiny random BERT with two heads for a few steps; returns its model directory."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from textheads import TextClassifier

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"0123456789", *(f"##{d}" for d in "0123456789")]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    encoder = folder / "encoder"
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(encoder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(encoder)
    rows = [{"text": text, "topics": [WORDS[i % 4], WORDS[4 + i % 3]], "level": ["low", "mid", "high"][i % 3]} for i, text in enumerate(texts(60))]
    clf = TextClassifier(
        # Linear heads: the default convolutional ones cost more than this encoder.
        heads={"topics": {"kind": "multilabel", "conv_kernel_sizes": []}, "level": {"kind": "multiclass", "conv_kernel_sizes": []}},
        encoder=str(encoder),
        max_length=32,
        validation_split=0,
        train={"epochs": 1, "batch_size": 16},
    )
    clf.fit(rows, show_progress=False, echo=lambda *_: None)
    clf.save(folder / "model")
    return folder / "model"


def texts(n: int) -> list[str]:
    return [" ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 3 + i % 7)) + f" {i}" for i in range(n)]


def write_input(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, rows, 100_000):  # the benchmark itself holds no more than this
            handle.write("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts(min(100_000, rows - start)), start)))
    return path


def measure(model: Path, source: Path, output: Path, batch_size: int) -> dict[str, float]:
    """Run the command as a user does; its own peak RSS (wait4 reports it per child)."""
    command = [sys.executable, "-m", "textheads", "predict", str(model), "--input", str(source), "--output", str(output), "-q", "--batch-size", str(batch_size)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed ({os.waitstatus_to_exitcode(status)})")
    rows = sum(1 for _ in output.open(encoding="utf-8"))
    return {"rows": rows, "max_rss_mib": round(usage.ru_maxrss / 1024, 1), "seconds": round(seconds, 1), "rows_per_second": round(rows / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="textheads-predict-memory-") as tmp:
        folder = Path(tmp)
        model = tiny_model(folder)
        runs = []
        for rows in args.rows:
            source = write_input(folder / f"texts-{rows}.jsonl", rows)
            runs.append({"input_mib": round(source.stat().st_size / 2**20, 1), **measure(model, source, folder / f"out-{rows}.jsonl", args.batch_size)})
            print(f"{rows:>9,} rows: max RSS {runs[-1]['max_rss_mib']} MiB, {runs[-1]['rows_per_second']:,} rows/s", flush=True)
            source.unlink()
            (folder / f"out-{rows}.jsonl").unlink()
    ratio = runs[-1]["max_rss_mib"] / runs[0]["max_rss_mib"]
    print(f"peak memory, {args.rows[-1]:,} rows vs {args.rows[0]:,}: {ratio:.3f}x (target: within 1.2x)")
    save("predict-memory", {"command": " ".join(sys.argv), "model": "tiny random BERT (2 layers, width 32), linear heads", "batch_size": args.batch_size, "runs": runs, "ratio": round(ratio, 3)})


if __name__ == "__main__":
    main()
