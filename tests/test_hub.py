"""Models by Hugging Face Hub id and `textheads push`, up to the network's edge.

This machine has no internet, so loading is tested from a Hub cache laid out as
huggingface_hub writes it (blobs, refs, snapshots), and the Hub's refusals from a
small HTTP server on loopback that answers as the Hub does; the upload is tested
up to the files it sends and its one-line errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants, scan_cache_dir
from rich.filesize import decimal

from conftest import train_toy_model
from textheads import TextClassifier
from textheads.cli import main
from textheads.errors import ConfigError, ModelLoadError, UploadError
from textheads.hub.upload import upload_files

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
TEXTS = ["python code and a bug", "bake pasta with garlic", "sleep and exercise"]
RUN_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
             "train_log.jsonl", "training_config.yaml", "training_data.json", "validation_metrics.json"}


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub-model")
    train_toy_model(tiny_encoder_dir, root, epochs=1)
    return root / "model"


@pytest.fixture(scope="module")
def strict_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with every `topics` threshold at 0.99: a second version to tell apart."""
    clf = TextClassifier.load(model_dir, device="cpu")
    clf.set_thresholds("topics", 0.99)
    path = tmp_path_factory.mktemp("hub-strict") / "model"
    clf.save(path)
    return path


@pytest.fixture(scope="module")
def export_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return TextClassifier.load(model_dir, device="cpu").export_onnx(tmp_path_factory.mktemp("hub-onnx") / "onnx", echo=lambda _: None)


