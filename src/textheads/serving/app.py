"""The HTTP service: `POST /predict`, `GET /health`, `GET /model`, OpenAPI docs.

Concurrent requests share encoder passes: their texts are batched by length
as they arrive (see `textheads.serving.batcher`) and run by model processes beside
the HTTP process (see `textheads.serving.model_process`). The model directory is
fixed when the app is built; no request can name a path.

Every wait is bounded: request bodies by the bytes that arrive (see
`textheads.serving.body_limit`), the texts waiting for the model by
`Limits.max_pending` (503 with Retry-After past it), and each request by
`Limits.timeout_s` (504); a client that disconnects takes its waiting texts
back; a failing model worker fails its requests (500, or 503 while its
process restarts) and goes on. Every answer is one of the bodies that the
OpenAPI document declares (see `textheads.serving.schema`).
"""

# No `from __future__ import annotations`: FastAPI reads the request model of
# `/predict`, built per model inside `create_app`, from the handler's annotation.

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from textheads import __version__
from textheads.errors import ConfigError, MissingExtraError
from textheads.inference.predict import to_records
from textheads.model_config import long_text_of
from textheads.serving.batcher import ContinuousBatcher, Overloaded, Unavailable
from textheads.serving.body_limit import ASGIApp, BodyLimit, Receive, Scope, Send, send_json
from textheads.serving.description import ModelDescription, describe_model
from textheads.serving.model_process import ModelProcessLost, ProcessBackend
from textheads.serving.schema import (
    ErrorBody,
    Health,
    ModelInfo,
    PredictRequest,
    check_request,
    error_body,
    request_model,
    response_model,
)

try:
    from fastapi import FastAPI, Request, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from fastapi.security import APIKeyHeader
    from starlette.datastructures import Headers
    from starlette.exceptions import HTTPException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("fastapi", "serve") from exc

