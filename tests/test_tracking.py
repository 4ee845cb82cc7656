"""Experiment tracking (`train.report_to`): what TensorBoard and MLflow receive, read back
from their own files, where they write, and what they must never touch."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import three_head_config
from textheads import ConfigError, TextClassifier
from textheads.cli import main
from textheads.config import build_config
from textheads.errors import MissingExtraError
from textheads.training.run_log import RunLog

QUIET = {"show_progress": False, "echo": lambda _: None}


def _fit(encoder: Path, files: dict, output_dir: Path, *, overwrite: bool = False, **train: Any) -> TextClassifier:
    config = build_config(three_head_config(encoder, files, output_dir, **train))
    return TextClassifier.from_config(config).fit(overwrite=overwrite, **QUIET)


def _log(output_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


def _expected(log: list[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """What the trackers must hold, by name and step, computed from train_log.jsonl."""
    expected: dict[str, dict[int, float]] = {}
    for record in log:
        step, event = record["step"], record.get("event")
        if event is None:
            for key in ("loss", "loss.topics", "loss.level", "loss.score", "lr"):
                expected.setdefault("train/" + key.replace(".", "/"), {})[step] = record[key]
        elif event == "evaluation":
            for key, value in {**record["validation"], record["metric"]: record["value"]}.items():
                expected.setdefault("validation/" + key.replace(".", "/"), {})[step] = value
        elif event == "thresholds":
            for label, value in record["thresholds"]["topics"].items():
                expected.setdefault(f"thresholds/topics/{label}", {})[step] = value
    return expected


def _check_scalars(got: dict[str, dict[int, float]], log: list[dict[str, Any]], thresholds: dict[str, float]) -> None:
    expected = _expected(log)
    steps = [r["step"] for r in log if "event" not in r]
    assert steps == [2, 4, 6, 8, 10, 12]  # every log_every_steps=2 of 12 steps
    assert {"train/loss/topics", "train/loss/level", "train/loss/score", "validation/topics/macro_f1",
            "validation/level/accuracy", "validation/score/mae", "validation/loss", "validation/mean_macro_f1"} <= set(expected)
    for name, values in expected.items():
        assert set(got[name]) == set(values), name
        assert got[name] == {step: pytest.approx(value, rel=1e-6, abs=1e-7) for step, value in values.items()}, name
    assert {f"thresholds/topics/{label}": got[f"thresholds/topics/{label}"] for label in thresholds} == {
        f"thresholds/topics/{label}": {12: pytest.approx(value, rel=1e-6)} for label, value in thresholds.items()
    }
    # Every parameter group's learning rate: heads at head_learning_rate (5e-3), the encoder at 1e-3.
    for step in steps:
        assert got["train/lr/encoder"][step] == pytest.approx(got["train/lr"][step], rel=1e-6)
        assert got["train/lr/heads"][step] == pytest.approx(5 * got["train/lr"][step], rel=1e-5)


def _tensorboard(folder: Path) -> tuple[dict[str, dict[int, float]], dict[str, Any]]:
    """The scalars of `folder`'s event files, and the hyper-parameters its runs recorded."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    scalars: dict[str, dict[int, float]] = {}
    hparams: dict[str, Any] = {}
    for run in {path.parent for path in folder.rglob("events.out.tfevents.*")}:
        events = EventAccumulator(str(run), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, {}).update({event.step: event.value for event in events.Scalars(tag)})
        try:
            contents = events.PluginTagToContent("hparams").values()
        except KeyError:  # a run without hyper-parameters
            continue
        for content in contents:
            data = HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                hparams.update(MessageToDict(data.session_start_info)["hparams"])
    return scalars, hparams


def test_tensorboard_receives_losses_learning_rates_metrics_thresholds_and_the_config(
    tiny_encoder_dir: Path, data_files: dict, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    clf = _fit(tiny_encoder_dir, data_files, out, report_to=["tensorboard"])
    scalars, hparams = _tensorboard(out / "tensorboard")
    log = _log(out)
    assert log[-1]["event"] == "thresholds" and log[-1]["thresholds"] == {"topics": clf.heads_["topics"].thresholds_by_label()}
    _check_scalars(scalars, log, clf.heads_["topics"].thresholds_by_label())
    assert hparams["train.learning_rate"] == pytest.approx(1e-3)
    assert hparams["train.batch_size"] == 16
    assert hparams["model.pooling"] == "mean"
    assert hparams["heads.level.labels"] == '["beginner", "mid", "expert"]'  # lists as JSON text
    assert hparams["train.max_time"] == "null"
    assert hparams["train.report_to"] == '["tensorboard"]'


def test_mlflow_receives_the_same_in_a_store_inside_output_dir(
    tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "model"
    clf = _fit(tiny_encoder_dir, data_files, out, report_to=["mlflow"])
    assert not list(cwd.iterdir())  # MLflow's default (./mlflow.db) is not used
    assert "MLFLOW_TRACKING_URI" not in os.environ and mlflow.active_run() is None  # nothing left set

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("textheads")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "model" and run.info.status == "FINISHED"
    metrics = {name: {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)} for name in run.data.metrics}
    _check_scalars(metrics, _log(out), clf.heads_["topics"].thresholds_by_label())
    params = run.data.params
    assert params["train.learning_rate"] == "0.001" and params["heads.level.labels"] == '["beginner", "mid", "expert"]'
    assert params["train.report_to"] == '["mlflow"]'


def test_mlflow_tracking_uri_is_honoured(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "advice")
    out = tmp_path / "run"
    out.mkdir()
    config = build_config(three_head_config(tiny_encoder_dir, data_files, out, report_to=["mlflow"]))
    with RunLog(out, config.train.report_to, config) as log:
        log.write({"step": 3, "loss": 0.5, "loss.topics": 0.25})
    assert os.environ["MLFLOW_TRACKING_URI"] == uri
    assert sorted(p.name for p in out.iterdir()) == [".textheads.json", "train_log.jsonl"]  # no store here
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("advice").experiment_id])
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss/topics")] == [(3, 0.25)]


