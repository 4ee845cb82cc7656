"""The HTTP service over real loopback sockets: `textheads serve` in a subprocess,
and the app under uvicorn in a thread with real backends that fail or block."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import train_toy_model
from service import free_port, serving
from textheads import TextClassifier

TEXTS = ["python code bug", "oven pasta salt garlic soup", "sleep", "中文 学习", "doctor stretch water exercise rest " * 3]
KEY = "s3cret"
BODY_LIMIT = 60_000


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    train_toy_model(tiny_encoder_dir, root, epochs=2)
    return root / "model"


def _wait_until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:g} s for {what}")
        time.sleep(0.05)


@dataclass
class Server:
    client: httpx.Client
    process: subprocess.Popen
    model_processes: bool

    @property
    def port(self) -> int:
        return self.client.base_url.port or 80


@pytest.fixture(scope="module", params=[[], ["--in-process"]], ids=["model-processes", "in-process"])
def server(model_dir: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The real service on a loopback port: its model in two child processes (the
    default), or in two threads of the HTTP process."""
    limits = ["--max-texts", "8", "--max-chars", "500", "--max-body-bytes", str(BODY_LIMIT)]
    with (
        serving(model_dir, *limits, *request.param, api_key=KEY) as (process, base),
        httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=60) as client,
    ):
        yield Server(client, process, model_processes=not request.param)


