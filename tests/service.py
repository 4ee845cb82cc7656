"""`textheads serve` in a child process on a free loopback port, for the tests that talk to it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(model: Path, *options: str, api_key: str = "") -> Iterator[tuple[subprocess.Popen, str]]:
    """Start `textheads serve MODEL OPTIONS` and yield (process, base URL) once /health answers 200;
    stop it afterwards (a kill when it does not stop within a minute)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TEXTHEADS_API_KEY": api_key}
    args = [sys.executable, "-m", "textheads", "serve", str(model), "--port", str(port), *options]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            process.kill()
            pytest.fail(f"server did not start: {process.stdout.read() if process.stdout else ''}")
        yield process, base
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
