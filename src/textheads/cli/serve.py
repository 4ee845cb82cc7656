"""`textheads serve MODEL_DIR [--host 127.0.0.1 --port 8000 --api-key KEY --max-pending N --timeout S]`."""

from __future__ import annotations

from typing import Annotated

import typer

from textheads.cli._common import (
    DeviceOption,
    ModelArgument,
    Precision,
    PrecisionOption,
    RevisionOption,
    quiet_library_logs,
)


def serve(
    model_dir: ModelArgument,
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    api_key: Annotated[str | None, typer.Option(help="Require this key (X-API-Key header) on every route but /health. Default: $TEXTHEADS_API_KEY. Without one, binding a non-loopback address prints a warning.")] = None,
    max_texts: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 256,
    max_chars: Annotated[int, typer.Option(min=1, help="Characters per text.")] = 20_000,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Bytes per request body, counted as they arrive (chunked bodies too).")] = 2_000_000,
    max_pending: Annotated[int, typer.Option(min=1, help="Texts that may wait for the model; past it a request gets 503 with Retry-After. At least --max-texts.")] = 4096,
    timeout: Annotated[float, typer.Option(min=0.001, help="Seconds a request may wait for its predictions (then 504); a model process that gives no answer for as long is restarted.")] = 60.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per encoder pass, gathered from all pending requests by length.")] = 8,
    batch_wait_ms: Annotated[float, typer.Option(min=0, help="How long to wait for more texts when fewer than a pass are pending.")] = 2.0,
    workers: Annotated[int, typer.Option(min=1, help="Model processes running passes side by side, sharing the CPU threads.")] = 2,
    in_process: Annotated[bool, typer.Option("--in-process", help="Run the model in threads of the HTTP process instead of child processes.")] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = Precision.auto,
    revision: RevisionOption = None,
) -> int:
    """Serve predictions over HTTP (POST /predict, GET /health, GET /model, /docs)."""
    quiet_library_logs()
    from textheads.hub.download import resolve_model
    from textheads.serving.app import Limits
    from textheads.serving.app import serve as run_server

    run_server(resolve_model(model_dir, revision=revision), host=host, port=port, api_key=api_key, limits=Limits(max_texts=max_texts, max_chars=max_chars, max_body_bytes=max_body_bytes, encoder_batch=batch_size, batch_wait_ms=batch_wait_ms, workers=workers, model_processes=not in_process, max_pending=max_pending, timeout_s=timeout, device=device, precision=precision.value))
    return 0


def register(app: typer.Typer) -> None:
    app.command()(serve)
