"""Training in several real processes (gloo on the CPU), gradient accumulation and fp16.

The encoder and heads here have dropout off, so that a batch computed in parts
(processes, accumulation micro-batches) must give the update of the whole batch,
up to float rounding."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import three_head_config
from textheads import TextClassifier
from textheads.config import build_config
from textheads.training.checkpoint import complete_checkpoints, latest_checkpoint

WEIGHT_TOLERANCE = 2e-4
"""Largest weight difference allowed between a run in parts and the same run whole (float rounding
of sums taken in another order, over 12 AdamW steps)."""


@pytest.fixture(scope="module")
def no_dropout_encoder(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    for item in tiny_encoder_dir.iterdir():
        shutil.copy(item, path / item.name)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _config(encoder: Path, files: dict[str, Path], output_dir: Path, **train: Any) -> dict[str, Any]:
    raw = three_head_config(encoder, files, output_dir, **{"precision": "fp32", "device": "cpu", **train})
    for head in raw["heads"].values():
        head["dropout"] = 0.0
    return raw


def _write(raw: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")  # heads in the order of `raw`
    return path


def _launch(launcher: list[str], args: list[str]) -> subprocess.CompletedProcess[str]:
    """`launcher -m textheads ARGS` as a user types it, two processes, one thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", *launcher, "-m", "textheads", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


TORCHRUN = ["torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ACCELERATE = ["accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--main_process_port"]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= atol, f"weights differ by {worst}"


def _records(output_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def test_two_processes_train_like_one(no_dropout_encoder: Path, data_files: dict, tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2: the update of each batch is the one-process update (weights within
    WEIGHT_TOLERANCE, the same validation metric to 3 decimals), and one process wrote one run."""
    two = _write(_config(no_dropout_encoder, data_files, tmp_path / "two"), tmp_path / "two.yaml")
    process = _launch(TORCHRUN, ["train", str(two), "--quiet"])
    assert process.returncode == 0, process.stdout + process.stderr
    assert process.stdout.count("Model saved to") == 1 and process.stdout.count("Test metrics written") == 1
    one = TextClassifier.from_config(build_config(_config(no_dropout_encoder, data_files, tmp_path / "one"))).fit(show_progress=False, echo=lambda _: None)

    assert [p.name for p in complete_checkpoints(tmp_path / "two")] == ["step-00000012"]
    records = _records(tmp_path / "two")
    assert [r.get("event") for r in records].count("start") == 1 and records[0]["processes"] == 2
    evaluations = [r for r in records if r.get("event") == "evaluation"]
    assert [r["step"] for r in evaluations] == [6, 12]
    _assert_close(_weights(latest_checkpoint(tmp_path / "two")), _weights(latest_checkpoint(tmp_path / "one")), WEIGHT_TOLERANCE)
    best = one.train_result_
    assert best is not None and best.best_metric is not None
    assert evaluations[-1]["value"] == pytest.approx(best.best_metric, abs=1e-3)
    assert (tmp_path / "two" / "test_metrics.json").is_file() and (tmp_path / "two" / "validation_metrics.json").is_file()


def test_a_checkpoint_of_two_processes_resumes_in_one(no_dropout_encoder: Path, data_files: dict, tmp_path: Path) -> None:
    """accelerate launch, 2 processes, stopped after epoch 1 (its last checkpoint removed, as a kill
    leaves it); resumed by one process, it ends where an uninterrupted one-process run ends."""
    raw = _config(no_dropout_encoder, data_files, tmp_path / "run", keep_checkpoints=2)
    config = _write(raw, tmp_path / "run.yaml")
    process = _launch([*ACCELERATE, _free_port()], ["train", str(config), "--quiet"])
    assert process.returncode == 0, process.stdout + process.stderr
    newest, earlier = complete_checkpoints(tmp_path / "run")
    assert earlier.name == "step-00000006"
    shutil.rmtree(newest)

    resumed = TextClassifier.from_config(build_config(raw)).fit(resume=True, show_progress=False, echo=lambda _: None)
    assert resumed.train_result_ is not None and resumed.train_result_.resumed_from == str(earlier)
    whole = TextClassifier.from_config(build_config(_config(no_dropout_encoder, data_files, tmp_path / "whole"))).fit(show_progress=False, echo=lambda _: None)
    assert whole.train_result_ is not None
    _assert_close(_weights(latest_checkpoint(tmp_path / "run")), _weights(latest_checkpoint(tmp_path / "whole")), WEIGHT_TOLERANCE)


def _one_step(encoder: Path, files: dict, output_dir: Path, **train: Any) -> dict[str, torch.Tensor]:
    raw = _config(encoder, files, output_dir, max_steps=1, batch_size=32, warmup_ratio=0.0, **train)
    raw["data"].pop("validation")
    raw["data"]["validation_split"] = 0
    raw["heads"]["level"]["class_weights"] = "auto"  # the weighted mean's denominator is not a row count
    TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    return _weights(latest_checkpoint(output_dir))


def test_accumulating_4_micro_batches_of_8_is_one_batch_of_32(no_dropout_encoder: Path, data_files: dict, tmp_path: Path) -> None:
    """Each micro-batch's head mean is weighed by its share of the batch's labelled rows (of class
    weight, for a weighted head): rows missing a head's label make the shares unequal, where the
    plain mean of the 4 micro-batch means would differ from the batch's mean."""
    whole = _one_step(no_dropout_encoder, data_files, tmp_path / "whole", balance_heads=False)
    parts = _one_step(no_dropout_encoder, data_files, tmp_path / "parts", balance_heads=False, gradient_accumulation_steps=4)
    _assert_close(parts, whole, 1e-6)


def test_fp16_trains_on_the_cpu_with_loss_scaling(no_dropout_encoder: Path, data_files: dict, tmp_path: Path) -> None:
    raw = _config(no_dropout_encoder, data_files, tmp_path / "m", precision="fp16", max_steps=3, epochs=None)
    clf = TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    assert _records(tmp_path / "m")[0]["precision"] == "fp16"
    extra = json.loads((latest_checkpoint(tmp_path / "m") / "optimizer.json").read_text())
    assert extra["grad_scaler"]["scale"] > 0
    assert all(np.isfinite(v).all() for v in clf.predict_proba(["python code", "pasta dinner"]).values())


def test_the_frozen_path_names_the_settings_it_ignores(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", freeze="encoder", eval_every_steps=2, keep_checkpoints=3, epochs=2)
    lines: list[str] = []
    TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lines.append)
    assert "Frozen encoder: ignoring train.eval_every_steps, train.keep_checkpoints (the fast path keeps no checkpoints and trains on the CPU)" in lines


def test_training_after_accelerate_was_set_to_mixed_precision_in_the_process(no_dropout_encoder: Path, data_files: dict, tmp_path: Path) -> None:
    """As after a transformers Trainer with bf16=True in the same notebook or benchmark."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # as in a fresh process: earlier tests set it up
    Accelerator(cpu=True, mixed_precision="bf16")
    raw = _config(no_dropout_encoder, data_files, tmp_path / "m", max_steps=2, epochs=None)
    TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    assert latest_checkpoint(tmp_path / "m") is not None