def put_in_hub_cache(cache: Path, repo_id: str, files: list[Path], commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay `files` out as huggingface_hub caches a download of `repo_id` at `commit`:
    content-addressed blobs, a snapshot of links to them, and refs naming the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    for file in files:
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, offline, with no token (huggingface_hub reads these
    settings once, at import: its constants are set beside the environment)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    for name, value in (("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", True), ("HF_TOKEN_PATH", str(tmp_path / "no-token"))):
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return cache


@pytest.fixture()
def cached(hub_cache: Path, model_dir: Path, strict_model_dir: Path) -> Path:
    """`org/toy` in the cache: the model at COMMIT_A (main), the strict one at COMMIT_B (tag v2),
    each as the files a push of its folder sends."""
    put_in_hub_cache(hub_cache, "org/toy", upload_files(model_dir), COMMIT_A)
    put_in_hub_cache(hub_cache, "org/toy", upload_files(strict_model_dir), COMMIT_B, refs=("v2",))
    return hub_cache


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


# -- loading by Hub id ----------------------------------------------------------


def test_a_hub_id_loads_from_the_cache_and_predicts_as_the_folder(cached: Path, model_dir: Path) -> None:
    (repo,) = scan_cache_dir(cached).repos  # huggingface_hub reads the cache as laid out
    assert repo.repo_id == "org/toy" and {r.commit_hash for r in repo.revisions} == {COMMIT_A, COMMIT_B}
    by_id = TextClassifier.load("org/toy", device="cpu")
    by_folder = TextClassifier.load(model_dir, device="cpu")
    assert Path(by_id.config.output_dir) == cached / "models--org--toy" / "snapshots" / COMMIT_A
    for head, values in by_folder.predict_proba(TEXTS).items():
        np.testing.assert_allclose(by_id.predict_proba(TEXTS)[head], values, rtol=1e-5, atol=1e-6)
    assert by_id.predict(TEXTS) == by_folder.predict(TEXTS)


@pytest.mark.parametrize("revision", ["v2", COMMIT_B])
def test_revision_picks_a_snapshot_by_ref_or_commit(cached: Path, revision: str) -> None:
    assert set(TextClassifier.load("org/toy", revision=revision, device="cpu").heads_["topics"].thresholds_by_label().values()) == {0.99}
    assert set(TextClassifier.load("org/toy", device="cpu").heads_["topics"].thresholds_by_label().values()) != {0.99}


def test_a_local_folder_wins_over_a_hub_id_of_the_same_name(cached: Path, strict_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(strict_model_dir, tmp_path / "org" / "toy")
    monkeypatch.chdir(tmp_path)
    assert set(TextClassifier.load("org/toy", device="cpu").heads_["topics"].thresholds_by_label().values()) == {0.99}
    with pytest.raises(ConfigError, match="org/toy is a local path, used as it is: drop the revision"):
        TextClassifier.load("org/toy", revision="v2")


def test_an_onnx_export_loads_by_hub_id(hub_cache: Path, export_dir: Path) -> None:
    put_in_hub_cache(hub_cache, "org/toy-onnx", upload_files(export_dir), COMMIT_A)
    by_id = TextClassifier.load("org/toy-onnx", device="cpu")
    assert by_id.model_ is None  # run by ONNX Runtime
    assert by_id.predict_records(TEXTS) == TextClassifier.load(export_dir, device="cpu").predict_records(TEXTS)


def test_the_cli_predicts_and_evaluates_by_hub_id(cached: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = model_dir.parent / "dev.jsonl"
    assert main(["predict", "org/toy", TEXTS[0], "--device", "cpu"]) == 0
    assert "topics (multilabel)" in capsys.readouterr().out
    assert main(["evaluate", "org/toy", str(data), "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out) == TextClassifier.load(model_dir, device="cpu").evaluate(data)
    output = tmp_path / "strict.jsonl"
    assert main(["predict", "org/toy", *TEXTS, "--revision", "v2", "--output", str(output), "--device", "cpu"]) == 0
    assert [json.loads(line)["topics"]["labels"] for line in output.read_text().splitlines()] == [
        p["topics"] for p in TextClassifier.load("org/toy", revision="v2", device="cpu").predict(TEXTS)
    ]


def test_the_cli_exports_a_hub_model_to_the_folder_given(cached: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "org/toy"]) == 2
    assert "give --output for a model loaded by Hub id" in " ".join(_one_line_error(capsys).split())
    assert main(["export", "org/toy", "--output", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "textheads_onnx.json").is_file()
    assert not list((cached / "models--org--toy" / "snapshots" / COMMIT_A).glob("onnx*"))


def test_the_cli_reads_the_cache_named_by_hf_hub_cache(cached: Path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(cached), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "textheads", "predict", "org/toy", TEXTS[1], "--revision", "v2", "--device", "cpu"],
                            check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "topics (multilabel)" in result.stdout


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("org/missing", "org/missing is not a folder here, and as a Hugging Face Hub id (revision main) it is not in the cache {cache}, and HF_HUB_OFFLINE=1 stops downloads"),
        ("./no/such/folder", "./no/such/folder is neither a folder nor a Hub id"),
    ],
)
def test_a_model_that_is_nowhere_is_one_line_and_exit_2(hub_cache: Path, capsys: pytest.CaptureFixture[str], model: str, message: str) -> None:
    assert main(["predict", model, "some text"]) == 2
    assert message.format(cache=hub_cache) in " ".join(_one_line_error(capsys).split())


def test_a_revision_that_is_not_cached_is_one_line(cached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "org/toy", "data.jsonl", "--revision", "v3"]) == 2
    assert "(revision v3) it is not in the cache" in " ".join(_one_line_error(capsys).split())


# -- the Hub's refusals, from a server on loopback that answers as the Hub does ------------


class _HubRefusals(BaseHTTPRequestHandler):
    """401 RepoNotFound for any repo, 403 GatedRepo for `*/gated*`, and 401 'Invalid
    credentials' for a write (as the Hub answers a token without write access)."""

    def _answer(self) -> None:
        if self.command == "POST":
            status, headers = 401, {"X-Error-Message": "Invalid credentials in Authorization header"}
        elif "/gated" in self.path:
            status, headers = 403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model org/gated is restricted."}
        else:
            status, headers = 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
        body = json.dumps({"error": headers["X-Error-Message"]}).encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def refusing_hub(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HubRefusals)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("repo_id", "message"),
    [
        ("org/private", "the Hugging Face Hub has no model org/private that this token may read (it may not exist, or be private or gated): check the id, or set HF_TOKEN"),
        ("org/gated", "org/gated is a gated model on the Hugging Face Hub: accept its conditions on its page, then set HF_TOKEN"),
    ],
)
def test_a_repo_the_hub_refuses_names_hf_token(refusing_hub: str, repo_id: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelLoadError, match="is not a folder here, and"):
        TextClassifier.load(repo_id)
    assert main(["predict", repo_id, "text"]) == 2
    assert message in " ".join(_one_line_error(capsys).split())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_hub_is_one_line(hub_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert main(["predict", "org/toy", "text"]) == 2
    assert "it is not in the cache" in (err := " ".join(_one_line_error(capsys).split())) and "cannot be reached" in err


# -- what a push sends -------------------------------------------------------------


def _card(folder: Path, library: str) -> None:
    (folder / "README.md").write_text(f"---\nlibrary_name: {library}\npipeline_tag: text-classification\n---\n# A model\n", encoding="utf-8")


def test_a_push_sends_textheads_own_files_of_a_model_directory(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder, symlinks=True)
    card = {"README.md"} if (model_dir / "README.md").is_file() else set()  # the card, once every save writes one
    assert (folder / "checkpoints").is_dir() and (folder / ".textheads.json").is_file()
    (folder / ".textheads.lock").write_text("123")
    (folder / ".tmp-model-abcd1234").mkdir()
    (folder / ".tmp-model-abcd1234" / "config.json").write_text("{}")
    (folder / "notes.txt").write_text("mine")
    (folder / "mlflow.db").write_bytes(b"")
    (folder / "secret.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{}")
    marker = json.loads((folder / ".textheads.json").read_text())
    marker["files"] += ["mlflow.db", "mlartifacts", "tensorboard"]  # what the trackers add
    (folder / ".textheads.json").write_text(json.dumps(marker))
    assert {p.name for p in upload_files(folder)} == RUN_FILES | card
    # The user's validation texts go up only when asked for.
    assert {p.name for p in upload_files(folder, with_sample_texts=True)} == RUN_FILES | card | {"sample_texts.jsonl"}
    if not card:
        _card(folder, "transformers")  # a README.md textheads did not write
        assert "README.md" not in {p.name for p in upload_files(folder)}
        _card(folder, "textheads")
        assert "README.md" in {p.name for p in upload_files(folder)}


def test_a_push_sends_the_files_of_an_onnx_export(export_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "onnx"
    shutil.copytree(export_dir, folder)
    (folder / "notes.txt").write_text("mine")
    expected = set(json.loads((folder / "textheads_onnx.json").read_text())["files"]) | {"textheads_onnx.json"}
    assert {p.name for p in upload_files(folder)} == expected
    assert {"model.onnx", "config.json", "tokenizer.json"} <= expected


@pytest.mark.parametrize("kind", ["empty", "someone else's model", "a run without a model"])
def test_a_folder_textheads_did_not_write_is_not_pushed(model_dir: Path, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    if kind == "someone else's model":
        (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
        (folder / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    elif kind == "a run without a model":
        shutil.copy(model_dir / ".textheads.json", folder)
        shutil.copy(model_dir / "training_config.yaml", folder)
    with pytest.raises(ConfigError, match="is not a textheads model directory"):
        upload_files(folder)
    assert main(["push", str(folder), "org/name", "--dry-run"]) == 2
    assert "textheads pushes only models it wrote" in " ".join(_one_line_error(capsys).split())


def test_a_dry_run_lists_the_files_and_sizes_and_uploads_nothing(model_dir: Path, hub_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(model_dir), "org/toy", "--revision", "v2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = out.strip("\n").splitlines()
    files = upload_files(model_dir)
    assert lines[:-1] == [f"  {p.name}  {decimal(p.stat().st_size)}" for p in files]
    assert lines[-1].startswith(f"Would upload {len(files)} files (")
    assert lines[-1].endswith(f"to {constants.ENDPOINT}/org/toy/tree/v2; nothing was uploaded (--dry-run).")
    assert "sample_texts.jsonl" not in out
    assert main(["push", str(model_dir), "org/toy", "--dry-run", "--with-sample-texts"]) == 0
    assert "  sample_texts.jsonl  " in capsys.readouterr().out


def test_a_repo_id_that_is_not_one_is_refused(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(model_dir), "org/a/b", "--dry-run"]) == 2
    assert "'org/a/b' is not a Hugging Face Hub repo id" in _one_line_error(capsys)


def test_a_push_without_a_token_is_one_line_and_exit_2(model_dir: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    result = subprocess.run([sys.executable, "-m", "textheads", "push", str(model_dir), "org/toy"],
                            check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no Hugging Face token to push org/toy with: set HF_TOKEN" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_push_to_an_unreachable_hub_is_one_line_and_exit_2(model_dir: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    assert main(["push", str(model_dir), "org/toy"]) == 2
    assert f"cannot push {model_dir} to org/toy: cannot reach the Hugging Face Hub at {endpoint}" in " ".join(_one_line_error(capsys).split())


def test_a_push_the_hub_refuses_names_hf_token(model_dir: Path, refusing_hub: str, capsys: pytest.CaptureFixture[str]) -> None:
    clf = TextClassifier.load(model_dir, device="cpu")
    with pytest.raises(UploadError, match="refused access to org/toy \\(HTTP 401\\): set HF_TOKEN"):
        clf.push_to_hub("org/toy", token="hf_read_only")  # saved to a temporary folder, then pushed
    with pytest.raises(ConfigError, match="is not a Hugging Face Hub repo id"):
        clf.push_to_hub("not a repo id")
    assert main(["push", str(model_dir), "org/toy", "--private"]) == 2  # the stored token: none
    assert "no Hugging Face token" in _one_line_error(capsys)


def test_a_cached_export_whose_link_leads_out_of_its_repo_is_refused(hub_cache: Path, export_dir: Path, tmp_path: Path) -> None:
    snapshot = put_in_hub_cache(hub_cache, "org/toy-onnx", upload_files(export_dir), COMMIT_A)
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(export_dir / "model.onnx", outside)
    (snapshot / "model.onnx").unlink()
    (snapshot / "model.onnx").symlink_to(outside)
    with pytest.raises(ModelLoadError, match="a link to a file outside"):
        TextClassifier.load("org/toy-onnx")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "org/missing"], "org/missing is not a folder here, and as a Hugging Face Hub id (revision main) it is not in the cache"),
        (["serve", "{model}", "--revision", "v2"], "is a local path, used as it is: drop the revision"),
    ],
)
def test_serve_resolves_the_model_before_it_listens(hub_cache: Path, model_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main([arg.format(model=model_dir) for arg in args]) == 2
    assert message in " ".join(_one_line_error(capsys).split())