def test_predictions_equal_the_python_api(server: Server, model_dir: Path) -> None:
    response = server.client.post("/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    records = response.json()["predictions"]
    expected = TextClassifier.load(model_dir).predict_records(TEXTS)
    for got, want in zip(records, expected, strict=True):
        assert got["topics"]["labels"] == want["topics"]["labels"]
        assert got["level"]["label"] == want["level"]["label"]
        for label, p in want["topics"]["probabilities"].items():
            assert got["topics"]["probabilities"][label] == pytest.approx(p, abs=1e-5)
        assert got["score"]["value"] == pytest.approx(want["score"]["value"], abs=1e-4)


def test_head_selection_and_request_thresholds(server: Server) -> None:
    body = {"texts": ["python"], "heads": ["topics"], "thresholds": {"topics": 0.0}}
    [record] = server.client.post("/predict", json=body).json()["predictions"]
    assert set(record) == {"topics", "truncated"}
    assert record["topics"]["labels"] == ["code", "cook", "health"]


def test_request_thresholds_for_some_labels_keep_the_stored_ones_of_the_others(model_dir: Path, tmp_path: Path) -> None:
    # A model whose stored thresholds take every label; the request sets only "code".
    classifier = TextClassifier.load(model_dir)
    classifier.set_thresholds("topics", {"code": 0.0, "cook": 0.0, "health": 0.0})
    classifier.save(tmp_path / "model")
    probabilities = classifier.predict_proba(TEXTS)["topics"]
    text = next((t for t, p in zip(TEXTS, probabilities, strict=True) if min(p[1:]) < 0.5), None)
    assert text is not None, "a text with cook or health under 0.5 shows the stored thresholds apply"
    with _running(tmp_path / "model") as (base, _):
        response = httpx.post(f"{base}/predict", json={"texts": [text], "thresholds": {"topics": {"code": 1.0}}}, timeout=60)
    [record] = response.json()["predictions"]
    assert record["topics"]["labels"] == ["cook", "health"]  # stored 0.0 for both, not 0.5


def test_model_and_docs(server: Server, model_dir: Path, tiny_encoder_dir: Path) -> None:
    response = server.client.get("/model")
    info = response.json()
    assert info["heads"]["topics"]["labels"] == ["code", "cook", "health"]
    assert info["heads"]["level"]["kind"] == "multiclass" and info["textheads_version"]
    assert info["model_workers"]["count"] == 2
    assert info["limits"]["max_texts"] == 8
    # No local path: the encoder (a local folder here) by its final name only.
    assert info["encoder"] == tiny_encoder_dir.name
    for path in (model_dir, tiny_encoder_dir, model_dir.parent.parent):
        assert str(path) not in response.text
    document = server.client.get("/openapi.json").json()
    assert str(model_dir.parent) not in json.dumps(document)
    assert document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PredictResponse"}


def test_the_openapi_document_declares_what_predict_answers(server: Server) -> None:
    document = server.client.get("/openapi.json").json()
    responses = document["paths"]["/predict"]["post"]["responses"]
    assert {"200", "401", "413", "422", "500", "503", "504"} <= set(responses)
    for status in ("401", "413", "422", "500", "503", "504"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    schemas = document["components"]["schemas"]
    record = schemas["Prediction"]["properties"]
    assert set(record) == {"topics", "level", "score", "truncated"}
    request = schemas["PredictRequest"]["properties"]
    assert request["heads"]["anyOf"][0]["items"]["enum"] == ["topics", "level", "score"]
    assert set(request["thresholds"]["anyOf"][0]["properties"]) == {"topics"}
    assert request["texts"]["maxItems"] == 8 and request["texts"]["items"]["maxLength"] == 500


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        ({"texts": []}, 422, "texts", "give at least one text"),
        ({"texts": ["ok", ""]}, 422, "texts.1", "text is empty"),
        ({"texts": ["ok", " \n\t"]}, 422, "texts.1", "text is empty"),
        ({"texts": "not a list"}, 422, "texts", "valid list"),
        ({"texts": [1, 2]}, 422, "texts.0", "valid string"),
        ({}, 422, "texts", "Field required"),
        ({"texts": ["x"], "head": ["topics"]}, 422, "head", "Extra inputs are not permitted"),
        ({"texts": ["x"] * 9}, 413, "texts", "9 texts is over the limit of 8 per request"),
        ({"texts": ["x" * 501]}, 413, "texts.0", "text of 501 characters is over the limit of 500"),
        ({"texts": ["x"], "heads": ["nope"]}, 422, "heads.0", "unknown head 'nope'"),
        ({"texts": ["x"], "heads": []}, 422, "heads", "give at least one head"),
        ({"texts": ["x"], "heads": ["level"], "thresholds": {"topics": 0.3}}, 422, "thresholds.topics", "not among the requested heads ['level']"),
        ({"texts": ["x"], "thresholds": {"level": 0.3}}, 422, "thresholds.level", "thresholds apply to multilabel heads"),
        ({"texts": ["x"], "thresholds": {"topics": {"zzz": 0.3}}}, 422, "thresholds.topics", "unknown labels ['zzz']"),
        ({"texts": ["x"], "thresholds": {"topics": 1.5}}, 422, "thresholds.topics", "between 0 and 1"),
        ({"texts": ["x"], "thresholds": {"topics": True}}, 422, "thresholds.topics", "between 0 and 1"),
        ({"texts": ["x"], "thresholds": {"topics": {"code": "0.5"}}}, 422, "thresholds.topics", "between 0 and 1"),
    ],
)
def test_bad_requests(server: Server, body: dict, status: int, field: str, message: str) -> None:
    response = server.client.post("/predict", json=body)
    assert response.status_code == status
    problem = response.json()["detail"][0]  # [1, 2] has two
    assert problem["field"] == field and message in problem["message"]


def test_malformed_json_a_lone_surrogate_and_an_oversized_body(server: Server) -> None:
    json_headers = {"Content-Type": "application/json"}
    response = server.client.post("/predict", content=b'{"texts": [', headers=json_headers)
    assert response.status_code == 422 and "JSON" in response.text
    surrogate = server.client.post("/predict", content=b'{"texts": ["ok", "a\\ud800"]}', headers=json_headers)
    assert surrogate.status_code == 422 and surrogate.json()["detail"][0]["field"] == "texts.1"
    big = server.client.post("/predict", json={"texts": ["a" * 400] * 200})
    assert big.status_code == 413
    assert big.json() == {"detail": [{"field": "body", "message": f"request body is over the limit of {BODY_LIMIT} bytes"}]}


