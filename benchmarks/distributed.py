"""Batch prediction on Spark `local[2]` and on a local Ray instance against in-process
`TextClassifier.predict_proba`, on the same GoEmotions test texts, one run:

    python benchmarks/distributed.py                      # trains a quick frozen model first
    python benchmarks/distributed.py --model DIR --texts 2000 --threads 1 --batch-size 64
    python benchmarks/distributed.py --split train --texts 20000   # start-up amortised over more rows

Without `--model`, a frozen-encoder model of the default encoder (one 28-label head) is
trained on 2,000 training texts into benchmarks/runs/distributed-frozen (its quality
does not matter here: every path runs the same encoder). Spark and Ray run 2 workers of
`--threads` PyTorch threads each; in-process prediction is measured with PyTorch's
default threads and with 1, and the better is the baseline.

In-process figures are the better of two passes after a warm-up; every other figure is texts
per second over the whole job (from the driver's `predict` call, which loads the model
once to check it, to the last row): "cold" includes starting the workers
and loading the model in each, "warm" (Spark only: it reuses its Python workers) runs
once more after that. Ray starts new actors for every dataset, so it is cold only; its
start-up alone (2 texts through the same job) is recorded beside it.
Writes benchmarks/results/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, require_goemotions, save

from textheads import TextClassifier


def records(split: str, limit: int) -> list[dict]:
    with (require_goemotions() / f"{split}.jsonl").open() as handle:
        rows = [json.loads(line) for line, _ in zip(handle, range(limit))]
    return [{"text": r["text"], "emotions": r["emotions"]} for r in rows]


def quick_model() -> Path:
    """A frozen-encoder GoEmotions model of the default encoder (about a minute on 2 cores)."""
    path = RESULTS.parent / "runs" / "distributed-frozen"
    if (path / "model.safetensors").is_file():
        return path
    shutil.rmtree(path, ignore_errors=True)
    labels = (require_goemotions() / "labels_emotions.txt").read_text().split()
    clf = TextClassifier({"emotions": {"kind": "multilabel", "labels": labels}}, max_length=64, train={"freeze": "encoder", "epochs": 8, "head_learning_rate": 1e-3, "batch_size": 256})
    clf.fit(records("train", 2000), records("dev", 500), show_progress=False)
    clf.save(path)
    return path


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def in_process(model: Path, texts: list[str], batch_size: int) -> dict:
    """Texts/s with PyTorch's default threads and with 1 thread (on a busy machine, 2
    threads on 2 cores can be the slower), each the better of two passes; the baseline is
    the best of them."""
    import torch

    clf = TextClassifier.load(model)
    clf.predict_proba(texts[:64], batch_size=batch_size)  # warm-up
    speeds, default = {}, torch.get_num_threads()
    for threads in (default, 1):
        torch.set_num_threads(threads)
        speeds[f"threads_{threads}"] = max(len(texts) / timed(lambda: clf.predict_proba(texts, batch_size=batch_size)) for _ in range(2))
    torch.set_num_threads(default)
    return {**speeds, "texts_per_second": max(speeds.values())}


def spark_speed(model: Path, texts: list[str], batch_size: int, threads: int) -> dict:
    from pyspark.sql import SparkSession

    from textheads.spark import predict

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        frame = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, text string").repartition(2).cache()
        frame.count()  # the input is ready before the clock starts

        def job() -> None:
            predict(frame, model, batch_size=batch_size, threads=threads).write.format("noop").mode("overwrite").save()

        cold = timed(job)
        warm = timed(job)
    finally:
        spark.stop()
    return {"cold_texts_per_second": len(texts) / cold, "warm_texts_per_second": len(texts) / warm}


def ray_speed(model: Path, texts: list[str], batch_size: int, threads: int, rows_per_call: int) -> dict:
    import ray

    from textheads.ray import predict

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:

        def job(some: list[str]) -> float:
            dataset = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(some)], override_num_blocks=8).materialize()
            return timed(lambda: predict(dataset, model, batch_size=batch_size, threads=threads, concurrency=2, rows_per_call=rows_per_call).materialize())

        start_up = job(texts[:2])
        cold = job(texts)
    finally:
        ray.shutdown()
    return {"cold_texts_per_second": len(texts) / cold, "start_up_seconds": start_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model directory or ONNX export (default: train a quick frozen one)")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"], help="GoEmotions split the texts come from (train: up to 43 k)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads in each of the 2 Spark / Ray workers")
    parser.add_argument("--rows-per-call", type=int, default=2048, help="Ray: rows per actor call (fewer, larger calls cost less overhead; keep several per actor so both stay busy)")
    args = parser.parse_args()
    model = args.model or quick_model()
    texts = [r["text"] for r in records(args.split, args.texts)]
    result = {"model": str(model), "split": args.split, "texts": len(texts), "batch_size": args.batch_size, "worker_threads": args.threads, "load_average": os.getloadavg()[0]}
    result["in_process"] = in_process(model, texts, args.batch_size)
    result["spark_local_2"] = spark_speed(model, texts, args.batch_size, args.threads)
    result["ray_2_actors"] = {**ray_speed(model, texts, args.batch_size, args.threads, args.rows_per_call), "rows_per_call": args.rows_per_call}
    base = result["in_process"]["texts_per_second"]
    result["ratios_to_in_process"] = {
        "spark_warm": result["spark_local_2"]["warm_texts_per_second"] / base,
        "spark_cold": result["spark_local_2"]["cold_texts_per_second"] / base,
        "ray_cold": result["ray_2_actors"]["cold_texts_per_second"] / base,
    }
    name = "distributed" + (f"-threads{args.threads}" if args.threads != 1 else "") + (f"-{args.split}-{len(texts)}" if args.split != "test" else "")
    save(name, result)


if __name__ == "__main__":
    main()
