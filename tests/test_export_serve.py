"""ONNX export parity, and the HTTP service over real loopback sockets."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import three_head_config
from textheads import TextClassifier
from textheads.cli import main
from textheads.config import build_config

TEXTS = ["python code bug", "oven pasta salt garlic soup", "sleep", "中文 学习", "doctor stretch water exercise rest " * 3]


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import make_rows, write_jsonl

    root = tmp_path_factory.mktemp("served")
    files = {
        "train": write_jsonl(root / "train.jsonl", make_rows(96, seed=1)),
        "validation": write_jsonl(root / "dev.jsonl", make_rows(30, seed=2)),
        "test": write_jsonl(root / "test.jsonl", make_rows(30, seed=3)),
    }
    raw = three_head_config(tiny_encoder_dir, files, root / "model", epochs=3)
    raw["heads"]["topics"]["hidden_sizes"] = [16]
    TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    return root / "model"


def test_onnx_fp32_matches_pytorch(model_dir: Path, tmp_path: Path) -> None:
    assert main(["export", str(model_dir), "--format", "onnx", "--output", str(tmp_path / "onnx")]) == 0
    assert {"model.onnx", "config.json", "textheads_onnx.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "onnx").iterdir()}
    torch_clf = TextClassifier.load(model_dir)
    assert torch_clf.model_.reads_tokens  # the default convolutional classification heads are in the graph
    torch_out = torch_clf.predict_proba(TEXTS)
    onnx_clf = TextClassifier.load(tmp_path / "onnx")
    assert type(onnx_clf.backend_).__name__ == "OnnxBackend"
    onnx_out = onnx_clf.predict_proba(TEXTS)
    for head in torch_out:
        np.testing.assert_allclose(onnx_out[head], torch_out[head], atol=1e-4)
    # The same decisions; regression values equal to float32 rounding.
    for onnx_row, torch_row in zip(onnx_clf.predict(TEXTS), TextClassifier.load(model_dir).predict(TEXTS), strict=True):
        assert onnx_row["score"] == pytest.approx(torch_row["score"], abs=1e-4)
        assert {k: v for k, v in onnx_row.items() if k != "score"} == {k: v for k, v in torch_row.items() if k != "score"}


def test_onnx_int8_is_close(model_dir: Path, tmp_path: Path) -> None:
    assert main(["export", str(model_dir), "--quantize", "int8", "--output", str(tmp_path / "int8")]) == 0
    torch_out = TextClassifier.load(model_dir).predict_proba(TEXTS)
    int8 = TextClassifier.load(tmp_path / "int8").predict_proba(TEXTS)
    for head in ("topics", "level"):
        np.testing.assert_allclose(int8[head], torch_out[head], atol=0.05)


def test_pooled_classification_heads_export(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    # The module's model has the default convolutional classification heads; this one
    # has heads on the pooled vector.
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", max_steps=2)
    for head in ("topics", "level"):
        raw["heads"][head]["conv_kernel_sizes"] = []
    clf = TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    assert not clf.model_.reads_tokens
    exported = clf.export_onnx(tmp_path / "onnx")
    onnx_out = TextClassifier.load(exported).predict_proba(TEXTS)
    for head, values in clf.predict_proba(TEXTS).items():
        np.testing.assert_allclose(onnx_out[head], values, atol=1e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=[[], ["--in-process"]], ids=["model-processes", "in-process"])
def server(model_dir: Path, request: pytest.FixtureRequest):
    """The real service on a loopback port: its model in two child processes (the
    default), or in two threads of the HTTP process."""
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TEXTHEADS_API_KEY": "s3cret"}
    args = [sys.executable, "-m", "textheads", "serve", str(model_dir), "--port", str(port), "--max-texts", "8", "--max-chars", "500", "--max-body-bytes", "20000", *request.param]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"server did not start: {process.stdout.read()}")
    client = httpx.Client(base_url=base, headers={"X-API-Key": "s3cret"}, timeout=30)
    yield client
    client.close()
    process.terminate()
    process.wait(timeout=10)


def test_predictions_equal_the_python_api(server: httpx.Client, model_dir: Path) -> None:
    response = server.post("/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    records = response.json()["predictions"]
    expected = TextClassifier.load(model_dir).predict_records(TEXTS)
    for got, want in zip(records, expected, strict=True):
        assert got["topics"]["labels"] == want["topics"]["labels"]
        assert got["level"]["label"] == want["level"]["label"]
        for label, p in want["topics"]["probabilities"].items():
            assert got["topics"]["probabilities"][label] == pytest.approx(p, abs=1e-5)
        assert got["score"]["value"] == pytest.approx(want["score"]["value"], abs=1e-4)


def test_head_selection_and_request_thresholds(server: httpx.Client) -> None:
    body = {"texts": ["python"], "heads": ["topics"], "thresholds": {"topics": 0.0}}
    [record] = server.post("/predict", json=body).json()["predictions"]
    assert set(record) == {"topics", "truncated"}
    assert record["topics"]["labels"] == ["code", "cook", "health"]


def test_model_and_docs(server: httpx.Client) -> None:
    info = server.get("/model").json()
    assert info["heads"]["topics"]["labels"] == ["code", "cook", "health"]
    assert info["heads"]["level"]["kind"] == "multiclass" and info["textheads_version"]
    assert info["model_workers"]["count"] == 2
    assert server.get("/openapi.json").json()["paths"]["/predict"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"texts": []}, 422, "give at least one text"),
        ({"texts": ["ok", ""]}, 422, "text is empty"),
        ({"texts": "not a list"}, 422, "valid list"),
        ({"texts": [1, 2]}, 422, "valid string"),
        ({}, 422, "Field required"),
        ({"texts": ["x"] * 9}, 413, "9 texts is over the limit of 8 per request"),
        ({"texts": ["x" * 501]}, 413, "text of 501 characters is over the limit of 500"),
        ({"texts": ["x"], "heads": ["nope"]}, 422, "unknown head 'nope'"),
        ({"texts": ["x"], "thresholds": {"level": 0.3}}, 422, "thresholds apply to multilabel heads"),
        ({"texts": ["x"], "thresholds": {"topics": {"zzz": 0.3}}}, 422, "unknown labels ['zzz']"),
        ({"texts": ["x"], "thresholds": {"topics": 1.5}}, 422, "between 0 and 1"),
    ],
)
def test_bad_requests(server: httpx.Client, body: dict, status: int, message: str) -> None:
    response = server.post("/predict", json=body)
    assert response.status_code == status
    assert message in json.dumps(response.json())


def test_malformed_json_and_oversized_body(server: httpx.Client) -> None:
    response = server.post("/predict", content=b'{"texts": [', headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.text
    big = server.post("/predict", json={"texts": ["a" * 400] * 60})
    assert big.status_code == 413 and "over the limit of 20000 bytes" in big.text


def test_api_key_is_required_except_for_health(server: httpx.Client) -> None:
    base = str(server.base_url)
    assert httpx.get(f"{base}/health").status_code == 200
    assert httpx.post(f"{base}/predict", json={"texts": ["x"]}).status_code == 401
    assert httpx.get(f"{base}/model", headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.get(f"{base}/docs").status_code == 401
    assert httpx.get(f"{base}/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_burst_of_concurrent_requests_all_succeed(server: httpx.Client) -> None:
    def call(i: int) -> tuple[int, list]:
        response = server.post("/predict", json={"texts": [TEXTS[i % len(TEXTS)], f"python {i}"]})
        return response.status_code, response.json()["predictions"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(64)))
    assert all(status == 200 for status, _ in results)
    # Each answer belongs to its own request, whatever batch it shared.
    solo = server.post("/predict", json={"texts": [TEXTS[0], "python 0"]}).json()["predictions"]
    assert results[0][1][0]["topics"]["probabilities"] == pytest.approx(solo[0]["topics"]["probabilities"], abs=1e-5)
