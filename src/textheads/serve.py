"""The HTTP service: `POST /predict`, `GET /health`, `GET /model`, OpenAPI docs.

Concurrent requests share encoder passes: their texts are batched by length
as they arrive (see `textheads.batcher`) and run by model processes beside
the HTTP process (see `textheads.model_process`). The model directory is
fixed when the app is built; no request can name a path.
"""

from __future__ import annotations

import hmac
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textheads import __version__
from textheads.batcher import ContinuousBatcher
from textheads.errors import MissingExtraError
from textheads.model_process import ProcessBackend
from textheads.predict import to_records

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import BaseModel, Field
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc

API_KEY_ENV = "TEXTHEADS_API_KEY"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how requests are batched."""

    max_texts: int = 256
    max_chars: int = 20_000
    max_body_bytes: int = 2_000_000
    encoder_batch: int = 8
    """Texts per encoder pass, taken from all pending requests by length."""
    batch_wait_ms: float = 2.0
    """How long the model waits for more texts when fewer than a pass are pending."""
    workers: int = 2
    """Model processes running passes side by side; the CPU threads are shared out among them."""
    model_processes: bool = True
    """Run the model in child processes (False: in threads of the HTTP process)."""


class PredictRequest(BaseModel):
    texts: list[str] = Field(description="Texts to classify (at least one).")
    heads: list[str] | None = Field(default=None, description="Only these heads (default: all).")
    thresholds: dict[str, float | dict[str, float]] | None = Field(
        default=None, description="Per multilabel head: one threshold or one per label, for this request only."
    )


def create_app(model_path: str | Path, *, api_key: str | None = None, limits: Limits | None = None) -> FastAPI:
    """Build the app for one model directory (or ONNX export)."""
    from textheads.classifier import TextClassifier

    limits = limits or Limits()
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    classifier = TextClassifier.load(model_path)
    backend, tokenizer = classifier.backend_, classifier.tokenizer_
    specs = classifier.heads_
    batcher: ContinuousBatcher | None = None

    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        nonlocal batcher
        backends = _model_backends(backend, model_path, limits)
        batcher = ContinuousBatcher(backends, tokenizer, batch_size=limits.encoder_batch, wait_ms=limits.batch_wait_ms)
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()
            for each in backends:
                if isinstance(each, ProcessBackend):
                    each.close()

    app = FastAPI(title="textheads", version=__version__, description=f"Predictions of the textheads model in {Path(model_path).name}", lifespan=lifespan)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if api_key is not None and request.url.path != "/health":
            given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not given or not hmac.compare_digest(given.encode(), api_key.encode()):
                return JSONResponse({"detail": "missing or wrong API key: send it in the X-API-Key header"}, status_code=401)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            return JSONResponse({"detail": f"request body of {length} bytes is over the limit of {limits.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"] if part != "body")
            problems.append({"field": location or "body", "message": error["msg"]})
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        config = classifier.config
        return {
            "textheads_version": __version__,
            "encoder": config.model.encoder,
            "max_length": config.model.max_length,
            "backend": type(backend).__name__,
            "model_workers": {"count": limits.workers, "processes": limits.model_processes},
            "heads": {
                name: {"kind": spec.kind, "labels": spec.labels, "thresholds": dict(zip(spec.labels or [], spec.thresholds(), strict=True)) if spec.kind == "multilabel" else None}
                for name, spec in specs.items()
            },
        }

    @app.post("/predict")
    async def predict(request: PredictRequest) -> Any:
        problem = _check(request, specs, limits)
        if problem is not None:
            return JSONResponse({"detail": [problem[1]]}, status_code=problem[0])
        assert batcher is not None, "the app's lifespan starts the batcher"
        predictions = await batcher.predict(request.texts)
        chosen = _request_specs(specs, request)
        # Serialised here: FastAPI's generic encoder walks every value and is slow for
        # hundreds of probabilities per text.
        return Response(json.dumps({"predictions": to_records(chosen, predictions)}, ensure_ascii=False), media_type="application/json")

    return app


def _model_backends(backend: Any, model_path: str | Path, limits: Limits) -> list[Any]:
    """One backend per model worker, each with its share of the CPU threads."""
    import torch

    from textheads.backends import OnnxBackend

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // limits.workers)
    if limits.model_processes:
        with ThreadPoolExecutor(limits.workers) as pool:  # the processes load side by side
            futures = [pool.submit(ProcessBackend, model_path, specs=backend.specs, max_length=backend.max_length, threads=threads) for _ in range(limits.workers)]
        errors = [f.exception() for f in futures]
        started = [f.result() for f, error in zip(futures, errors, strict=True) if error is None]
        first_error = next((error for error in errors if error is not None), None)
        if first_error is not None:  # stop the ones that did start before giving up
            for process in started:
                process.close()
            raise first_error
        return started
    if limits.workers == 1:
        return [backend]
    if isinstance(backend, OnnxBackend):
        return [OnnxBackend(model_path, threads=threads) for _ in range(limits.workers)]
    torch.set_num_threads(threads)  # process-wide: the threads share one model
    return [backend] * limits.workers


def _check(request: PredictRequest, specs: dict[str, Any], limits: Limits) -> tuple[int, dict[str, str]] | None:
    """(status, problem) for a request the schema accepts but the service does not."""
    if not request.texts:
        return 422, {"field": "texts", "message": "give at least one text"}
    if len(request.texts) > limits.max_texts:
        return 413, {"field": "texts", "message": f"{len(request.texts)} texts is over the limit of {limits.max_texts} per request"}
    for i, text in enumerate(request.texts):
        if not text.strip():
            return 422, {"field": f"texts.{i}", "message": "text is empty"}
        if len(text) > limits.max_chars:
            return 413, {"field": f"texts.{i}", "message": f"text of {len(text)} characters is over the limit of {limits.max_chars}"}
    for name in request.heads or []:
        if name not in specs:
            return 422, {"field": "heads", "message": f"unknown head {name!r}; heads are {sorted(specs)}"}
    for name, value in (request.thresholds or {}).items():
        spec = specs.get(name)
        if spec is None or spec.kind != "multilabel":
            return 422, {"field": f"thresholds.{name}", "message": f"thresholds apply to multilabel heads: {sorted(n for n, s in specs.items() if s.kind == 'multilabel')}"}
        values = value.values() if isinstance(value, dict) else [value]
        unknown = sorted(set(value) - set(spec.labels or [])) if isinstance(value, dict) else []
        if unknown:
            return 422, {"field": f"thresholds.{name}", "message": f"unknown labels {unknown}"}
        if any(not 0.0 <= v <= 1.0 for v in values):
            return 422, {"field": f"thresholds.{name}", "message": "thresholds must lie between 0 and 1"}
    return None


def _request_specs(specs: dict[str, Any], request: PredictRequest) -> dict[str, Any]:
    chosen = {name: spec for name, spec in specs.items() if request.heads is None or name in request.heads}
    for name, value in (request.thresholds or {}).items():
        chosen[name] = type(chosen[name]).model_validate({**chosen[name].model_dump(), "threshold": value})
    return chosen


def serve(model_path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, limits: Limits | None = None) -> None:
    """Run the service with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "serve") from None
    uvicorn.run(create_app(model_path, api_key=api_key, limits=limits), host=host, port=port, log_level="info")