def test_only_the_main_process_writes(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")  # as `accelerate launch` and `torchrun` set it in the second process
    out = tmp_path / "run"
    out.mkdir()
    config = build_config(three_head_config(tiny_encoder_dir, data_files, out, report_to=["tensorboard", "mlflow"]))
    with RunLog(out, config.train.report_to, config) as log:
        log.write({"step": 2, "loss": 0.5})
    assert not list(out.iterdir())


def test_report_to_names_known_trackers() -> None:
    raw = {"heads": {"topics": {"kind": "multilabel"}}}
    assert build_config(raw).train.report_to == []
    assert build_config({**raw, "train": {"report_to": "mlflow"}}).train.report_to == ["mlflow"]
    assert build_config({**raw, "train": {"report_to": ["tensorboard", "mlflow", "tensorboard"]}}).train.report_to == ["tensorboard", "mlflow"]
    with pytest.raises(ConfigError, match=r"train\.report_to: report_to must list trackers among \['tensorboard', 'mlflow'\]; got 'wandb'"):
        build_config({**raw, "train": {"report_to": ["tensorboard", "wandb"]}})


@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow"])
def test_a_tracker_without_its_package_names_the_extra(
    tracker: str, tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setitem(sys.modules, tracker, None)  # as if not installed: importing it fails
    out = tmp_path / "model"
    config = build_config(three_head_config(tiny_encoder_dir, data_files, out, report_to=[tracker]))
    with pytest.raises(MissingExtraError, match=rf"needs the '{tracker}' package.*pip install .*'textheads\[{tracker}\]'"):
        TextClassifier.from_config(config).fit(**QUIET)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(three_head_config(tiny_encoder_dir, data_files, out, report_to=[tracker])))
    assert main(["train", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"textheads[{tracker}]" in err and "Traceback" not in err
    assert not out.exists()  # refused before anything was written


def test_overwrite_removes_the_tracker_files_and_nothing_foreign(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    out = tmp_path / "model"
    _fit(tiny_encoder_dir, data_files, out, report_to=["tensorboard"], max_steps=2)
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    (out / "my-notes.md").write_text("keep me\n")
    _fit(tiny_encoder_dir, data_files, out, overwrite=True, max_steps=2)
    assert not (out / "tensorboard").exists()
    assert (out / "my-notes.md").read_text() == "keep me\n"
    # A tensorboard folder textheads did not write is neither written into nor, by --overwrite, removed.
    (out / "tensorboard").mkdir()
    (out / "tensorboard" / "mine.txt").write_text("mine\n")
    model = (out / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"model/tensorboard exists and was not written by textheads"):
        _fit(tiny_encoder_dir, data_files, out, overwrite=True, report_to=["tensorboard"], max_steps=2)
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["mine.txt"]
    assert (out / "model.safetensors").read_bytes() == model  # refused before --overwrite removed the run


def test_the_frozen_encoder_path_reports_its_losses_evaluations_and_thresholds(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    out = tmp_path / "frozen"
    clf = _fit(tiny_encoder_dir, data_files, out, report_to=["tensorboard"], freeze="encoder", epochs=3, cache_dir=str(tmp_path / "cache"))
    scalars, hparams = _tensorboard(out / "tensorboard")
    log = _log(out)
    losses = [r for r in log if "loss" in r and "event" not in r]
    assert len(losses) == 3  # one record an epoch, as fine-tuning logs one every log_every_steps
    for record in losses:
        assert scalars["train/loss"][record["step"]] == pytest.approx(record["loss"], rel=1e-6)
        assert scalars["train/loss/topics"][record["step"]] == pytest.approx(record["loss.topics"], rel=1e-6)
        assert scalars["train/lr"][record["step"]] == pytest.approx(record["lr"], rel=1e-6, abs=1e-9)  # float32 in TensorBoard
    assert losses[0]["lr"] > losses[-1]["lr"]  # the schedule decays
    evaluations = [r for r in log if r.get("event") == "evaluation"]
    assert len(evaluations) == 3
    for record in evaluations:
        assert scalars["validation/level/accuracy"][record["step"]] == pytest.approx(record["validation"]["level.accuracy"], rel=1e-6)
        assert scalars["validation/mean_macro_f1"][record["step"]] == pytest.approx(record["value"], rel=1e-6)
    last = log[-1]
    assert last["event"] == "thresholds"
    assert {label: scalars[f"thresholds/topics/{label}"][last["step"]] for label in clf.heads_["topics"].labels} == pytest.approx(
        clf.heads_["topics"].thresholds_by_label(), rel=1e-6
    )
    assert hparams["train.freeze"] == "encoder"
