"""Continuous, length-aware batching of concurrent prediction requests.

The texts of every pending request wait in one pool. A model thread takes
the oldest waiting text and the waiting texts closest to it in token length,
runs them as one padded batch, and hands each request its predictions as soon
as its last text is done. So the model never idles while work waits, batches
pad little even though each request brings only a few texts, and the oldest
text always goes next (no request starves behind shorter ones).

Each backend given gets its own model thread; with several, they take
batches from the pool at once. The service gives each thread a model in a
child process (see `textheads.model_process`), so that passes run side by
side without sharing the interpreter lock.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from transformers import PreTrainedTokenizerBase

from textheads.backends import Backend
from textheads.batching import collate_rows, tokenize
from textheads.predict import Predictions, empty_outputs, pad_id


@dataclass
class _Request:
    outputs: dict[str, np.ndarray]
    truncated: np.ndarray
    remaining: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    failed: bool = False

    def finish(self, error: BaseException | None = None) -> None:
        def settle() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(Predictions(self.outputs, self.truncated))

        self.loop.call_soon_threadsafe(settle)


@dataclass(order=True)
class _Text:
    arrival: int
    length: int = field(compare=False)
    input_ids: list[int] = field(compare=False)
    token_type_ids: list[int] | None = field(compare=False)
    request: _Request = field(compare=False)
    row: int = field(compare=False)


class ContinuousBatcher:
    """Runs the texts of concurrent requests through its backends in shared, length-matched batches."""

    def __init__(self, backends: Sequence[Backend], tokenizer: PreTrainedTokenizerBase, *, batch_size: int = 16, wait_ms: float = 2.0) -> None:
        if not backends:
            raise ValueError("give at least one backend")
        self.backends, self.tokenizer = list(backends), tokenizer
        self.specs, self.max_length = self.backends[0].specs, self.backends[0].max_length
        self.batch_size, self.wait = batch_size, wait_ms / 1000
        self.pad_id = pad_id(tokenizer)
        self._pool: list[_Text] = []
        self._arrivals = itertools.count()
        self._condition = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, args=(backend,), name=f"textheads-model-{i}", daemon=True) for i, backend in enumerate(self.backends)]
        self._lock = threading.Lock()  # guards the requests' outputs and counts

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    async def predict(self, texts: Sequence[str]) -> Predictions:
        """Predictions for `texts`, in order, once they have been through the model."""
        loop = asyncio.get_running_loop()
        tokens = tokenize(self.tokenizer, texts, self.max_length)
        request = _Request(empty_outputs(self.specs, len(texts)), tokens.truncated, len(texts), loop.create_future(), loop)
        types = tokens.token_type_ids
        with self._condition:
            for row, ids in enumerate(tokens.input_ids):
                self._pool.append(_Text(next(self._arrivals), len(ids), ids, types[row] if types is not None else None, request, row))
            self._condition.notify_all()
        return await request.future

    def _next_batch(self) -> list[_Text]:
        """Wait for work; take the oldest text and the `batch_size - 1` closest to it in length."""
        with self._condition:
            while True:
                while not self._pool and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return []
                if len(self._pool) < self.batch_size:
                    # A short wait lets requests that are arriving together share the batch.
                    self._condition.wait_for(lambda: len(self._pool) >= self.batch_size or self._stopping, timeout=self.wait)
                if self._pool:  # another worker may have taken everything meanwhile
                    break
            oldest = min(self._pool)
            by_distance = sorted(self._pool, key=lambda t: (abs(t.length - oldest.length), t.arrival))
            batch = by_distance[: self.batch_size]
            taken = {id(t) for t in batch}
            self._pool = [t for t in self._pool if id(t) not in taken]
            return batch

    def _work(self, backend: Backend) -> None:
        while batch := self._next_batch():
            live = [t for t in batch if not t.request.failed]
            if not live:
                continue
            types = [t.token_type_ids for t in live] if live[0].token_type_ids is not None else None
            try:
                results = backend.run(collate_rows([t.input_ids for t in live], types, self.pad_id))
            except Exception as exc:  # noqa: BLE001 - one bad batch fails its requests, not the service
                with self._lock:
                    for request in {id(t.request): t.request for t in live}.values():
                        request.failed = True
                        request.finish(exc)
                continue
            with self._lock:
                for position, text in enumerate(live):
                    request = text.request
                    for name, values in results.items():
                        request.outputs[name][text.row] = values[position]
                    request.remaining -= 1
                    if request.remaining == 0 and not request.failed:
                        request.finish()