def _over_the_limit() -> bytes:
    """A valid request padded with white space to 20 MB: far more than socket buffers hold,
    so a server that answers without reading it resets the connection under the client."""
    return b'{"texts": ["python"]' + b" " * 20_000_000 + b"}"


def test_a_body_over_the_limit_gets_its_413_in_urllib(server: Server) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/predict", data=_over_the_limit(), headers={"Content-Type": "application/json", "X-API-Key": KEY})
    with pytest.raises(urllib.error.HTTPError) as raised:  # not URLError("connection reset by peer")
        urllib.request.urlopen(request, timeout=60)
    assert raised.value.code == 413
    assert "over the limit" in json.loads(raised.value.read())["detail"][0]["message"]


def test_a_body_over_the_limit_gets_its_413_in_httpx_on_a_connection_that_stays_open(server: Server) -> None:
    def local_port(response: httpx.Response) -> int:
        return response.extensions["network_stream"].get_extra_info("client_addr")[1]

    with httpx.Client(base_url=str(server.client.base_url), headers={"X-API-Key": KEY}, timeout=60) as client:
        big = client.post("/predict", content=_over_the_limit(), headers={"Content-Type": "application/json"})
        assert big.status_code == 413
        first_port = local_port(big)
        after = client.post("/predict", json={"texts": ["python"]})
        assert after.status_code == 200
        # The body was drained, so the same connection served the next request.
        assert local_port(after) == first_port


