"""ONNX export parity (the HTTP service is tested in test_serve.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import three_head_config, train_toy_model
from textheads import TextClassifier
from textheads.cli import main
from textheads.config import build_config

TEXTS = ["python code bug", "oven pasta salt garlic soup", "sleep", "中文 学习", "doctor stretch water exercise rest " * 3]


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    train_toy_model(tiny_encoder_dir, root, epochs=3, heads={"topics": {"hidden_sizes": [16]}})
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
