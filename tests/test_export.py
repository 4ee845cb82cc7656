"""ONNX export: where it may write, what its manifest may name, and int8 that is checked
against the fp32 model before it is kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from conftest import make_rows, three_head_config, train_toy_model, write_jsonl
from textheads import TextClassifier
from textheads.cli import main
from textheads.config import build_config
from textheads.decisions import head_decisions
from textheads.errors import ConfigError, DataError, ModelLoadError
from textheads.export import export_onnx
from textheads.export.quantize import QuantizationError
from textheads.export.samples import SAMPLE_FILE, read_sample_texts

TEXTS = ["python code bug", "oven pasta salt garlic soup", "sleep", "中文 学习"]


def _fit(encoder: Path, root: Path, **train: object) -> Path:
    train_toy_model(encoder, root, **{"epochs": 3, **train})
    return root / "model"


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fine-tuned three-head model (convolutional classification heads)."""
    return _fit(tiny_encoder_dir, tmp_path_factory.mktemp("exported"))


@pytest.fixture(scope="module")
def fp32_export(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(model_dir, tmp_path_factory.mktemp("fp32") / "onnx", echo=lambda _: None)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. the output folder --------------------------------------------------------


@pytest.mark.parametrize("contents", [{"notes.txt": "mine"}, {"textheads_onnx.json": "{}", "thesis.tex": "mine"}, {"sub/deep.txt": "mine"}])
def test_export_refuses_a_folder_it_did_not_write(model_dir: Path, tmp_path: Path, contents: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    for name, text in contents.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    before = _tree(work)
    assert main(["export", str(model_dir), "--output", str(work)]) == 2
    err = capsys.readouterr().err
    assert str(work) in err.replace("\n", "") and "--output" in err and "Traceback" not in err
    assert _tree(work) == before
    with pytest.raises(ConfigError, match="not a textheads export"):
        TextClassifier.load(model_dir).export_onnx(work)
    assert _tree(work) == before
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # no staging folder left behind


def test_export_refuses_an_earlier_export_holding_other_files(fp32_export: Path, model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "onnx"
    shutil.copytree(fp32_export, target)
    # (Not README.md: the export writes its model card there; test_model_card keeps an edited one.)
    (target / "notes.md").write_text("my notes on this export")
    with pytest.raises(ConfigError, match=r"also holds files it did not write \(notes.md\)"):
        export_onnx(model_dir, target, echo=lambda _: None)
    assert (target / "notes.md").read_text() == "my notes on this export"


def test_export_replaces_its_own_export_and_fills_an_empty_folder(model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "onnx"
    target.mkdir()
    assert export_onnx(model_dir, target, echo=lambda _: None) == target.resolve()
    manifest = json.loads((target / "textheads_onnx.json").read_text())
    assert set(manifest["files"]) == {p.name for p in target.iterdir()} - {"textheads_onnx.json"}
    (target / "model.onnx").write_bytes(b"stale")
    export_onnx(model_dir, target, echo=lambda _: None)
    assert (target / "model.onnx").read_bytes() != b"stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]


def test_export_replaces_an_export_written_before_manifests_listed_files(fp32_export: Path, model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "onnx"
    shutil.copytree(fp32_export, target)
    manifest = json.loads((target / "textheads_onnx.json").read_text())
    del manifest["files"]
    (target / "textheads_onnx.json").write_text(json.dumps(manifest))
    (target / "README.md").unlink()  # such exports had no model card either
    export_onnx(model_dir, target, echo=lambda _: None)
    assert "files" in json.loads((target / "textheads_onnx.json").read_text())


def test_export_refuses_the_model_directory_its_parent_and_its_checkpoints(model_dir: Path, tmp_path: Path) -> None:
    before = _tree(model_dir)
    for target, message in [(model_dir, "is or contains the model directory"), (model_dir.parent, "is or contains the model directory"), (model_dir / "checkpoints" / "onnx", "inside the model's checkpoints")]:
        with pytest.raises(ConfigError, match=message):
            export_onnx(model_dir, target, echo=lambda _: None)
    assert _tree(model_dir) == before
    file_target = tmp_path / "model.onnx"
    file_target.write_text("mine")
    with pytest.raises(ConfigError, match="is a file"):
        export_onnx(model_dir, file_target, echo=lambda _: None)


# -- 2. the manifest names only files inside its folder --------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"file": "../model.onnx"}, "'file'"),
        ({"file": "/etc/passwd"}, "'file'"),
        ({"file": "sub/model.onnx"}, "'file'"),
        ({"file": ".."}, "'file'"),
        ({"file": 7}, "'file'"),
        ({"file": "missing.onnx"}, "'file'"),
        ({"inputs": ["input_ids", "attention_mask", "secret"]}, "'inputs'"),
        ({"inputs": "input_ids"}, "'inputs'"),
        ({"outputs": ["level", "topics", "score"]}, "'outputs'"),
        ({"outputs": ["topics"]}, "'outputs'"),
        ({"format": "pickle"}, "'format'"),
        ({"files": ["../../etc/passwd"]}, "'files'"),
    ],
)
def test_a_manifest_naming_anything_but_the_exporters_files_is_refused(fp32_export: Path, tmp_path: Path, change: dict, key: str) -> None:
    folder = tmp_path / "export"
    shutil.copytree(fp32_export, folder)
    manifest = json.loads((folder / "textheads_onnx.json").read_text())
    (folder / "textheads_onnx.json").write_text(json.dumps({**manifest, **change}))
    with pytest.raises(ModelLoadError, match=key):
        TextClassifier.load(folder)


def test_a_manifest_that_is_not_json_or_a_link_leading_out_is_refused(fp32_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "export"
    shutil.copytree(fp32_export, folder)
    (folder / "textheads_onnx.json").write_text("[1, 2")
    assert main(["predict", str(folder), "python"]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and "Traceback" not in err
    shutil.copy(fp32_export / "textheads_onnx.json", folder)
    outside = tmp_path / "elsewhere.onnx"
    (folder / "model.onnx").rename(outside)
    (folder / "model.onnx").symlink_to(outside)
    with pytest.raises(ModelLoadError, match="a link to a file outside"):
        TextClassifier.load(folder)


# -- 3. int8 checked against the fp32 model --------------------------------------


def test_training_stores_a_bounded_sample_of_validation_texts(model_dir: Path) -> None:
    stored = read_sample_texts(model_dir)
    validation = [json.loads(line)["text"] for line in (model_dir.parent / "dev.jsonl").read_text().splitlines()]
    assert stored == validation  # 30 rows: all of them, in order


def test_int8_export_prints_and_records_its_agreement(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "int8"
    assert main(["export", str(model_dir), "--quantize", "int8", "--output", str(target)]) == 0
    out = capsys.readouterr().out
    assert "Checking int8 against the fp32 model on 30 sample texts stored with the model" in out
    assert "topics: 100.00% of label decisions agree, 100.00% of texts have the same label set" in out and "score: values differ by at most" in out
    manifest = json.loads((target / "textheads_onnx.json").read_text())
    agreement = manifest["agreement"]
    assert agreement["texts"] == 30 and agreement["min_agreement"] == 0.99 and not agreement["forced"]
    assert agreement["heads"]["topics"]["agreement"] == 1.0 and agreement["heads"]["level"]["agreement"] == 1.0
    assert 0 < agreement["heads"]["score"]["max_abs_error"] < 0.01
    assert manifest["quantization"]["int8_matmuls"] == manifest["quantization"]["encoder_matmuls"] == 12
    # Only the encoder's matrix products are int8; the heads (Gemm, Conv) stay fp32.
    graph = onnx.load(str(target / "model.onnx"))
    quantized = {n.name.removesuffix("_quant") for n in graph.graph.node if n.op_type == "MatMulInteger"}
    assert len(quantized) == 12 and all("/encoder/" in name for name in quantized)
    assert {n.op_type for n in graph.graph.node if "/topics/" in n.name or "/level/" in n.name} >= {"Conv"}
    # What was measured is what it answers.
    torch_out = TextClassifier.load(model_dir).predict(TEXTS)
    assert [r["topics"] for r in TextClassifier.load(target).predict(TEXTS)] == [r["topics"] for r in torch_out]


def test_int8_export_without_sample_texts_asks_for_calibration(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = tmp_path / "model"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns(SAMPLE_FILE, "checkpoints"))
    assert main(["export", str(bare), "--quantize", "int8", "--output", str(tmp_path / "int8")]) == 2
    err = capsys.readouterr().err
    assert "no stored sample texts" in err and "--calibration FILE" in err and "--force" in err
    assert not (tmp_path / "int8").exists()
    assert main(["export", str(bare), "--quantize", "int8", "--output", str(tmp_path / "int8"), "--force"]) == 0
    assert "not checked against the fp32 model" in capsys.readouterr().out
    assert json.loads((tmp_path / "int8" / "textheads_onnx.json").read_text())["agreement"] is None
    calibration = write_jsonl(tmp_path / "calibration.jsonl", make_rows(50, seed=9))
    assert main(["export", str(bare), "--quantize", "int8", "--output", str(tmp_path / "int8"), "--calibration", str(calibration)]) == 0
    assert "on the 50 texts of" in capsys.readouterr().out
    agreement = json.loads((tmp_path / "int8" / "textheads_onnx.json").read_text())["agreement"]
    assert agreement["texts"] == 50 and agreement["source"] == "the 50 texts of calibration.jsonl"


GAIN = 10.0
RUINABLE = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value", "attention": "attention.output.dense", "ffn_in": "intermediate.dense", "ffn_out": "output.dense"}


def _encoder_ruined_by_int8(tiny_encoder_dir: Path, folder: Path, ruined: tuple[str, ...]) -> Path:
    """The tiny BERT, computing the same in fp32, but with the `ruined` matrix products
    (of RUINABLE) ruined by int8: each output channel gets a weight 1000 times larger than
    the rest on an input that is always 0, so per-channel int8 rounds all its other weights
    to 0 (a weight outlier). Hidden dimension 1 is that input: every LayerNorm, the value
    and the FFN-input products set it to exactly 0."""
    import torch
    from transformers import AutoTokenizer, BertModel

    encoder = BertModel.from_pretrained(tiny_encoder_dir)
    layers = encoder.encoder.layer
    with torch.no_grad():
        for norm in [encoder.embeddings.LayerNorm] + [n for layer in layers for n in (layer.attention.output.LayerNorm, layer.output.LayerNorm)]:
            norm.weight[1] = norm.bias[1] = 0.0
        for layer in layers:
            for linear in (layer.attention.self.value, layer.intermediate.dense):
                linear.weight[1, :] = linear.bias[1] = 0.0
            for kind in ruined:
                linear = layer.get_submodule(RUINABLE[kind])
                linear.weight *= GAIN  # random init is too small to matter beside the residual stream
                linear.weight[:, 1] = 1000 * linear.weight.abs().max()
    encoder.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("calibration") / "texts.jsonl", make_rows(120, seed=11))


def _decision_agreement(model_dir: Path, export: Path, texts: list[str]) -> dict[str, float]:
    fp32, int8 = TextClassifier.load(model_dir), TextClassifier.load(export)
    a, b = fp32.predict_proba(texts), int8.predict_proba(texts)
    spec = fp32.heads_["topics"]
    return {"topics": float((head_decisions(spec, a["topics"]) == head_decisions(spec, b["topics"])).mean()), "level": float((a["level"].argmax(1) == b["level"].argmax(1)).mean())}


def test_int8_keeps_the_sensitive_products_in_fp32_when_all_int8_falls_short(tiny_encoder_dir: Path, tmp_path: Path, calibration_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # value, attention-output and FFN-output: half of the encoder's matrix weights
    ruined = ("value", "attention", "ffn_out")
    model = _fit(_encoder_ruined_by_int8(tiny_encoder_dir, tmp_path / "encoder", ruined), tmp_path, freeze="encoder")
    target = tmp_path / "int8"
    assert main(["export", str(model), "--quantize", "int8", "--output", str(target), "--calibration", str(calibration_file)]) == 0
    out = capsys.readouterr().out
    assert "int8, all 12 matrix products of the encoder" in out and "looking for the matrix products to keep in fp32" in out
    manifest = json.loads((target / "textheads_onnx.json").read_text())
    record, agreement = manifest["quantization"], manifest["agreement"]
    assert sorted(record["fp32_matmuls"]) == sorted(f"/model/encoder/encoder/layer.{i}/{RUINABLE[kind].replace('.', '/')}/MatMul" for i in (0, 1) for kind in ruined)
    assert record["int8_matmuls"] == 6 and record["int8_weight_share"] == 0.5
    assert all(agreement["heads"][head]["agreement"] >= 0.99 for head in ("topics", "level"))
    graph = onnx.load(str(target / "model.onnx"))
    assert {n.name.removesuffix("_quant") for n in graph.graph.node if n.op_type == "MatMulInteger"}.isdisjoint(record["fp32_matmuls"])
    assert sum(n.op_type == "MatMulInteger" for n in graph.graph.node) == 6
    texts = [json.loads(line)["text"] for line in calibration_file.read_text().splitlines()]
    measured = _decision_agreement(model, target, texts)
    assert measured == {head: agreement["heads"][head]["agreement"] for head in measured}


def test_int8_below_the_bar_is_refused_with_the_figures_unless_forced(tiny_encoder_dir: Path, tmp_path: Path, calibration_file: Path) -> None:
    model = _fit(_encoder_ruined_by_int8(tiny_encoder_dir, tmp_path / "encoder", tuple(RUINABLE)), tmp_path, freeze="encoder")
    target = tmp_path / "int8"
    with pytest.raises(QuantizationError, match="would change answers") as refused:
        export_onnx(model, target, quantize="int8", calibration=calibration_file, echo=lambda _: None)
    message = str(refused.value)
    assert "with all 12 matrix products of the encoder in int8,\n  topics: " in message and "with the 6 least sensitive ones (50% of the weights)" in message
    assert "--force" in message and "--min-agreement" in message
    assert not target.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert main(["export", str(model), "--quantize", "int8", "--output", str(target), "--calibration", str(calibration_file), "--force"]) == 0
    manifest = json.loads((target / "textheads_onnx.json").read_text())
    assert manifest["agreement"]["forced"] and manifest["quantization"]["int8_matmuls"] == 12
    lowest = min(manifest["agreement"]["heads"][head]["agreement"] for head in ("topics", "level"))
    assert lowest < 0.99
    texts = [json.loads(line)["text"] for line in calibration_file.read_text().splitlines()]
    assert min(_decision_agreement(model, target, texts).values()) == lowest


def test_min_agreement_and_calibration_are_checked(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(model_dir), "--quantize", "int8", "--min-agreement", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "Usage:" in err and "--min-agreement" in err and "less than or equal to 1" in " ".join(err.split())
    for option, value in (("--format", "tf"), ("--quantize", "int4")):
        assert main(["export", str(model_dir), option, value]) == 2
        assert "Usage:" in capsys.readouterr().err
    assert main(["export", str(model_dir), "--force"]) == 2
    assert "apply to --quantize int8 only" in capsys.readouterr().err
    empty = tmp_path / "texts.jsonl"
    empty.write_text('{"body": "x"}\n')
    assert main(["export", str(model_dir), "--quantize", "int8", "--calibration", str(empty), "--output", str(tmp_path / "o")]) == 2
    assert "column 'text' not found" in capsys.readouterr().err


def test_a_classifier_fitted_in_memory_checks_int8_on_its_validation_texts(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "unused", max_steps=2)
    raw["output_dir"] = None
    clf = TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    lines: list[str] = []
    clf.export_onnx(tmp_path / "int8", quantize="int8", min_agreement=0.0, echo=lines.append)
    assert lines[0] == "Checking int8 against the fp32 model on 30 sample texts stored with the model (sample_texts.jsonl)"
    assert json.loads((tmp_path / "int8" / "textheads_onnx.json").read_text())["agreement"]["texts"] == 30


def test_damaged_sample_texts_are_a_data_error_naming_the_line(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("checkpoints"))
    (copy / SAMPLE_FILE).write_text('{"text": "fine"}\n{"text": 3}\n')
    with pytest.raises(DataError, match=r"sample_texts.jsonl, line 2, column .text.: text is not a string"):
        export_onnx(copy, tmp_path / "int8", quantize="int8", echo=lambda _: None)


def test_an_export_loaded_with_a_thread_cap_runs_its_session_with_it(fp32_export: Path) -> None:
    """Spark and Ray workers pass `threads` so that W workers × threads fit the cores."""
    capped = TextClassifier.load(fp32_export, threads=1)
    assert capped.backend_.session.get_session_options().intra_op_num_threads == 1
    texts = ["learn python first", "salt the pasta water"]
    assert capped.predict(texts) == TextClassifier.load(fp32_export).predict(texts)
