"""Model cards (README.md) in model folders and exports, label maps in config.json, and the
auto classes after `import textheads`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from conftest import make_rows, train_toy_model, write_jsonl
from textheads import TextClassifier
from textheads.cli import main
from textheads.ownership import read_marker, remove_run


@pytest.fixture(scope="module")
def trained_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-head model trained once for the module; tests work on copies."""
    root = tmp_path_factory.mktemp("card-run")
    train_toy_model(tiny_encoder_dir, root)
    return root / "model"


@pytest.fixture()
def model_dir(trained_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(trained_dir, copy, ignore=shutil.ignore_patterns("checkpoints", ".textheads.lock"))
    return copy


def test_training_writes_a_card_the_hub_parses_with_the_validation_metrics(trained_dir: Path) -> None:
    card = ModelCard.load(trained_dir / "README.md")
    data = card.data
    assert data.library_name == "textheads" and data.pipeline_tag == "text-classification"
    assert {"textheads", "text-classification", "multi-label-classification", "regression"} <= set(data.tags)
    assert data.base_model is None  # a local encoder folder has no Hub id
    assert data.language is None  # not known: not invented
    validation = json.loads((trained_dir / "validation_metrics.json").read_text(encoding="utf-8"))
    found = {(r.dataset_config, r.metric_name): r.metric_value for r in data.eval_results if r.dataset_split == "validation"}
    assert found[("topics", "topics macro-F1 (validation)")] == validation["topics"]["macro_f1"]
    assert found[("topics", "topics micro-F1 (validation)")] == validation["topics"]["micro_f1"]
    assert found[("level", "level accuracy (validation)")] == validation["level"]["accuracy"]
    assert found[("score", "score MAE (validation)")] == validation["score"]["mae"]
    for section in ("## Heads and labels", "## Thresholds", "## Validation metrics", "## Training data", "## Training configuration", "## How to use", "## Intended use and limits"):
        assert section in card.text
    assert "TextClassifier.load(" in card.text and "textheads predict MODEL" in card.text
    assert "reads the first 32 tokens" in card.text
    summary = json.loads((trained_dir / "training_data.json").read_text(encoding="utf-8"))
    assert summary["train"]["rows"] == 96 and summary["validation"]["rows"] == 30
    assert sum(summary["train"]["heads"]["level"]["label_counts"].values()) == summary["train"]["heads"]["level"]["labelled"]
    marker = read_marker(trained_dir)
    assert marker is not None and {"README.md", "training_data.json"} <= set(marker["files"]) and marker["model_card_sha256"]


def test_cli_train_puts_the_test_metrics_in_the_card(config_file: Path, tmp_path: Path) -> None:
    assert main(["train", str(config_file), "-q", "--set", "train.epochs=1"]) == 0
    model = tmp_path / "model"
    test = json.loads((model / "test_metrics.json").read_text(encoding="utf-8"))
    card = ModelCard.load(model / "README.md")
    found = {r.metric_name: r.metric_value for r in card.data.eval_results if r.dataset_split == "test"}
    assert found["level accuracy (test)"] == test["level"]["accuracy"]
    assert "## Test metrics" in card.text and "test.jsonl" in card.text


def test_set_thresholds_and_save_rewrite_the_card(model_dir: Path) -> None:
    clf = TextClassifier.load(model_dir)
    clf.set_thresholds("topics", 0.9)
    clf.save(model_dir)
    text = (model_dir / "README.md").read_text(encoding="utf-8")
    for label in ("code", "cook", "health"):
        assert f"| `{label}` | 0.9 |" in text
    assert "The thresholds of `topics` have been changed since" in text


def test_a_model_saved_elsewhere_carries_what_its_card_says(model_dir: Path, tmp_path: Path) -> None:
    TextClassifier.load(model_dir).save(tmp_path / "elsewhere")
    card = ModelCard.load(tmp_path / "elsewhere" / "README.md")
    assert any(r.dataset_split == "validation" for r in card.data.eval_results)
    assert "## Training data" in card.text
    marker = read_marker(tmp_path / "elsewhere")
    assert marker is not None and {"README.md", "training_data.json", "validation_metrics.json"} <= set(marker["files"])


def test_a_readme_edited_by_hand_is_kept_and_said_so(model_dir: Path) -> None:
    readme = model_dir / "README.md"
    readme.write_text("# My own words\n", encoding="utf-8")
    said: list[str] = []
    TextClassifier.load(model_dir).save(model_dir, echo=said.append)
    assert readme.read_text(encoding="utf-8") == "# My own words\n"
    assert said == [f"{readme} was edited by hand since textheads wrote it; the model card was left as it is"]
    remove_run(model_dir)  # what --overwrite deletes: textheads' own files only
    assert readme.read_text(encoding="utf-8") == "# My own words\n"
    assert not (model_dir / "model.safetensors").exists()


def test_a_readme_textheads_did_not_write_is_kept(model_dir: Path) -> None:
    marker = json.loads((model_dir / ".textheads.json").read_text(encoding="utf-8"))
    marker["files"].remove("README.md")
    del marker["model_card_sha256"]
    (model_dir / ".textheads.json").write_text(json.dumps(marker), encoding="utf-8")
    said: list[str] = []
    before = (model_dir / "README.md").read_text(encoding="utf-8")
    TextClassifier.load(model_dir).save(model_dir, echo=said.append)
    assert (model_dir / "README.md").read_text(encoding="utf-8") == before
    assert said and "was not written by textheads" in said[0]


def test_an_onnx_export_has_its_own_card(model_dir: Path) -> None:
    pytest.importorskip("onnxruntime")
    from textheads.export import export_onnx

    target = export_onnx(model_dir, echo=lambda _: None)
    card = ModelCard.load(target / "README.md")
    assert "onnx" in card.data.tags and card.data.library_name == "textheads"
    assert "An ONNX export" in card.text and any(r.dataset_split == "validation" for r in card.data.eval_results)
    manifest = json.loads((target / "textheads_onnx.json").read_text(encoding="utf-8"))
    assert "README.md" in manifest["files"]
    # Edited by hand, then exported again: the edit stays, and the export says so.
    (target / "README.md").write_text("# Export notes\n", encoding="utf-8")
    said: list[str] = []
    export_onnx(model_dir, echo=said.append)
    assert (target / "README.md").read_text(encoding="utf-8") == "# Export notes\n"
    assert any("edited by hand" in line for line in said)


def test_a_single_head_model_names_its_labels_in_config_json(tiny_encoder_dir: Path, tmp_path: Path, trained_dir: Path) -> None:
    rows = make_rows(24, seed=1, missing=False)
    clf = TextClassifier(
        heads={"level": {"kind": "multiclass"}}, encoder=str(tiny_encoder_dir), max_length=32,
        train={"epochs": 1, "batch_size": 8}, output_dir=tmp_path / "single",
    ).fit(write_jsonl(tmp_path / "train.jsonl", rows), show_progress=False, echo=lambda _: None)
    config = json.loads((tmp_path / "single" / "config.json").read_text(encoding="utf-8"))
    labels = clf.heads_["level"].labels
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}
    assert config["problem_type"] == "single_label_classification"
    # A model directory saved before config.json had them still loads, and gets them.
    for key in ("id2label", "label2id", "problem_type"):
        del config[key]
    (tmp_path / "single" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    loaded = TextClassifier.load(tmp_path / "single")
    assert loaded.model_.config.id2label == dict(enumerate(labels))
    assert loaded.predict(["python code"])[0]["level"] in labels
    # Several heads: no single label map describes them, so config.json has none.
    multi = json.loads((trained_dir / "config.json").read_text(encoding="utf-8"))
    assert "id2label" not in multi and "problem_type" not in multi


def test_import_textheads_registers_the_auto_classes_without_importing_transformers(trained_dir: Path) -> None:
    script = (
        "import sys, textheads\n"
        "assert 'transformers' not in sys.modules and 'torch' not in sys.modules\n"
        "from transformers import AutoConfig, AutoModel\n"
        f"config = AutoConfig.from_pretrained({str(trained_dir)!r})\n"
        f"model = AutoModel.from_pretrained({str(trained_dir)!r})\n"
        "print(type(config).__name__, type(model).__name__, list(model.specs))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "TextHeadsConfig TextHeadsModel ['topics', 'level', 'score']"
