"""GPU benchmark: train, predict, export and serve on a CUDA device, beside the CPU.

One prepared run for a machine with a CUDA GPU (never part of CI): it trains
the advice example and one GoEmotions epoch on the GPU (bf16 or fp16
autocast), then measures texts per second of prediction in fp32 / fp16 / bf16
(and how often their decisions agree with fp32), of the ONNX export on ONNX
Runtime's CUDA execution provider when onnxruntime-gpu is installed, and of
the HTTP service; each beside the same measurement on the CPU, on fewer
texts. Sized to finish within about 8 minutes on one H200-class GPU.

    python benchmarks/gpu.py --check            # only say whether a CUDA device is here
    python benchmarks/gpu.py [--goemotions DIR] [--train-precision bf16|fp16]

Writes benchmarks/results/gpu.json. Without a CUDA device it says so and exits 0,
measuring nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the working tree's textheads, also where it is not installed
sys.path.insert(0, str(ROOT / "benchmarks"))

ADVICE = ROOT / "src" / "textheads" / "examples" / "advice"
PRECISIONS = ("fp32", "fp16", "bf16")


def cuda_report() -> tuple[bool, str]:
    """(a CUDA device is usable, one line saying what is here)."""
    import torch

    try:
        import onnxruntime

        providers = ", ".join(onnxruntime.get_available_providers())
    except ImportError:
        providers = "onnxruntime not installed"
    if not torch.cuda.is_available():
        why = "this PyTorch is built without CUDA" if torch.version.cuda is None else "PyTorch finds no CUDA GPU"
        return False, f"No CUDA device: {why} (torch {torch.__version__}; ONNX Runtime providers: {providers})."
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return True, f"CUDA: {names} (torch {torch.__version__}, CUDA {torch.version.cuda}; ONNX Runtime providers: {providers})."


def per_second(n: int, work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return round(n / (time.perf_counter() - started), 1)


def train_advice(output: Path, precision: str) -> dict[str, Any]:
    from textheads import TextClassifier
    from textheads.config import load_config

    config = load_config(ADVICE / "config.yaml", ["train.device=cuda", f"train.precision={precision}", f"output_dir={output}"])
    started = time.perf_counter()
    clf = TextClassifier.from_config(config).fit(show_progress=False, echo=lambda _: None)
    seconds = time.perf_counter() - started
    result = clf.train_result_
    assert result is not None
    rows = sum(1 for _ in (ADVICE / "train.jsonl").open())
    epochs = config.train.epochs or 0
    return {"precision": precision, "fit_seconds": round(seconds, 1), "train_rows": rows, "epochs": epochs, "best_metric": result.best_metric, "steps": result.global_step, "test": _headline(clf.evaluate(ADVICE / "test.jsonl"))}


def train_goemotions(folder: Path, output: Path, precision: str, rows: int | None) -> dict[str, Any]:
    from textheads import TextClassifier
    from textheads.config import build_config

    train = folder / "train.jsonl"
    if rows:
        train = output.parent / "goemotions-train.jsonl"
        with (folder / "train.jsonl").open() as source, train.open("w") as target:
            for _, line in zip(range(rows), source):
                target.write(line)
    raw = {
        "model": {"max_length": 64},
        "data": {"train": str(train), "validation": str(folder / "dev.jsonl")},
        "heads": {"emotions": {"kind": "multilabel", "labels_file": str(folder / "labels_emotions.txt")}},
        "train": {"epochs": 1, "batch_size": 32, "device": "cuda", "precision": precision},
        "output_dir": str(output),
    }
    n = sum(1 for _ in train.open())
    started = time.perf_counter()
    clf = TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    seconds = time.perf_counter() - started
    return {"precision": precision, "train_rows": n, "fit_seconds": round(seconds, 1), "fit_examples_per_second": round(n / seconds, 1), "test": _headline(clf.evaluate(folder / "test.jsonl"))}


def _headline(metrics: dict[str, Any]) -> dict[str, float]:
    from textheads.evaluation import summary

    return summary(metrics)


def predict_rates(model: Path, texts: list[str], cpu_texts: int) -> dict[str, Any]:
    """Texts per second of `predict_proba` on the GPU in each precision and on the CPU in
    fp32, and the share of decisions in fp16 / bf16 that agree with fp32 on the GPU."""
    from textheads import TextClassifier
    from textheads.export.agreement import compare_outputs, lowest_agreement

    result: dict[str, Any] = {"gpu_texts": len(texts), "cpu_texts": cpu_texts}
    reference = None
    for precision in PRECISIONS:
        rate, outputs, specs = _gpu_rate(model, precision, texts)
        result[f"gpu_{precision}_texts_per_second"] = rate
        if reference is None:
            reference = outputs
        else:
            result[f"gpu_{precision}_decision_agreement_with_fp32"] = lowest_agreement(compare_outputs(specs, reference, outputs))
    cpu = TextClassifier.load(model, device="cpu", precision="fp32")
    cpu.predict_proba(texts[:16])
    result["cpu_fp32_texts_per_second"] = per_second(cpu_texts, lambda: cpu.predict_proba(texts[:cpu_texts]))
    return result


def _gpu_rate(model: Path, precision: str, texts: list[str]) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """(texts per second on the GPU, the outputs, the heads); the outputs come back as numpy
    arrays, so the time includes the GPU's work."""
    from textheads import TextClassifier

    clf = TextClassifier.load(model, device="cuda", precision=precision)
    clf.predict_proba(texts[:256], batch_size=128)  # warm-up: CUDA kernels, autotuning
    outputs: dict[str, Any] = {}
    rate = per_second(len(texts), lambda: outputs.update(clf.predict_proba(texts, batch_size=128)))
    return rate, outputs, clf.heads_


