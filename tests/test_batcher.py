"""The service's continuous batcher, driven directly with a real model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from conftest import train_toy_model
from textheads import TextClassifier
from textheads.inference.batching import collate_rows
from textheads.inference.predict import predict_outputs
from textheads.serving.batcher import ContinuousBatcher

TEXTS = ["python", "oven pasta salt garlic soup with many more words", "sleep well", "中文 学习", "doctor " * 20, "bug", "a b c d e f g"]


@pytest.fixture(scope="module")
def classifier(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TextClassifier:
    return train_toy_model(tiny_encoder_dir, tmp_path_factory.mktemp("batcher"), rows=48, validation_rows=12, epochs=1)


class Recording:
    """A real backend that records each batch it runs, and fails on a chosen text length."""

    def __init__(self, backend, fail_width: int | None = None) -> None:  # type: ignore[no-untyped-def]
        self.backend, self.fail_width = backend, fail_width
        self.specs, self.max_length = backend.specs, backend.max_length
        self.widths: list[tuple[int, int]] = []

    def run(self, batch):  # type: ignore[no-untyped-def]
        lengths = batch["attention_mask"].sum(dim=1)
        self.widths.append((len(lengths), int(lengths.max() - lengths.min())))
        if self.fail_width is not None and int(lengths.max()) == self.fail_width:
            raise RuntimeError("backend failed")
        return self.backend.run(batch)


def _run(batcher: ContinuousBatcher, requests: list[list[str]]) -> list:
    """All requests arrive before the model thread starts, so the batches are deterministic."""

    async def main() -> list:
        tasks = [asyncio.ensure_future(batcher.predict(texts)) for texts in requests]
        await asyncio.sleep(0)  # every request is in the pool now
        batcher.start()
        try:
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            batcher.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_requests_share_batches_and_get_their_own_answers(classifier: TextClassifier, workers: int) -> None:
    backend = Recording(classifier.backend_)
    requests = [[TEXTS[(i + j) % len(TEXTS)] for j in range(1 + i % 3)] for i in range(30)]
    results = _run(ContinuousBatcher([backend] * workers, classifier.tokenizer_, batch_size=8, wait_ms=20), requests)
    for texts, result in zip(requests, results, strict=True):
        alone = predict_outputs(classifier.backend_, classifier.tokenizer_, texts)
        for head, values in alone.outputs.items():
            np.testing.assert_allclose(result.outputs[head], values, atol=1e-5)
        np.testing.assert_array_equal(result.truncated, alone.truncated)
    assert sum(n for n, _ in backend.widths) == sum(map(len, requests))
    assert max(n for n, _ in backend.widths) == 8  # texts of different requests ran together


def test_batches_group_texts_of_similar_length(classifier: TextClassifier) -> None:
    backend = Recording(classifier.backend_)
    short, long = "bug", "doctor " * 20
    requests = [[short, long] for _ in range(8)]  # every request brings one short and one long text
    _run(ContinuousBatcher([backend], classifier.tokenizer_, batch_size=8, wait_ms=50), requests)
    assert [spread for _, spread in backend.widths] == [0, 0]  # all shorts together, all longs together


def test_a_failing_batch_fails_only_its_requests(classifier: TextClassifier) -> None:
    width = len(classifier.tokenizer_("doctor " * 20)["input_ids"])
    backend = Recording(classifier.backend_, fail_width=width)
    requests = [["bug"], ["doctor " * 20], ["sleep well"], ["bug", "doctor " * 20]]
    results = _run(ContinuousBatcher([backend], classifier.tokenizer_, batch_size=1), requests)
    assert [isinstance(r, RuntimeError) for r in results] == [False, True, False, True]


@pytest.fixture(scope="module")
def model_processes(classifier: TextClassifier):  # type: ignore[no-untyped-def]
    """Two model processes on the saved model, as the service starts them."""
    from textheads.serving.model_process import ProcessBackend

    backend = classifier.backend_
    backends = [ProcessBackend(classifier.config.output_dir, specs=backend.specs, max_length=backend.max_length, threads=1) for _ in range(2)]
    yield backends
    for each in backends:
        each.close()


def test_model_processes_answer_like_the_python_api(classifier: TextClassifier, model_processes: list) -> None:
    requests = [[TEXTS[(i + j) % len(TEXTS)] for j in range(1 + i % 3)] for i in range(20)]
    results = _run(ContinuousBatcher(model_processes, classifier.tokenizer_, batch_size=4, wait_ms=5), requests)
    for texts, result in zip(requests, results, strict=True):
        alone = predict_outputs(classifier.backend_, classifier.tokenizer_, texts)
        for head, values in alone.outputs.items():
            np.testing.assert_allclose(result.outputs[head], values, atol=1e-5)


def test_a_failing_batch_in_a_model_process_is_reported_and_the_process_goes_on(classifier: TextClassifier, model_processes: list) -> None:
    import torch

    from textheads.serving.model_process import ModelProcessError

    process = model_processes[0]
    out_of_vocabulary = {"input_ids": torch.tensor([[10_000_000, 3]]), "attention_mask": torch.ones(1, 2, dtype=torch.long)}
    with pytest.raises(ModelProcessError, match="failed a batch: IndexError"):
        process.run(out_of_vocabulary)
    batch = collate_rows([classifier.tokenizer_("bug")["input_ids"]], None, 0)
    expected = classifier.backend_.run(batch)
    for head, values in process.run(batch).items():
        np.testing.assert_allclose(values, expected[head], atol=1e-5)


def test_a_killed_model_process_is_started_again(classifier: TextClassifier, model_processes: list) -> None:
    process = model_processes[1]
    batch = collate_rows([classifier.tokenizer_("sleep well")["input_ids"]], None, 0)
    expected = classifier.backend_.run(batch)
    first = process._process.pid
    process._process.kill()
    process._process.join()
    for head, values in process.run(batch).items():
        np.testing.assert_allclose(values, expected[head], atol=1e-5)
    assert process._process.pid != first


def test_a_model_process_that_cannot_load_says_why(tmp_path: Path, classifier: TextClassifier) -> None:
    from textheads.serving.model_process import ModelProcessError, ProcessBackend

    backend = classifier.backend_
    with pytest.raises(ModelProcessError, match=f"could not load {tmp_path}"):
        ProcessBackend(tmp_path, specs=backend.specs, max_length=backend.max_length, threads=1)


def test_a_model_process_runs_an_onnx_export(classifier: TextClassifier, tmp_path: Path) -> None:
    from textheads.export import export_onnx
    from textheads.inference.backends import OnnxBackend
    from textheads.serving.model_process import ProcessBackend

    folder = export_onnx(classifier.config.output_dir, tmp_path / "onnx")
    in_process = OnnxBackend(folder)
    process = ProcessBackend(folder, specs=in_process.specs, max_length=in_process.max_length, threads=1)
    try:
        encoded = [classifier.tokenizer_(text) for text in TEXTS[:3]]
        batch = collate_rows([e["input_ids"] for e in encoded], [e["token_type_ids"] for e in encoded], 0)
        expected = in_process.run(batch)
        for head, values in process.run(batch).items():
            np.testing.assert_allclose(values, expected[head], atol=1e-6)
    finally:
        process.close()


def test_a_full_pool_refuses_a_request_at_once(classifier: TextClassifier) -> None:
    from textheads.serving.batcher import Overloaded

    backend = Recording(classifier.backend_)
    batcher = ContinuousBatcher([backend], classifier.tokenizer_, batch_size=4, max_pending=3)

    async def main() -> list:
        waiting = asyncio.ensure_future(batcher.predict(["bug", "sleep well"]))
        await asyncio.sleep(0)  # in the pool now; the model thread has not started
        with pytest.raises(Overloaded, match="2 texts are waiting for the model, and 2 more would pass the limit of 3"):
            await batcher.predict(["python", "oven"])
        assert batcher.pending == 2
        batcher.start()
        try:
            return [await waiting, await batcher.predict(["python"])]
        finally:
            batcher.stop()

    assert [len(result.truncated) for result in asyncio.run(main())] == [2, 1]
    assert [n for n, _ in backend.widths] == [2, 1]


def test_a_cancelled_request_takes_its_texts_out_of_the_pool(classifier: TextClassifier) -> None:
    backend = Recording(classifier.backend_)
    batcher = ContinuousBatcher([backend], classifier.tokenizer_, batch_size=8)

    async def main() -> None:
        kept = asyncio.ensure_future(batcher.predict(["bug"]))
        leaving = asyncio.ensure_future(batcher.predict(["sleep well", "oven pasta", "doctor"]))
        await asyncio.sleep(0)
        assert batcher.pending == 4
        leaving.cancel()  # as the service does when its client disconnects
        await asyncio.gather(leaving, return_exceptions=True)
        assert batcher.pending == 1
        batcher.start()
        try:
            await kept
        finally:
            batcher.stop()

    asyncio.run(main())
    assert [n for n, _ in backend.widths] == [1]  # no pass was spent on the cancelled texts


def test_a_request_past_its_time_limit_fails_and_leaves_the_pool(classifier: TextClassifier) -> None:
    batcher = ContinuousBatcher([classifier.backend_], classifier.tokenizer_, timeout_s=0.05)

    async def main() -> None:
        with pytest.raises(TimeoutError, match="no predictions within 0.05 s"):
            await batcher.predict(["bug", "sleep"])  # the model thread never started
        assert batcher.pending == 0

    asyncio.run(main())


class OneRowShort:
    """A real backend that, once, returns one row fewer than its batch: the failure
    comes after its run, where the batcher hands rows to requests."""

    def __init__(self, backend) -> None:  # type: ignore[no-untyped-def]
        self.backend, self.specs, self.max_length = backend, backend.specs, backend.max_length
        self.broken = True

    def run(self, batch):  # type: ignore[no-untyped-def]
        outputs = self.backend.run(batch)
        if self.broken:
            self.broken = False
            return {name: values[:-1] for name, values in outputs.items()}
        return outputs


def test_a_failure_outside_the_backend_run_fails_its_batch_and_the_thread_goes_on(classifier: TextClassifier) -> None:
    batcher = ContinuousBatcher([OneRowShort(classifier.backend_)], classifier.tokenizer_, batch_size=4)

    async def main() -> list:
        batcher.start()
        try:
            # Bounded waits: before the fix the thread died and these waited forever.
            first = await asyncio.wait_for(asyncio.gather(batcher.predict(["bug", "sleep"]), return_exceptions=True), 60)
            second = await asyncio.wait_for(batcher.predict(["python"]), 60)
            return [*first, second]
        finally:
            batcher.stop()

    failed, answered = asyncio.run(main())
    assert isinstance(failed, IndexError)
    assert len(answered.truncated) == 1
    assert batcher.worker_status()[0].busy is False


def test_a_model_process_that_gives_no_answer_is_stopped_and_started_again(classifier: TextClassifier, model_processes: list) -> None:
    import os
    import signal

    from textheads.serving.model_process import ModelProcessLost

    process = model_processes[0]
    batch = collate_rows([classifier.tokenizer_("bug")["input_ids"]], None, 0)
    hung = process._process.pid
    os.kill(hung, signal.SIGSTOP)  # alive, but it will never answer
    process.answer_timeout_s = 1.0
    try:
        with pytest.raises(ModelProcessLost, match="gave no answer within 1 s"):
            process.run(batch)
        assert not process.alive
    finally:
        process.answer_timeout_s = None
    expected = classifier.backend_.run(batch)
    for head, values in process.run(batch).items():
        np.testing.assert_allclose(values, expected[head], atol=1e-5)
    assert process._process.pid != hung


class NonFinite(Recording):
    """A real backend whose regression head gives NaN for the longest texts."""

    def run(self, batch):  # type: ignore[no-untyped-def]
        outputs = self.backend.run(batch)
        outputs["score"] = np.where(batch["attention_mask"].sum(dim=1).numpy() > 10, np.nan, outputs["score"]).astype(np.float32)
        return outputs


def test_a_request_with_a_non_finite_answer_fails_instead_of_carrying_it(classifier: TextClassifier) -> None:
    from textheads.errors import ModelOutputError

    results = _run(ContinuousBatcher([NonFinite(classifier.backend_)], classifier.tokenizer_, batch_size=4), [["bug"], ["doctor " * 20]])
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], ModelOutputError) and "head 'score' gave a non-finite output" in str(results[1])
