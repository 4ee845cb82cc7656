"""Nothing textheads did not write is deleted, replaced or written into: training folders,
the demo's folder, saved models, prediction and metrics files; one run per folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import three_head_config
from textheads import ConfigError, TextClassifier
from textheads.cli import main
from textheads.config import build_config
from textheads.ownership import MARKER, run_lock

QUIET = {"show_progress": False, "echo": lambda _: None}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(path: Path) -> Path:
    """A folder of someone else's: a Hugging Face checkpoint and notes."""
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "bert", "hidden_size": 768}\n')
    (path / "tokenizer_config.json").write_text("{}\n")
    (path / "notes.txt").write_text("my notes\n")
    return path


def _config(tmp_path: Path, encoder: Path, files: dict, output_dir: Path, **train: object) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(three_head_config(encoder, files, output_dir, **{"max_steps": 2, **train})))
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


@pytest.mark.parametrize("where", ["user folder", "data folder"])
def test_train_refuses_a_non_empty_folder_it_did_not_write(
    tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    folder = _user_folder(tmp_path / "theirs") if where == "user folder" else data_files["train"].parent
    config = _config(tmp_path, tiny_encoder_dir, data_files, tmp_path / "model")
    before = _snapshot(folder)
    for extra in ([], ["--overwrite"], ["--resume"]):
        assert main(["train", str(config), "-q", "--output-dir", str(folder), *extra]) == 2
        message = _error(capsys)
        assert f"{folder} is not empty" in message and "was not written by textheads" in message
        assert "--output-dir" in message
    assert _snapshot(folder) == before  # not one byte written, replaced or deleted


def test_output_dir_option_and_overwrite_replace_only_the_run(
    tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    config = _config(tmp_path, tiny_encoder_dir, data_files, tmp_path / "unused")
    assert main(["train", str(config), "-q", "--output-dir", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and not (tmp_path / "unused").exists()
    (out / "my-analysis.md").write_text("keep me\n")
    # Again without a flag: refused, naming the ways forward.
    assert main(["train", str(config), "-q", "--output-dir", str(out)]) == 2
    message = _error(capsys)
    assert "already holds a model or checkpoints" in message and "--resume" in message and "--overwrite" in message
    old_checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert main(["train", str(config), "-q", "--output-dir", str(out), "--overwrite", "--set", "train.max_steps=3"]) == 0
    assert (out / "my-analysis.md").read_text() == "keep me\n"  # not textheads' file: kept
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) != old_checkpoints
    assert "removed the earlier run's" in capsys.readouterr().out
    assert main(["train", str(config), "-q", "--output-dir", str(out), "--overwrite", "--resume"]) == 2
    assert "choose one" in _error(capsys)


def test_resume_on_a_model_without_checkpoints_is_an_error(
    tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "frozen"
    # The frozen-encoder path keeps no checkpoints: its folder holds a model only.
    config = _config(tmp_path, tiny_encoder_dir, data_files, out, freeze="encoder", cache_dir=str(tmp_path / "cache"))
    assert main(["train", str(config), "-q"]) == 0
    assert not (out / "checkpoints").exists()
    before = _snapshot(out)
    assert main(["train", str(config), "-q", "--resume"]) == 2
    assert "holds a trained model but no checkpoint to resume from" in _error(capsys)
    assert _snapshot(out) == before


def test_a_second_run_on_a_folder_in_use_is_refused(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "busy"
    config = _config(tmp_path, tiny_encoder_dir, data_files, out)
    with run_lock(out):  # what a running `textheads train` holds
        assert main(["train", str(config), "-q"]) == 2
        assert "in use by another textheads run" in _error(capsys)
        assert not (out / "checkpoints").exists()
    assert main(["train", str(config), "-q"]) == 0  # the lock goes with its holder


def test_save_refuses_a_folder_it_did_not_write(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path) -> None:
    clf = TextClassifier.from_config(build_config(three_head_config(tiny_encoder_dir, data_files, tmp_path / "m", max_steps=1))).fit(**QUIET)
    theirs = _user_folder(tmp_path / "theirs")
    before = _snapshot(theirs)
    with pytest.raises(ConfigError, match="theirs is not empty .* was not written by textheads"):
        clf.save(theirs)
    assert _snapshot(theirs) == before
    clf.save(tmp_path / "copy")
    clf.save(tmp_path / "copy")  # its own folder: replaced
    marker = json.loads((tmp_path / "copy" / MARKER).read_text())
    assert {"config.json", "model.safetensors"} <= set(marker["files"])
    assert TextClassifier.load(tmp_path / "copy").predict(["python code"])


def test_demo_refuses_a_folder_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder in (_user_folder(tmp_path / "theirs"), tmp_path / "a-run"):
        if folder.name == "a-run":  # a textheads run, but not the demo's
            folder.mkdir()
            (folder / MARKER).write_text(json.dumps({"written_by": "textheads", "purpose": "train", "files": []}))
            (folder / "model.safetensors").write_bytes(b"weights")
        before = _snapshot(folder)
        assert main(["demo", "--output-dir", str(folder), "-q"]) == 2
        assert "was not written by `textheads demo`" in _error(capsys)
        assert _snapshot(folder) == before


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_output_file_never_replaces_an_input_or_a_user_file(
    command: str, tiny_encoder_dir: Path, data_files: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m"
    TextClassifier.from_config(build_config(three_head_config(tiny_encoder_dir, data_files, model, max_steps=1))).fit(**QUIET)
    data = data_files["test"]
    other = tmp_path / "other.jsonl"
    other.write_text('{"text": "not a prediction"}\n')
    model_config = model / "config.json"
    args = ["predict", str(model), "--input", str(data)] if command == "predict" else ["evaluate", str(model), str(data)]
    for target, says in ((data, "is the input file"), (model_config, "is a file of the model"), (other, "is not a textheads")):
        before = target.read_bytes()
        assert main([*args, "--output", str(target), "-q"]) == 2
        assert says in _error(capsys)
        assert target.read_bytes() == before
    output = tmp_path / "out.json"
    assert main([*args, "--output", str(output), "-q"]) == 0
    assert main([*args, "--output", str(output), "-q"]) == 0  # its own earlier output is replaced
    if command == "predict":
        with pytest.raises(ConfigError, match="is the input file"):
            TextClassifier.load(model).predict_file_to_jsonl(data, data)