def onnx_rates(model: Path, export: Path, texts: list[str], cpu_texts: int) -> dict[str, Any]:
    import onnxruntime

    from textheads import TextClassifier

    TextClassifier.load(model, device="cpu").export_onnx(export, echo=lambda _: None)
    result: dict[str, Any] = {}
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        clf = TextClassifier.load(export, device="cuda")
        clf.predict_proba(texts[:256], batch_size=128)
        result["onnx_cuda_texts_per_second"] = per_second(len(texts), lambda: clf.predict_proba(texts, batch_size=128))
    else:
        result["onnx_cuda"] = "not measured: onnxruntime-gpu is not installed (ONNX Runtime has no CUDA execution provider)"
    cpu = TextClassifier.load(export, device="cpu")
    cpu.predict_proba(texts[:16])
    result["onnx_cpu_texts_per_second"] = per_second(cpu_texts, lambda: cpu.predict_proba(texts[:cpu_texts]))
    return result


def serve_rate(model: Path, texts: list[str], device: str, *, per_request: int = 16, clients: int = 8) -> float:
    """Texts per second through `textheads serve` on `device`, from `clients` concurrent clients."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, "-m", "textheads", "serve", str(model), "--port", str(port), "--device", device, "--workers", "1" if device != "cpu" else "2", "--batch-size", "64" if device != "cpu" else "8"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TEXTHEADS_API_KEY": ""}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"textheads serve exited: {process.stderr.read()[-2000:] if process.stderr else ''}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("textheads serve did not start within 180 s")
            time.sleep(0.5)
        requests = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
        with httpx.Client(timeout=120) as client:
            client.post(f"{base}/predict", json={"texts": requests[0]}).raise_for_status()  # warm-up

            def send(batch: list[str]) -> None:
                client.post(f"{base}/predict", json={"texts": batch}).raise_for_status()

            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                return per_second(len(texts), lambda: list(pool.map(send, requests)))
    finally:
        process.terminate()
        process.wait(timeout=30)


def step(result: dict[str, Any], name: str, work: Callable[[], Any]) -> None:
    """Run one part; a failure is recorded, and the other parts still run."""
    started = time.perf_counter()
    print(f"-- {name} ...", flush=True)
    try:
        result[name] = work()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what failed and goes on
        result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"   {json.dumps(result[name])} ({time.perf_counter() - started:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="Only say whether a CUDA device is here, and exit.")
    parser.add_argument("--goemotions", type=Path, default=Path(os.environ.get("GOEMOTIONS_DIR", ROOT.parent / "shared" / "data" / "goemotions")), help="GoEmotions folder (train/dev/test.jsonl, labels_emotions.txt).")
    parser.add_argument("--goemotions-rows", type=int, default=None, help="Train on the first N GoEmotions rows only (default: all, one epoch).")
    parser.add_argument("--train-precision", default="bf16", help="train.precision for both trainings (bf16; fp16 where the run config accepts it).")
    parser.add_argument("--texts", type=int, default=5000, help="Texts per GPU prediction measurement.")
    parser.add_argument("--cpu-texts", type=int, default=256, help="Texts per CPU measurement (the CPU is far slower).")
    args = parser.parse_args(argv)

    usable, line = cuda_report()
    print(line, flush=True)
    if args.check or not usable:
        if not usable and not args.check:
            print("Nothing measured: benchmarks/gpu.py needs a CUDA device.")
        return 0

    from common import save  # after the check, which needs no textheads

    started = time.perf_counter()
    result: dict[str, Any] = {"device": line, "train_precision": args.train_precision}
    with tempfile.TemporaryDirectory(prefix="textheads-gpu-") as tmp:
        work = Path(tmp)
        advice_model = work / "advice"
        step(result, "train_advice", lambda: train_advice(advice_model, args.train_precision))
        if (args.goemotions / "train.jsonl").is_file():
            step(result, "train_goemotions_one_epoch", lambda: train_goemotions(args.goemotions, work / "goemotions", args.train_precision, args.goemotions_rows))
            model = work / "goemotions"
            source = args.goemotions / "test.jsonl"
        else:
            result["train_goemotions_one_epoch"] = f"not measured: no GoEmotions at {args.goemotions} (--goemotions DIR)"
            model, source = advice_model, ADVICE / "train.jsonl"
        texts = [json.loads(line)["text"] for line in source.open()]
        texts = (texts * (args.texts // max(1, len(texts)) + 1))[: args.texts]
        if (model / "model.safetensors").is_file():
            step(result, "predict", lambda: predict_rates(model, texts, args.cpu_texts))
            step(result, "onnx", lambda: onnx_rates(model, work / "onnx", texts, args.cpu_texts))
            step(result, "serve", lambda: {"gpu_texts_per_second": serve_rate(model, texts[:2000], "cuda"), "cpu_texts_per_second": serve_rate(model, texts[: args.cpu_texts], "cpu")})
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    save("gpu", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
