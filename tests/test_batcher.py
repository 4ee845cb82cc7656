"""The service's continuous batcher, driven directly with a real model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from conftest import three_head_config
from textheads import TextClassifier
from textheads.batcher import ContinuousBatcher
from textheads.batching import collate_rows
from textheads.config import build_config
from textheads.predict import predict_outputs

TEXTS = ["python", "oven pasta salt garlic soup with many more words", "sleep well", "中文 学习", "doctor " * 20, "bug", "a b c d e f g"]


@pytest.fixture(scope="module")
def classifier(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TextClassifier:
    from conftest import make_rows, write_jsonl

    root = tmp_path_factory.mktemp("batcher")
    files = {"train": write_jsonl(root / "train.jsonl", make_rows(48, seed=1)), "validation": write_jsonl(root / "dev.jsonl", make_rows(12, seed=2))}
    files["test"] = files["validation"]
    raw = three_head_config(tiny_encoder_dir, files, root / "model", epochs=1)
    return TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)


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
    from textheads.model_process import ProcessBackend

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

    from textheads.model_process import ModelProcessError

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
    from textheads.model_process import ModelProcessError, ProcessBackend

    backend = classifier.backend_
    with pytest.raises(ModelProcessError, match=f"could not load {tmp_path}"):
        ProcessBackend(tmp_path, specs=backend.specs, max_length=backend.max_length, threads=1)


def test_a_model_process_runs_an_onnx_export(classifier: TextClassifier, tmp_path: Path) -> None:
    from textheads.backends import OnnxBackend
    from textheads.export import export_onnx
    from textheads.model_process import ProcessBackend

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