def _chunked(port: int, chunks: list[bytes], headers: str = "") -> tuple[int, bytes]:
    """POST /predict with Transfer-Encoding: chunked (no Content-Length) over a raw socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n{headers}\r\n"
        sock.sendall(head.encode())
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def test_a_chunked_body_is_counted_as_it_arrives(server: Server) -> None:
    padding = [b" " * 10_000] * 20  # 200 kB without a Content-Length
    status, body = _chunked(server.port, [b'{"texts": ["python"]', *padding, b"}"])
    assert status == 413 and b"over the limit" in body
    status, body = _chunked(server.port, [b'{"texts": ', b'["python", ', b'"sleep"]}'])
    assert status == 200 and len(json.loads(body)["predictions"]) == 2


def test_a_declared_length_far_over_the_limit_is_answered_without_reading(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: {10**12}\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413


def test_api_key_is_required_except_for_health(server: Server) -> None:
    base = str(server.client.base_url)
    assert httpx.get(f"{base}/health").status_code == 200
    denied = httpx.post(f"{base}/predict", json={"texts": ["x"]})
    assert denied.status_code == 401 and denied.json()["detail"][0]["field"] == "X-API-Key"
    assert httpx.get(f"{base}/model", headers={"X-API-Key": "wrong"}).status_code == 401
    assert httpx.get(f"{base}/docs").status_code == 401
    assert httpx.get(f"{base}/model", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_health_reports_the_model_workers(server: Server) -> None:
    health = httpx.get(f"{server.client.base_url}/health").json()
    assert health["status"] == "ok" and health["pending_texts"] == 0
    assert [worker["alive"] for worker in health["workers"]] == [True, True]


def test_a_burst_of_concurrent_requests_all_succeed(server: Server) -> None:
    def call(i: int) -> tuple[int, list]:
        response = server.client.post("/predict", json={"texts": [TEXTS[i % len(TEXTS)], f"python {i}"]})
        return response.status_code, response.json()["predictions"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(64)))
    assert all(status == 200 for status, _ in results)
    # Each answer belongs to its own request, whatever batch it shared.
    solo = server.client.post("/predict", json={"texts": [TEXTS[0], "python 0"]}).json()["predictions"]
    assert results[0][1][0]["topics"]["probabilities"] == pytest.approx(solo[0]["topics"]["probabilities"], abs=1e-5)


def _model_processes(server_pid: int) -> list[int]:
    """The model processes that `multiprocessing` spawned for the server."""
    # Each thread has its own list: the processes are started from worker threads.
    children = [pid for task in Path(f"/proc/{server_pid}/task").iterdir() for pid in (task / "children").read_text().split()]
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_model_processes_killed_mid_batch_fail_their_request_with_503_and_come_back(server: Server) -> None:
    if not server.model_processes or not Path("/proc/self/task").exists():
        pytest.skip("needs the model in child processes, found through /proc")
    processes = _model_processes(server.process.pid)
    assert len(processes) == 2
    for pid in processes:
        os.kill(pid, signal.SIGSTOP)  # hold them, so that the batch is surely in flight when they die
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(server.client.post, "/predict", json={"texts": ["python"]})
            _wait_until(lambda: any(w.get("busy") for w in server.client.get("/health").json().get("workers", [])), "a worker to run the batch")
            for pid in processes:
                os.kill(pid, signal.SIGKILL)
            response = pending.result(timeout=60)
    finally:  # never leave stopped processes behind, whatever failed
        for pid in processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "model process died" in response.json()["detail"][0]["message"]
    # Restarted (while idle, or for the next batch), the service answers again.
    _wait_until(lambda: server.client.get("/health").json()["workers"] == [{"alive": True, "busy": False}] * 2, "both model processes to be back")
    assert server.client.post("/predict", json={"texts": ["python"]}).status_code == 200
    assert not set(processes) & set(_model_processes(server.process.pid))


def test_a_warning_when_serving_beyond_loopback_without_a_key() -> None:
    from textheads.serving.app import exposure_warning

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_warning(host, None) is None
    assert exposure_warning("0.0.0.0", "key") is None
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org"):
        assert "without an API key" in (exposure_warning(host, None) or "")


def test_limits_refuse_a_pool_smaller_than_one_request() -> None:
    from textheads.errors import ConfigError
    from textheads.serving.app import Limits

    with pytest.raises(ConfigError, match=r"max_pending \(100, --max-pending\) must be at least max_texts \(256, --max-texts\)"):
        Limits(max_pending=100)
    with pytest.raises(ConfigError, match="timeout_s must be a positive number of seconds"):
        Limits(timeout_s=0)


def test_the_cli_prints_the_warning_on_start(model_dir: Path) -> None:
    # 192.0.2.1 is reserved for documentation: no interface has it, so the bind fails
    # right after the warning and nothing listens beyond loopback.
    env = {k: v for k, v in os.environ.items() if k != "TEXTHEADS_API_KEY"}
    args = [sys.executable, "-m", "textheads", "serve", str(model_dir), "--host", "192.0.2.1", "--port", str(free_port()), "--in-process", "--workers", "1"]
    result = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Warning: serving on 192.0.2.1 without an API key" in result.stderr


# --- The app under uvicorn in a thread, with real backends that fail or block -------------


@contextmanager
def _running(model_dir: Path, backends: list | None = None, **limits: Any) -> Iterator[tuple[str, Any]]:
    """The app on a loopback port, served by uvicorn in a thread of this process."""
    import uvicorn

    from textheads.serving.app import Limits, create_app

    options = {"workers": 1, "model_processes": False, **limits}
    app = create_app(model_dir, api_key="", limits=Limits(**options), backends=backends)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


class Gated:
    """A real backend around the model's: runs each batch only once let through, and
    records how many texts each batch held."""

    def __init__(self, backend: Any) -> None:
        self.backend, self.specs, self.max_length = backend, backend.specs, backend.max_length
        self.gate, self.batches = threading.Event(), []

    def run(self, batch: dict) -> dict:
        self.batches.append(len(batch["input_ids"]))
        if not self.gate.wait(timeout=120):
            raise RuntimeError("the test never opened the gate")
        return self.backend.run(batch)


class Failing:
    """A real backend that fails: inside its run, or (`bad_outputs`) by returning one row
    too few, so that the failure comes after the run, where the batcher distributes rows."""

    def __init__(self, backend: Any, *, bad_outputs: bool, times: int = 1) -> None:
        self.backend, self.specs, self.max_length = backend, backend.specs, backend.max_length
        self.bad_outputs, self.times = bad_outputs, times

    def run(self, batch: dict) -> dict:
        outputs = self.backend.run(batch)
        if self.times <= 0:
            return outputs
        self.times -= 1
        if not self.bad_outputs:
            raise RuntimeError("the model ran out of memory")
        return {name: values[:-1] for name, values in outputs.items()}


@pytest.fixture(scope="module")
def torch_backend(model_dir: Path) -> Any:
    return TextClassifier.load(model_dir).backend_


def _health(base: str) -> dict:
    return httpx.get(f"{base}/health", timeout=30).json()


def test_over_max_pending_texts_a_request_gets_503_with_retry_after(model_dir: Path, torch_backend: Any) -> None:
    gated = Gated(torch_backend)
    with _running(model_dir, [gated], max_texts=2, max_pending=2) as (base, _), concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(httpx.post, f"{base}/predict", json={"texts": ["python"]}, timeout=120)
        _wait_until(lambda: _health(base)["workers"][0]["busy"], "the first request's batch to start")
        second = pool.submit(httpx.post, f"{base}/predict", json={"texts": ["oven soup", "sleep well"]}, timeout=120)
        _wait_until(lambda: _health(base)["pending_texts"] == 2, "the second request to wait")
        refused = httpx.post(f"{base}/predict", json={"texts": ["bug"]}, timeout=60)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert "would pass the limit of 2" in refused.json()["detail"][0]["message"]
        gated.gate.set()
        assert first.result().status_code == 200 and second.result().status_code == 200
    assert gated.batches == [1, 2]


def test_a_client_that_disconnects_withdraws_its_texts(model_dir: Path, torch_backend: Any) -> None:
    gated = Gated(torch_backend)
    with _running(model_dir, [gated]) as (base, _), concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{base}/predict", json={"texts": ["python"]}, timeout=120)
        _wait_until(lambda: _health(base)["workers"][0]["busy"], "the first request's batch to start")
        port = int(base.rsplit(":", 1)[1])
        body = json.dumps({"texts": ["oven soup", "sleep well"]}).encode()
        with socket.create_connection(("127.0.0.1", port)) as leaving:
            leaving.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            _wait_until(lambda: _health(base)["pending_texts"] == 2, "the second request to wait")
        _wait_until(lambda: _health(base)["pending_texts"] == 0, "the texts of the client that left to leave the pool")
        gated.gate.set()
        assert first.result().status_code == 200
    assert gated.batches == [1]  # no pass was spent on the texts of the client that left


def test_a_backend_that_raises_fails_its_request_with_a_500_and_the_service_goes_on(model_dir: Path, torch_backend: Any) -> None:
    with _running(model_dir, [Failing(torch_backend, bad_outputs=False)]) as (base, _):
        failed = httpx.post(f"{base}/predict", json={"texts": ["python"]}, timeout=60)
        assert failed.status_code == 500
        assert failed.json() == {"detail": [{"field": None, "message": "the model failed on a batch that held this request's texts; the service log has the details"}]}
        assert httpx.post(f"{base}/predict", json={"texts": ["python"]}, timeout=60).status_code == 200


def test_a_failure_after_the_backend_ran_fails_its_request_instead_of_hanging_it(model_dir: Path, torch_backend: Any) -> None:
    with _running(model_dir, [Failing(torch_backend, bad_outputs=True)]) as (base, _):
        # On one worker thread: before the fix, the thread died here and both requests hung.
        assert httpx.post(f"{base}/predict", json={"texts": ["python", "sleep"]}, timeout=60).status_code == 500
        assert httpx.post(f"{base}/predict", json={"texts": ["python"]}, timeout=60).status_code == 200
        assert _health(base)["status"] == "ok"


def test_a_stuck_model_times_out_with_504_and_health_says_so_until_it_recovers(model_dir: Path, torch_backend: Any) -> None:
    gated = Gated(torch_backend)
    with _running(model_dir, [gated], timeout_s=1.0) as (base, _):
        stuck = httpx.post(f"{base}/predict", json={"texts": ["python"]}, timeout=60)
        assert stuck.status_code == 504 and "within 1 s" in stuck.json()["detail"][0]["message"]
        _wait_until(lambda: httpx.get(f"{base}/health", timeout=30).status_code == 503, "health to report the stuck worker")
        assert _health(base) == {"status": "unavailable", "workers": [{"alive": False, "busy": True}], "pending_texts": 0}
        refused = httpx.post(f"{base}/predict", json={"texts": ["python"]}, timeout=60)
        assert refused.status_code == 503 and "no model worker is alive" in refused.text
        gated.gate.set()
        _wait_until(lambda: httpx.get(f"{base}/health", timeout=30).status_code == 200, "the worker to recover")
        assert httpx.post(f"{base}/predict", json={"texts": ["python"]}, timeout=60).status_code == 200


# --- Fuzzed from its own OpenAPI document ---------------------------------------------------

FUZZ_CONFIG = """
[checks.negative_data_rejection]
# The document declares 413 for the limits it states (maxItems, maxLength).
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


