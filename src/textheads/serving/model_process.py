"""A backend that runs the model in a child process.

The HTTP service parses requests, tokenises and batches in its own process
and hands padded batches to model processes through pipes. A model pass then
never waits for the HTTP thread's hold on the Python interpreter lock, and
two model processes never wait for each other's: on a small CPU that is the
difference between the service keeping up with the in-process path or not.

A model process that dies, or that gives no answer within its time limit
(then it is killed), fails the batch it was running with `ModelProcessLost`
and is started again.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textheads.specs import HeadSpec

_START_TIMEOUT_S = 300.0


class ModelProcessError(RuntimeError):
    """The model process failed to start, died, or failed a batch."""


class ModelProcessLost(ModelProcessError):
    """The model process died or hung while running a batch; it is started again."""


def _serve_batches(model_path: str, threads: int, device: str, precision: str, conn: Connection) -> None:
    """Child process: load the model, then answer batches until told to stop."""
    try:
        torch.set_num_threads(threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one "Loading weights" bar per process and restart is noise in a server log
        from textheads.inference.backends import open_backend

        backend = open_backend(model_path, device=device, precision=precision, threads=threads)
        conn.send(("ready", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            batch = conn.recv()
        except EOFError:  # the parent went away
            return
        if batch is None:
            return
        try:
            outputs = backend.run({name: torch.from_numpy(values) for name, values in batch.items()})
        except Exception as exc:  # noqa: BLE001 - one failing batch is reported, the process goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        else:
            conn.send(("ok", outputs))


class ProcessBackend:
    """Runs batches through the model at `model_path` in a child process with `threads` CPU
    threads, on `device` at `precision` (see `textheads.inference.device`).

    A process that dies, or that does not answer a batch within
    `answer_timeout_s` seconds (then it is killed), fails that batch with
    `ModelProcessLost` and is started again on the next batch (or by `revive`).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        specs: dict[str, HeadSpec],
        max_length: int,
        threads: int,
        answer_timeout_s: float | None = None,
        device: str = "auto",
        precision: str = "auto",
    ) -> None:
        self.model_path, self.threads = str(model_path), threads
        self.device, self.precision = device, precision
        self.answer_timeout_s = answer_timeout_s
        self.specs, self.max_length = specs, max_length
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._start()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve_batches, args=(self.model_path, self.threads, self.device, self.precision, child), name="textheads-model", daemon=True)
        process.start()
        child.close()
        if not parent.poll(_START_TIMEOUT_S):
            process.kill()
            raise ModelProcessError(f"the model process did not load {self.model_path} within {_START_TIMEOUT_S:.0f} s")
        try:
            status, message = parent.recv()
        except EOFError:
            raise ModelProcessError(f"the model process exited with code {process.exitcode} while loading {self.model_path}") from None
        if status != "ready":
            process.join(timeout=5)
            raise ModelProcessError(f"the model process could not load {self.model_path}: {message}")
        self._process, self._conn = process, parent

    @property
    def alive(self) -> bool:
        """Whether the child process is running (it may be busy with a batch)."""
        process = self._process
        return process is not None and process.is_alive()

    def revive(self) -> None:
        """Start the child process again if it has died."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._conn is None or not self._process.is_alive():
            self._close_pipe()
            self._start()

    def run(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        with self._lock:
            self._ensure_started()
            assert self._conn is not None
            try:
                self._conn.send({name: values.numpy() for name, values in batch.items()})
                answered = self._conn.poll(self.answer_timeout_s)
                if answered:
                    status, payload = self._conn.recv()
            except (EOFError, OSError):
                self._process.join(timeout=5)
                self._close_pipe()
                raise ModelProcessLost(f"the model process died (exit code {self._process.exitcode}) while running a batch; it will be restarted") from None
            if not answered:
                self._process.kill()
                self._process.join(timeout=5)
                self._close_pipe()
                raise ModelProcessLost(f"the model process gave no answer within {self.answer_timeout_s:g} s and was stopped; it will be restarted")
        if status != "ok":
            raise ModelProcessError(f"the model process failed a batch: {payload}")
        return payload

    def _close_pipe(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Stop the child process."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except OSError:
                    pass
            self._close_pipe()
            if self._process is not None:
                self._process.join(timeout=10)
                if self._process.is_alive():
                    self._process.kill()
                self._process = None