API_KEY_ENV = "TEXTHEADS_API_KEY"
RETRY_AFTER_S = 1
"""Seconds a client is asked to wait after a 503 before trying again."""

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, how requests are batched, and how long anything may wait."""

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
    max_pending: int = 4096
    """Texts that may wait for the model; a request that would pass it gets a 503."""
    timeout_s: float = 60.0
    """How long a request may wait for its predictions (then 504), and a model worker
    may run one batch (then it counts as stuck; a model process is restarted)."""
    device: str = "auto"
    """Where the model workers run the model: `cpu`, `cuda`, `cuda:N` or `auto`."""
    precision: str = "auto"
    """`fp32`, `fp16`, `bf16` or `auto` (see `textheads.inference.device`)."""

    def __post_init__(self) -> None:
        if self.max_pending < self.max_texts:
            raise ConfigError(f"max_pending ({self.max_pending}, --max-pending) must be at least max_texts ({self.max_texts}, --max-texts): a request with max_texts texts could never be queued")
        if not self.timeout_s > 0:
            raise ConfigError(f"timeout_s must be a positive number of seconds; got {self.timeout_s}")


def create_app(model_path: str | Path, *, api_key: str | None = None, limits: Limits | None = None, backends: Sequence[Any] | None = None) -> FastAPI:
    """Build the app for one model directory (or ONNX export).

    `api_key`: required on every route but `/health` (default: `$TEXTHEADS_API_KEY`;
    "" for none).
    `backends`: run these (objects with `specs`, `max_length` and `run`, as in
    `textheads.inference.backends`) as the model workers instead of starting them from
    `model_path`; their specs must be the model's.

    This process reads only the model's config and tokenizer; the model itself loads
    in the model processes (or, without them, when the app starts).
    """
    limits = limits or Limits()
    api_key = resolve_api_key(api_key)
    model = describe_model(model_path, device=limits.device, precision=limits.precision)
    tokenizer, specs = model.tokenizer, model.specs
    batcher: ContinuousBatcher | None = None

    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        nonlocal batcher
        workers = list(backends) if backends is not None else _model_backends(model, model_path, limits)
        batcher = ContinuousBatcher(
            workers, tokenizer, batch_size=limits.encoder_batch, wait_ms=limits.batch_wait_ms, max_pending=limits.max_pending, timeout_s=limits.timeout_s, long_text=long_text_of(model.config)
        )
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()
            if backends is None:
                for each in workers:
                    if isinstance(each, ProcessBackend):
                        each.close()

    app = FastAPI(title="textheads", version=__version__, description=f"Predictions of the textheads model in {Path(model_path).name}", lifespan=lifespan)
    if api_key is not None:
        app.add_middleware(_ApiKey, key=api_key)  # type: ignore[arg-type]
    # Added last, so outermost: the body is read (and counted) before anything answers.
    app.add_middleware(BodyLimit, max_body_bytes=limits.max_body_bytes, too_large=_too_large)  # type: ignore[arg-type]
    _add_error_handlers(app)
    # Only documents the key (and gives /docs its "Authorize" button); `_ApiKey` checks it.
    keyed = [Security(APIKeyHeader(name="X-API-Key", auto_error=False))] if api_key is not None else []

    def running() -> ContinuousBatcher:
        assert batcher is not None, "the app's lifespan starts the batcher"
        return batcher

    @app.get("/health", response_model=Health, responses={503: {"model": Health, "description": "No model worker is alive."}})
    async def health() -> JSONResponse:
        """Readiness: 200 while at least one model worker can take work, 503 when none can."""
        statuses = running().worker_status()
        ready = any(status.alive for status in statuses)
        body = {"status": "ok" if ready else "unavailable", "workers": [asdict(status) for status in statuses], "pending_texts": running().pending}
        return JSONResponse(body, status_code=200 if ready else 503)

    info = _model_info(model, limits)

    @app.get("/model", response_model=ModelInfo, responses={401: _error("Missing or wrong API key.")}, dependencies=keyed)
    async def model_info() -> dict[str, Any]:
        """The model's heads, labels and thresholds, its encoder, and the service's limits."""
        return info

    request_body = request_model(specs, max_texts=limits.max_texts, max_chars=limits.max_chars)

    async def predict(body: request_body, request: Request) -> Response:  # type: ignore[valid-type]
        """Predictions of each requested head for each text, in order."""
        problem = check_request(body, specs, max_texts=limits.max_texts, max_chars=limits.max_chars)
        if problem is not None:
            status, field, message = problem
            return JSONResponse(error_body(message, field), status_code=status)
        try:
            predictions = await _unless_client_leaves(request.receive, running().predict(body.texts))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a documented answer
            return _failure(exc)
        if predictions is None:
            return Response(status_code=499)  # the client has gone (nginx's code for it); nobody reads this
        records = to_records(_chosen_specs(specs, body), predictions)
        # Serialised here: FastAPI's generic encoder walks every value and is slow for
        # hundreds of probabilities per text.
        return Response(json.dumps({"predictions": records}, ensure_ascii=False), media_type="application/json")

    app.post("/predict", response_model=response_model(specs), responses=_PREDICT_ERRORS, dependencies=keyed)(predict)
    return app


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body could not be read (it is not UTF-8)."),
    401: _error("Missing or wrong API key."),
    413: _error("The body, the number of texts or a text is over its limit."),
    422: _error("The body is not valid JSON, or does not fit the model (each problem names its field)."),
    500: _error("The model failed on a batch that held the request's texts."),
    503: {
        **_error("Too many texts are waiting for the model, or no model worker is ready; try again after Retry-After seconds."),
        "headers": {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}},
    },
    504: _error("No predictions within the service's time limit."),
}


def _failure(exc: Exception) -> JSONResponse:
    """The answer to a request whose predictions failed: 503 for what passes (full pool,
    no worker ready, a model process restarting), 504 past the time limit, else 500."""
    if isinstance(exc, (Overloaded, Unavailable, ModelProcessLost)):
        return JSONResponse(error_body(str(exc)), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, TimeoutError):
        return JSONResponse(error_body(str(exc)), status_code=504)
    # The model thread logged the traceback; the client gets no internals.
    logger.error("a prediction request failed: %s: %s", type(exc).__name__, exc)
    return JSONResponse(error_body("the model failed on a batch that held this request's texts; the service log has the details"), status_code=500)


def _too_large(limit: int) -> dict[str, Any]:
    return error_body(f"request body is over the limit of {limit} bytes", "body")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answer is an `ErrorBody`, as the OpenAPI document says."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"] if part != "body")
            problems.append({"field": location or "body", "message": error["msg"]})
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("internal error; the service log has the details"), status_code=500)


async def _unless_client_leaves(receive: Receive, work: Awaitable[T]) -> T | None:
    """The result of `work`, or None when the client disconnects first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_client_left(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if watcher.done() and not watcher.cancelled():
            watcher.exception()  # retrieved, so that asyncio does not report it
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # its clean-up (taking its texts out of the pool) is done before we go on
    return None if task.cancelled() else task.result()


async def _client_left(receive: Receive) -> None:
    # Starlette does not cancel a handler whose client is gone; the server's `receive`
    # tells, once the body has been read.
    while (await receive())["type"] != "http.disconnect":
        pass


class _ApiKey:
    """ASGI middleware: a 401 for requests without the key (X-API-Key or Bearer), except to /health."""

    def __init__(self, app: ASGIApp, *, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/health":
            headers = Headers(scope=scope)
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not given or not hmac.compare_digest(given.encode(), self.key):
                message = "missing or wrong API key: send it in the X-API-Key header"
                await send_json(send, 401, error_body(message, "X-API-Key"), headers={"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)


def _chosen_specs(specs: dict[str, Any], body: PredictRequest) -> dict[str, Any]:
    """The requested heads, with the request's thresholds merged into the stored ones."""
    chosen = {name: spec for name, spec in specs.items() if body.heads is None or name in body.heads}
    for name, value in (body.thresholds or {}).items():
        chosen[name] = chosen[name].with_thresholds(value)  # the request was checked against the document
    return chosen


def _model_info(model: ModelDescription, limits: Limits) -> dict[str, Any]:
    return {
        "textheads_version": __version__,
        "encoder": public_encoder_name(model.config.encoder_name or "default"),
        "max_length": model.max_length,
        "long_text": long_text_of(model.config).mode,
        "backend": model.backend,
        "device": model.device,
        "precision": model.precision,
        "model_workers": {"count": limits.workers, "processes": limits.model_processes},
        "limits": {"max_texts": limits.max_texts, "max_chars": limits.max_chars, "max_body_bytes": limits.max_body_bytes, "max_pending": limits.max_pending, "timeout_s": limits.timeout_s},
        "heads": {
            name: {"kind": spec.kind, "labels": spec.labels, "thresholds": spec.thresholds_by_label() or None}
            for name, spec in model.specs.items()
        },
    }


def public_encoder_name(encoder: str) -> str:
    """The encoder as `/model` shows it: a hub id or `default` as is, a local folder by its final name only."""
    path = Path(encoder).expanduser()
    if encoder.startswith((".", "~")) or path.is_absolute() or "\\" in encoder or path.exists():
        return path.name or "local"
    return encoder


def _model_backends(model: ModelDescription, model_path: str | Path, limits: Limits) -> list[Any]:
    """One backend per model worker, each with its share of the CPU threads."""
    import torch

    from textheads.inference.backends import OnnxBackend, open_backend

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // limits.workers)
    if limits.model_processes:
        with ThreadPoolExecutor(limits.workers) as pool:  # the processes load side by side
            futures = [
                pool.submit(ProcessBackend, model_path, specs=model.specs, max_length=model.max_length, threads=threads, answer_timeout_s=limits.timeout_s, device=limits.device, precision=limits.precision)
                for _ in range(limits.workers)
            ]
        errors = [f.exception() for f in futures]
        started = [f.result() for f, error in zip(futures, errors, strict=True) if error is None]
        first_error = next((error for error in errors if error is not None), None)
        if first_error is not None:  # stop the ones that did start before giving up
            for process in started:
                process.close()
            raise first_error
        return started
    if model.backend == "OnnxBackend" and limits.workers > 1:
        return [OnnxBackend(model_path, threads=threads, device=limits.device) for _ in range(limits.workers)]
    backend = open_backend(model_path, device=limits.device, precision=limits.precision)
    if limits.workers == 1:
        return [backend]
    torch.set_num_threads(threads)  # process-wide: the threads share one model
    return [backend] * limits.workers


def resolve_api_key(api_key: str | None) -> str | None:
    """The key to require: the one given, else `$TEXTHEADS_API_KEY`; None (no key) for none or ""."""
    return (api_key if api_key is not None else os.environ.get(API_KEY_ENV)) or None


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """A warning when the service would answer other machines and no API key guards it."""
    if api_key or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:  # a host name other than localhost
        pass
    return (
        f"Warning: serving on {host} without an API key: anyone who can reach this address can use the model. "
        f"Set --api-key (or ${API_KEY_ENV}), or bind 127.0.0.1."
    )


def serve(model_path: str | Path, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, limits: Limits | None = None) -> None:
    """Run the service with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "serve") from None
    api_key = resolve_api_key(api_key)
    warning = exposure_warning(host, api_key)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    uvicorn.run(create_app(model_path, api_key=api_key, limits=limits), host=host, port=port, log_level="info")
