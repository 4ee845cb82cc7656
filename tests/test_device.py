"""Inference on a chosen device and precision: `--device`, `--precision`,
`TextClassifier.load(device=..., precision=...)`, and the errors for a device that
is not there. CUDA itself runs in benchmarks/gpu.py on a GPU machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import train_toy_model
from textheads import DeviceError, TextClassifier
from textheads.cli import main
from textheads.errors import ConfigError
from textheads.inference.backends import onnx_providers
from textheads.inference.device import check_device_name, resolve_device, resolve_precision

TEXTS = ["python code bug", "oven pasta salt garlic soup", "sleep", "doctor stretch water exercise rest " * 3]
NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("device")
    train_toy_model(tiny_encoder_dir, root, rows=64, validation_rows=24, epochs=1)
    return root / "model"


def _textheads(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "", "cuda:0 "])
def test_a_malformed_device_name_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"the device must be one of cpu, cuda, cuda:N or auto; got"):
        check_device_name(name)


def test_auto_is_the_cpu_without_a_gpu_and_auto_precision_depends_on_the_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    if NO_CUDA:
        assert resolve_device("auto") == torch.device("cpu")
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    assert resolve_precision("auto", torch.device("cuda", 0)) == torch.float16
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, fp16, bf16; got 'fp8'"):
        resolve_precision("fp8", torch.device("cpu"))


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:7"])
def test_a_cuda_device_on_a_machine_without_one_is_a_device_error(name: str) -> None:
    with pytest.raises(DeviceError, match=rf"device '{name}' is not available: .*Use --device cpu"):
        resolve_device(name)


def test_a_gpu_index_past_the_machines_gpus_names_those_there_are(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one branch that needs a GPU machine to run for real: its count is faked here.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match=r"device 'cuda:7' is not available: this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:7")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize("command", ["predict", "evaluate", "serve"])
@pytest.mark.parametrize(("option", "value"), [("--device", "tpu"), ("--device", "cuda:x"), ("--precision", "fp8")])
def test_a_malformed_device_or_precision_is_a_usage_error(model_dir: Path, command: str, option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = {"predict": ["some text"], "evaluate": [str(model_dir.parent / "dev.jsonl")], "serve": []}[command]
    code, out, err = _textheads(capsys, command, str(model_dir), *extra, option, value)
    output = out + err
    assert code == 2, output
    assert "Usage:" in output and option in output
    assert "Traceback" not in output


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("command", ["predict", "evaluate", "serve"])
def test_an_absent_device_is_one_line_without_a_traceback(model_dir: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = {"predict": ["some text"], "evaluate": [str(model_dir.parent / "dev.jsonl")], "serve": ["--port", "0"]}[command]
    for device in ("cuda", "cuda:7"):
        code, out, err = _textheads(capsys, command, str(model_dir), *extra, "--device", device, "--quiet" if command != "serve" else "--in-process")
        assert code == 2, out + err
        assert err.strip().startswith(f"Error: device '{device}' is not available"), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err


def test_load_on_the_cpu_in_each_precision_keeps_the_saved_weights(model_dir: Path, tmp_path: Path) -> None:
    reference = TextClassifier.load(model_dir, device="cpu", precision="fp32")
    expected = reference.predict_proba(TEXTS)
    assert reference.backend_.device == torch.device("cpu") and reference.backend_.precision == "fp32"
    for precision in ("bf16", "fp16"):
        clf = TextClassifier.load(model_dir, device="cpu", precision=precision)
        assert clf.backend_.precision == precision
        got = clf.predict_proba(TEXTS)
        for head in ("topics", "level"):
            assert got[head].dtype == np.float32
            np.testing.assert_allclose(got[head], expected[head], atol=0.02)
        # Autocast: the weights stay as saved, so a save writes them unchanged.
        clf.save(tmp_path / precision)
        assert (tmp_path / precision / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert TextClassifier.load(model_dir).backend_.precision == ("fp32" if NO_CUDA else "fp16")


def test_onnx_providers_for_each_device() -> None:
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cpu", with_cuda) == ["CPUExecutionProvider"]
    assert onnx_providers("auto", cpu_only) == ["CPUExecutionProvider"]
    assert onnx_providers("auto", with_cuda) == [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    assert onnx_providers("cuda:1", with_cuda) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    with pytest.raises(DeviceError, match=r"device 'cuda' needs ONNX Runtime's CUDA execution provider.*onnxruntime-gpu.*--device cpu"):
        onnx_providers("cuda", cpu_only)


def test_an_onnx_export_on_a_device_or_precision_it_cannot_run_in(model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    export = TextClassifier.load(model_dir, device="cpu").export_onnx(tmp_path / "onnx", echo=lambda _: None)
    assert TextClassifier.load(export).backend_.device == "cpu"  # auto, without ONNX Runtime's CUDA provider here
    with pytest.raises(ConfigError, match="precision 'fp16' applies to PyTorch model directories; an ONNX export runs at the precision it was exported in"):
        TextClassifier.load(export, precision="fp16")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DeviceError, match="onnxruntime-gpu"):
            TextClassifier.load(export, device="cuda")


def test_the_gpu_benchmark_checks_for_a_cuda_device_and_exits_cleanly() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No CUDA device: " if NO_CUDA else "CUDA: ") and "ONNX Runtime providers" in result.stdout
    assert "Traceback" not in result.stderr