def test_every_answer_matches_the_openapi_document(server: Server, tmp_path: Path) -> None:
    """schemathesis generates requests from the service's own document, valid and invalid,
    and runs every check it has on the answers: no 5xx; status codes, content types,
    headers and bodies as documented; valid data accepted, invalid data refused; the
    API key enforced. Its command line, not its pytest plugin: that one reaches into
    pytest's internals."""
    pytest.importorskip("schemathesis")
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG, encoding="utf-8")
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run", f"{server.client.base_url}/openapi.json",
        "--header", f"X-API-Key: {KEY}", "--checks", "all", "--mode", "all", "--max-examples", "30", "--seed", "14",
        "--generation-deterministic", "--request-timeout", "60", "--workers", "1",
    ]  # fmt: skip
    result = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


# --- What the HTTP process loads ----------------------------------------------------------

_LOADED_IN_THE_HTTP_PROCESS = """
import gc, json, sys
import torch
from starlette.testclient import TestClient
from textheads.serving.app import Limits, create_app

app = create_app(sys.argv[1], api_key="", limits=Limits(workers=1, model_processes=sys.argv[2] == "processes", device="cpu"))
with TestClient(app) as client:
    answer = client.post("/predict", json={"texts": ["python code bug"]})
    info = client.get("/model").json()
modules = [o for o in gc.get_objects() if isinstance(o, torch.nn.Module)]
weights = sum(t.numel() for m in modules for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)])
with open("/proc/self/maps") as maps:
    mapped = "model.safetensors" in maps.read()
print(json.dumps({"status": answer.status_code, "modules": sorted({type(m).__name__ for m in modules}), "weights": weights, "mapped": mapped, "device": info["device"], "precision": info["precision"]}))
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps (Linux)")
def test_with_model_processes_the_http_process_loads_no_weights(model_dir: Path) -> None:
    def loaded(mode: str) -> dict:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        result = subprocess.run([sys.executable, "-c", _LOADED_IN_THE_HTTP_PROCESS, str(model_dir), mode], env=env, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    with_processes = loaded("processes")
    assert with_processes["status"] == 200
    # (transformers keeps a few weightless activation modules at import)
    assert with_processes["weights"] == 0 and "TextHeadsModel" not in with_processes["modules"] and not with_processes["mapped"]
    assert (with_processes["device"], with_processes["precision"]) == ("cpu", "fp32")
    in_process = loaded("in-process")  # the check sees a model where there is one
    assert in_process["status"] == 200 and "TextHeadsModel" in in_process["modules"] and in_process["weights"] > 0
