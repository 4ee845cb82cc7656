"""Continuous, length-aware batching of concurrent prediction requests.

The texts of every pending request wait in one pool. A model thread takes
the oldest waiting text and the waiting texts closest to it in token length,
runs them as one padded batch, and hands each request its predictions as soon
as its last text is done. So the model never idles while work waits, batches
pad little even though each request brings only a few texts, and the oldest
text always goes next (no request starves behind shorter ones).

Each backend given gets its own model thread; with several, they take
batches from the pool at once. The service gives each thread a model in a
child process (see `textheads.serving.model_process`), so that passes run side by
side without sharing the interpreter lock.

Nothing waits without bound: the pool holds at most `max_pending` texts (a
request that would overflow it is refused at once with `Overloaded`); a
request that is cancelled (its client went away) or outlives its time limit
takes its waiting texts back out of the pool, so no pass is spent on them;
and a model thread survives any error: the batch it was running fails its
requests, and the thread takes the next batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from transformers import PreTrainedTokenizerBase

from textheads.errors import ModelOutputError
from textheads.inference.backends import Backend
from textheads.inference.batching import collate_rows, tokenize, window_documents
from textheads.inference.predict import Predictions, empty_outputs, pad_id, require_finite
from textheads.inference.windows import TRUNCATE, LongText

logger = logging.getLogger(__name__)

_IDLE_CHECK_S = 1.0
"""How often an idle model thread checks that its model process is still running."""
_REVIVE_BACKOFF_S = 30.0
"""After a failed restart, how long an idle model thread waits before the next one."""


class Overloaded(RuntimeError):
    """The pool of pending texts is full: the request was not queued; try again shortly."""


class Unavailable(RuntimeError):
    """No model worker can take work: all are stuck, or the service is stopping."""


@dataclass(frozen=True)
class WorkerStatus:
    alive: bool
    """The thread runs, its model (process) runs, and it is not stuck in one batch."""
    busy: bool
    """It is running a batch now."""


@dataclass
class _Request:
    outputs: dict[str, np.ndarray]
    truncated: np.ndarray
    remaining: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    closed: bool = False
    """Failed or withdrawn: its texts are skipped."""

    def finish(self, error: BaseException | None = None) -> None:
        def settle() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(Predictions(self.outputs, self.truncated))

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # its event loop has closed: nobody is waiting any more
            pass


@dataclass(order=True)
class _Text:
    arrival: int
    length: int = field(compare=False)
    input_ids: list[list[int]] = field(compare=False)
    """Its rows: one, or its windows under `long_text: windows`."""
    token_type_ids: list[list[int]] | None = field(compare=False)
    request: _Request = field(compare=False)
    row: int = field(compare=False)


@dataclass
class _Worker:
    backend: Backend
    thread: threading.Thread | None = None
    busy_since: float | None = None
    revive_after: float = 0.0


class ContinuousBatcher:
    """Runs the texts of concurrent requests through its backends in shared, length-matched batches.

    `max_pending` bounds the texts waiting in the pool; `timeout_s` is how long
    one request may wait for its predictions, and how long a model thread may
    run one batch before it counts as stuck (None: no limit). `long_text` is how
    the model reads long texts (its `model.long_text`): under `windows` a batch
    of `batch_size` texts runs all their windows, one answer per text.
    """

    def __init__(
        self,
        backends: Sequence[Backend],
        tokenizer: PreTrainedTokenizerBase,
        *,
        batch_size: int = 16,
        wait_ms: float = 2.0,
        max_pending: int = 4096,
        timeout_s: float | None = None,
        long_text: LongText = TRUNCATE,
    ) -> None:
        if not backends:
            raise ValueError("give at least one backend")
        self.backends, self.tokenizer = list(backends), tokenizer
        self.specs, self.max_length = self.backends[0].specs, self.backends[0].max_length
        self.long_text = long_text
        self.batch_size, self.wait = batch_size, wait_ms / 1000
        self.max_pending, self.timeout_s = max_pending, timeout_s
        self.pad_id = pad_id(tokenizer)
        self._pool: list[_Text] = []
        self._arrivals = itertools.count()
        self._condition = threading.Condition()
        self._started = self._stopping = False
        self._workers = [_Worker(backend) for backend in self.backends]
        for i, worker in enumerate(self._workers):
            worker.thread = threading.Thread(target=self._work, args=(worker,), name=f"textheads-model-{i}", daemon=True)
        self._lock = threading.Lock()  # guards the requests' outputs and counts

    def start(self) -> None:
        self._started = True
        for worker in self._workers:
            assert worker.thread is not None
            worker.thread.start()

    def stop(self) -> None:
        """Stop the model threads; requests still waiting fail with `Unavailable`."""
        with self._condition:
            self._stopping = True
            waiting, self._pool = self._pool, []
            self._condition.notify_all()
        self._fail((t.request for t in waiting), Unavailable("the service is stopping"))
        for worker in self._workers:
            assert worker.thread is not None
            if worker.thread.is_alive():
                worker.thread.join(timeout=30)

    @property
    def pending(self) -> int:
        """Texts waiting in the pool (not counting those in a running batch)."""
        return len(self._pool)

    def worker_status(self) -> list[WorkerStatus]:
        """Per model thread: whether it can take work, and whether it is running a batch."""
        now = time.monotonic()
        statuses = []
        for worker in self._workers:
            busy_since = worker.busy_since
            stuck = busy_since is not None and self.timeout_s is not None and now - busy_since > self.timeout_s
            running = worker.thread is not None and worker.thread.is_alive() and not self._stopping
            statuses.append(WorkerStatus(alive=running and bool(getattr(worker.backend, "alive", True)) and not stuck, busy=busy_since is not None))
        return statuses

    async def predict(self, texts: Sequence[str], *, timeout_s: float | None = None) -> Predictions:
        """Predictions for `texts`, in order, once they have been through the model.

        Raises `Overloaded` when the pool has no room for the texts, `Unavailable`
        when no model worker is alive, and `TimeoutError` after `timeout_s` seconds
        (default: the batcher's `timeout_s`). However it ends early (also when the
        caller cancels it), the request's waiting texts leave the pool.
        """
        self._check_room(len(texts))
        loop = asyncio.get_running_loop()
        tokens = tokenize(self.tokenizer, texts, self.max_length, self.long_text)
        request = _Request(empty_outputs(self.specs, len(texts)), tokens.truncated, len(texts), loop.create_future(), loop)
        types, lengths = tokens.token_type_ids, tokens.lengths
        with self._condition:
            self._check_room(len(texts))
            for row in range(len(tokens)):
                rows = tokens.rows_of([row])
                ids = [tokens.input_ids[r] for r in rows]
                self._pool.append(_Text(next(self._arrivals), int(lengths[row]), ids, [types[r] for r in rows] if types is not None else None, request, row))
            self._condition.notify_all()
        timeout_s = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return await asyncio.wait_for(request.future, timeout_s)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the model gave no predictions within {timeout_s:g} s") from None
        finally:
            if not request.future.done() or request.future.cancelled() or request.future.exception() is not None:
                self._withdraw(request)

    def _check_room(self, n: int) -> None:
        if self._started and not any(status.alive for status in self.worker_status()):
            raise Unavailable("no model worker is alive")
        if len(self._pool) + n > self.max_pending:
            raise Overloaded(f"{len(self._pool)} texts are waiting for the model, and {n} more would pass the limit of {self.max_pending}")

    def _withdraw(self, request: _Request) -> None:
        with self._condition:
            request.closed = True
            self._pool = [t for t in self._pool if t.request is not request]

    def _next_batch(self) -> list[_Text] | None:
        """Wait for work; take the oldest text and the `batch_size - 1` closest to it in length.

        Returns None after a second without work, and [] when stopping.
        """
        with self._condition:
            while True:
                if not self._pool and not self._stopping and not self._condition.wait(timeout=_IDLE_CHECK_S):
                    return None
                if self._stopping:
                    return []
                if len(self._pool) < self.batch_size:
                    # A short wait lets requests that are arriving together share the batch.
                    self._condition.wait_for(lambda: len(self._pool) >= self.batch_size or self._stopping, timeout=self.wait)
                if self._pool:  # another worker (or a withdrawal) may have emptied it meanwhile
                    break
            oldest = min(self._pool)
            by_distance = sorted(self._pool, key=lambda t: (abs(t.length - oldest.length), t.arrival))
            batch = by_distance[: self.batch_size]
            taken = {id(t) for t in batch}
            self._pool = [t for t in self._pool if id(t) not in taken]
            return batch

    def _work(self, worker: _Worker) -> None:
        while (batch := self._next_batch()) != []:
            if batch is None:
                self._revive(worker)
                continue
            worker.busy_since = time.monotonic()
            try:
                self._run(worker.backend, batch)
            except Exception as exc:  # whatever failed, the batch's requests hear of it and the thread goes on
                logger.exception("a model batch failed")
                self._fail((t.request for t in batch), exc)
            finally:
                worker.busy_since = None

    def _run(self, backend: Backend, batch: list[_Text]) -> None:
        live = [t for t in batch if not t.request.closed]
        if not live:
            return
        types = [types for t in live for types in t.token_type_ids] if live[0].token_type_ids is not None else None  # type: ignore[union-attr]
        batch = collate_rows([ids for t in live for ids in t.input_ids], types, self.pad_id)
        if self.long_text.windowed:
            batch["window_document"] = window_documents([len(t.input_ids) for t in live])
        results = backend.run(batch)
        with self._lock:
            for position, text in enumerate(live):
                request = text.request
                for name, values in results.items():
                    request.outputs[name][text.row] = values[position]
                request.remaining -= 1
                if request.remaining == 0 and not request.closed:
                    self._complete(request)

    @staticmethod
    def _complete(request: _Request) -> None:
        """Hand a request its predictions, or the `ModelOutputError` of a non-finite one."""
        try:
            require_finite(request.outputs)
        except ModelOutputError as exc:
            request.closed = True
            request.finish(exc)
            return
        request.finish()

    def _fail(self, requests: Iterable[_Request], error: BaseException) -> None:
        with self._lock:
            for request in {id(r): r for r in requests}.values():
                request.closed = True
                request.finish(error)

    def _revive(self, worker: _Worker) -> None:
        """Start an idle worker's dead model process again, so that it is ready before work comes."""
        revive = getattr(worker.backend, "revive", None)
        if revive is None or getattr(worker.backend, "alive", True) or time.monotonic() < worker.revive_after:
            return
        try:
            revive()
        except Exception as exc:  # noqa: BLE001 - tried again after a while, or by the next batch
            worker.revive_after = time.monotonic() + _REVIVE_BACKOFF_S
            logger.error("could not restart a model process: %s", exc)
