"""Inference speed on GoEmotions test texts, one trained model, one run:

  the transformers text-classification pipeline (top_k=None, sigmoid) on the same
  encoder with a 28-label head, textheads on PyTorch, on ONNX fp32 and ONNX int8,
  and the HTTP service under N concurrent clients on loopback (wrk: apt-get install wrk).

    python benchmarks/inference.py --model benchmarks/runs/goemotions-finetune
    python benchmarks/inference.py --model benchmarks/runs/goemotions-finetune --service-only --serve-batch 32

Writes benchmarks/results/inference.json and prints a table with ratios to the
pipeline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_split, save

from textheads.decisions import head_decisions
from textheads.serving.app import Limits


def texts_per_second(run, texts: list[str], repeats: int = 2) -> float:
    run(texts[:64])  # warm-up
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        run(texts)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def pipeline_speed(texts: list[str], labels: int, batch_size: int) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from textheads.encoder import default_encoder_path

    path = str(default_encoder_path())
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=labels, problem_type="multi_label_classification")
    classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(path), top_k=None, function_to_apply="sigmoid", device=-1)
    return texts_per_second(lambda t: classify(t, batch_size=batch_size, truncation=True, max_length=64), texts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[(counter % #bodies) + 1])
end
"""


def service_load(model: Path, texts: list[str], clients: int, seconds: float, per_request: int, batch_size: int, workers: int, in_process: bool = False) -> dict:
    """Start `textheads serve` and load it with `wrk` (a C load generator, so that the
    clients take little of the 2 cores): `clients` connections, random requests of
    `per_request` texts, for `seconds`."""
    import httpx

    if shutil.which("wrk") is None:
        raise SystemExit("the service benchmark needs wrk (apt-get install wrk)")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "textheads", "serve", str(model), "--port", str(port), "--batch-size", str(batch_size), "--workers", str(workers), *(["--in-process"] if in_process else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        bodies, script = Path(tmp) / "bodies.txt", Path(tmp) / "post.lua"
        bodies.write_text("".join(json.dumps({"texts": [texts[i] for i in rng.choice(len(texts), per_request, replace=False)]}) + "\n" for _ in range(2000)))
        script.write_text(WRK_SCRIPT)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            def load(duration: float) -> str:
                command = ["wrk", "-t2", f"-c{clients}", f"-d{int(duration)}s", "--latency", "-s", str(script), base]
                return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BODIES": str(bodies)}, check=True).stdout

            load(5)  # warm-up, as the in-process runs have one
            output = load(seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"clients": clients, "texts_per_request": per_request, "seconds": seconds, **_parse_wrk(output, per_request), "wrk_output": output}


def _parse_wrk(output: str, per_request: int) -> dict:
    def ms(text: str) -> float:
        value = float(re.sub(r"[a-z]+$", "", text))
        return value * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[re.search(r"[a-z]+$", text).group(0)]

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {
        "requests": requests,
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
        "texts_per_second": rate * per_request,
        # Anchored at the start of a line: the thread stats' "+/- Stdev" column also ends in "%".
        "p50_ms": ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99_ms": ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a textheads model trained on GoEmotions emotions")
    parser.add_argument("--head", default="emotions")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--per-request", type=int, default=8)
    parser.add_argument("--serve-batch", type=int, default=Limits().encoder_batch, help="the service's --batch-size (texts per encoder pass)")
    parser.add_argument("--serve-workers", type=int, default=Limits().workers, help="the service's --workers (model processes)")
    parser.add_argument("--serve-in-process", action="store_true", help="the service runs its model in threads, not processes")
    parser.add_argument("--service-only", action="store_true", help="only the service against in-process PyTorch (writes inference-service.json)")
    args = parser.parse_args()

    from sklearn.metrics import f1_score

    from textheads import TextClassifier

    texts, y, labels = load_split("test")
    result: dict = {"texts": len(texts), "batch_size": args.batch_size, "serve_batch": args.serve_batch, "serve_workers": args.serve_workers, "serve_in_process": args.serve_in_process}
    torch_clf = TextClassifier.load(args.model)
    if args.service_only:
        result["pytorch_texts_per_second"] = texts_per_second(lambda t: torch_clf.predict_proba(t, batch_size=args.batch_size), texts)
        result["service"] = service_load(args.model, texts, args.clients, args.seconds, args.per_request, args.serve_batch, args.serve_workers, args.serve_in_process)
    else:
        result["pipeline_texts_per_second"] = pipeline_speed(texts, len(labels), args.batch_size)
        result["pytorch_texts_per_second"] = texts_per_second(lambda t: torch_clf.predict_proba(t, batch_size=args.batch_size), texts)
        reference = torch_clf.predict_proba(texts, batch_size=args.batch_size)[args.head]
        spec = torch_clf.heads_[args.head]
        result["pytorch_macro_f1"] = float(f1_score(y, head_decisions(spec, reference), average="macro", zero_division=0))

        with tempfile.TemporaryDirectory() as tmp:
            for name, quantize in (("onnx_fp32", None), ("onnx_int8", "int8")):
                from textheads.export import export_onnx

                # The plain recipe, unchecked: this script measures its agreement on the test split itself.
                folder = export_onnx(args.model, Path(tmp) / name, quantize=quantize, force=True, min_agreement=0.0)
                clf = TextClassifier.load(folder)
                result[f"{name}_texts_per_second"] = texts_per_second(lambda t, c=clf: c.predict_proba(t, batch_size=args.batch_size), texts)
                proba = clf.predict_proba(texts, batch_size=args.batch_size)[args.head]
                result[f"{name}_max_abs_diff"] = float(np.abs(proba - reference).max())
                result[f"{name}_decision_agreement"] = float((head_decisions(spec, proba) == head_decisions(spec, reference)).mean())
                result[f"{name}_macro_f1"] = float(f1_score(y, head_decisions(spec, proba), average="macro", zero_division=0))
            result["service"] = service_load(args.model, texts, args.clients, args.seconds, args.per_request, args.serve_batch, args.serve_workers, args.serve_in_process)
        base = result["pipeline_texts_per_second"]
        for name in ("pytorch", "onnx_fp32", "onnx_int8"):
            result[f"{name}_vs_pipeline"] = result[f"{name}_texts_per_second"] / base

    # In-process again right after the service, so that both see the machine in one state.
    result["pytorch_after_service_texts_per_second"] = texts_per_second(lambda t: torch_clf.predict_proba(t, batch_size=args.batch_size), texts)
    in_process = max(result["pytorch_texts_per_second"], result["pytorch_after_service_texts_per_second"])
    result["service_vs_pytorch"] = result["service"]["texts_per_second"] / in_process
    save("inference-service" if args.service_only else "inference", result)
    print(f"\n{'path':<22}{'texts/s':>10}{'× pipeline':>12}")
    if not args.service_only:
        print(f"{'pipeline (batch ' + str(args.batch_size) + ')':<22}{base:>10.0f}{1:>12.2f}")
        for name in ("pytorch", "onnx_fp32", "onnx_int8"):
            print(f"{name:<22}{result[name + '_texts_per_second']:>10.0f}{result[name + '_vs_pipeline']:>12.2f}")
    s = result["service"]
    print(f"{'service, ' + str(args.clients) + ' clients':<22}{s['texts_per_second']:>10.0f}   ({result['service_vs_pytorch']:.2f}× the faster in-process PyTorch run; p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, {s['errors']} errors, socket errors: {s['socket_errors'] or 'none'})")
    if not args.service_only:
        print(f"int8: decisions agree on {result['onnx_int8_decision_agreement']:.2%} of labels; macro-F1 {result['onnx_int8_macro_f1']:.4f} vs {result['pytorch_macro_f1']:.4f}")


if __name__ == "__main__":
    main()
