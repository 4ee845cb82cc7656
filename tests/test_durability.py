"""Saves that are interrupted (Ctrl-C, a full disk, `kill -9`) leave nothing half-written behind,
and a damaged checkpoint is skipped with a warning, or named in a clear error, never a traceback.

The interruptions are real: a child process whose file size limit makes a write fail as a full disk
does, or that sends itself SIGINT / SIGKILL when a given function of textheads starts (a profile
hook; the functions themselves run unchanged)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from conftest import make_rows, three_head_config, write_jsonl
from textheads import TextClassifier
from textheads.cli import main
from textheads.config import build_config
from textheads.errors import CheckpointError
from textheads.training.checkpoint import (
    TrainerState,
    complete_checkpoints,
    latest_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

# argv: FILE_SIZE_LIMIT|-  STOP_AT|-  SIGNAL  CLI-ARGS...; STOP_AT is `file.py:function:n`, the n-th call.
CHILD = r"""
import os, resource, signal, sys
limit, stop_at, signal_name = sys.argv[1:4]
if limit != "-":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
import textheads.classifier  # the heavy imports, before the hook
from textheads.cli import main
if stop_at != "-":
    file, function, nth = stop_at.split(":")
    calls = 0
    def hook(frame, event, arg):
        global calls
        code = frame.f_code
        if event == "call" and code.co_name == function and code.co_filename.endswith(os.sep + file) and "textheads" in code.co_filename:
            calls += 1
            if calls == int(nth):
                sys.setprofile(None)
                os.kill(os.getpid(), getattr(signal, signal_name))
    sys.setprofile(hook)
sys.exit(main(sys.argv[4:]))
"""


def _child(cli_args: list[str], *, file_limit: int | None = None, stop_at: str | None = None, signal_name: str = "SIGINT") -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-c", CHILD, str(file_limit) if file_limit else "-", stop_at or "-", signal_name, *cli_args]
    return subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=300)


def _config(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / f"{Path(raw['output_dir']).name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _leftovers(*folders: Path) -> list[str]:
    """Every temporary file or folder under `folders` (textheads' temporary names start with a dot
    and contain `tmp`)."""
    return [str(p) for folder in folders if folder.exists() for p in folder.rglob(".*") if "tmp" in p.name]


@pytest.fixture()
def quick(tiny_encoder_dir: Path, data_files: dict, tmp_path: Path):
    """A raw three-head config without a test file (so a run ends after training)."""

    def make(name: str, **train) -> dict:
        raw = three_head_config(tiny_encoder_dir, data_files, tmp_path / name, **train)
        raw["data"]["test"] = None
        return raw

    return make


# -- (a) interrupted saves leave no temporary copies ---------------------------------------------


def test_a_full_disk_in_the_frozen_path_leaves_no_temporary_shard_or_model_copy(quick, tmp_path: Path) -> None:
    # 10 kB: the config and tokenizer files fit, the training texts' cache shard (14 kB) and the
    # model weights (100 kB) do not.
    raw = quick("frozen", freeze="encoder", max_steps=1, cache_dir=str(tmp_path / "cache"))
    run = _child(["train", str(_config(tmp_path, raw)), "--quiet"], file_limit=10_000)
    output = run.stdout + run.stderr
    assert run.returncode == 2, output
    assert "Warning: cannot write to the embedding cache" in output and "File too large" in output
    assert "Error: cannot save the model to" in output
    assert "Traceback" not in output
    assert _leftovers(tmp_path / "frozen", tmp_path / "cache") == []
    assert not (tmp_path / "frozen" / "model.safetensors").exists()


def test_a_full_disk_while_writing_a_checkpoint_leaves_no_temporary_checkpoint(quick, tmp_path: Path) -> None:
    # 600 kB: the model weights (410 kB) fit, the checkpoint's optimizer state (820 kB) does not.
    raw = quick("full", max_steps=1, batch_size=48)
    run = _child(["train", str(_config(tmp_path, raw)), "--quiet"], file_limit=600_000)
    output = run.stdout + run.stderr
    assert run.returncode == 2, output
    assert re.search(r"Error: cannot write the checkpoint \S*step-00000001: .*File too large", output), output
    assert "Traceback" not in output
    assert (tmp_path / "full" / "model.safetensors").exists()  # the model save before it went through
    assert _leftovers(tmp_path / "full") == []
    assert complete_checkpoints(tmp_path / "full") == []


def test_ctrl_c_during_a_model_save_leaves_no_temporary_copy(quick, tmp_path: Path) -> None:
    # SIGINT once the weights are in the temporary folder, before its files are moved in place.
    raw = quick("interrupted", max_steps=1, batch_size=48)
    run = _child(["train", str(_config(tmp_path, raw)), "--quiet"], stop_at="io.py:publish_files:1", signal_name="SIGINT")
    assert run.returncode == 130, run.stdout + run.stderr
    assert _leftovers(tmp_path / "interrupted") == []
    assert complete_checkpoints(tmp_path / "interrupted") == []


def test_the_next_run_removes_what_a_kill_9_mid_save_left_and_nothing_else(quick, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    # No validation data: each epoch's end saves the model; the second save is killed once its
    # weights are in the temporary folder, after the first epoch's checkpoint.
    raw = quick("killed", epochs=2, batch_size=48)
    raw["data"].update(validation=None, validation_split=0)
    run = _child(["train", str(_config(tmp_path, raw)), "--quiet"], stop_at="io.py:publish_files:2", signal_name="SIGKILL")
    assert run.returncode == -9, run.stdout + run.stderr
    partial = [p.name for p in out.glob(".tmp-model-*")]
    assert len(partial) == 1 and (out / partial[0] / "model.safetensors").exists()
    assert latest_checkpoint(out).name == "step-00000002"
    # A checkpoint write killed the same way, and things of the user's with similar names.
    Path(tempfile.mkdtemp(dir=out / "checkpoints", prefix=".tmp-step-00000003-"), "model.safetensors").write_bytes(b"half")
    mine = [out / ".tmp-notes", out / ".tmp-model-backup", out / "checkpoints" / ".tmp-step-mine", out / "checkpoints" / "notes.txt"]
    for path in mine[:3]:
        path.mkdir()
    mine[3].write_text("mine")

    clf = TextClassifier.from_config(build_config(raw)).fit(resume=True, show_progress=False, echo=lambda _: None)
    assert clf.train_result_.resumed_from.endswith("step-00000002")
    assert sorted(p.name for p in out.glob(".tmp*")) == [".tmp-model-backup", ".tmp-notes"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [".tmp-step-mine", "notes.txt", "step-00000004"]


# -- (b) a damaged checkpoint --------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A finished 2-epoch run (checkpoints after steps 2 and 4, both kept) to copy and damage."""
    folder = tmp_path_factory.mktemp("finished")
    files = {
        "train": write_jsonl(folder / "train.jsonl", make_rows(96, seed=1)),
        "validation": write_jsonl(folder / "dev.jsonl", make_rows(30, seed=2)),
        "test": folder / "none.jsonl",
    }
    raw = three_head_config(tiny_encoder_dir, files, folder / "run", epochs=2, batch_size=48, keep_checkpoints=2)
    raw["data"]["test"] = None
    TextClassifier.from_config(build_config(raw)).fit(show_progress=False, echo=lambda _: None)
    assert [p.name for p in complete_checkpoints(folder / "run")] == ["step-00000004", "step-00000002"]
    return raw, folder / "run"


def _copy_run(finished_run: tuple[dict, Path], tmp_path: Path, keep: int = 2) -> tuple[dict, Path]:
    raw, source = finished_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    if keep == 1:
        shutil.rmtree(out / "checkpoints" / "step-00000002")
    return {**raw, "output_dir": str(out), "train": {**raw["train"], "keep_checkpoints": keep}}, out


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "model-truncated": (lambda c: _truncate(c / "model.safetensors"), r"model\.safetensors is truncated: \d+ bytes, its header declares \d+"),
    "optimizer-truncated": (lambda c: _truncate(c / "optimizer.safetensors"), r"optimizer\.safetensors is truncated: \d+ bytes, its header declares \d+"),
    "state-corrupt": (lambda c: (c / "state.json").write_text('{"global_step": 12, "epo'), r"state\.json is not valid JSON"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(finished_run, tmp_path: Path, damage: str) -> None:
    raw, out = _copy_run(finished_run, tmp_path)
    damaged = out / "checkpoints" / "step-00000004"
    spoil, what = DAMAGE[damage]
    spoil(damaged)
    lines: list[str] = []
    clf = TextClassifier.from_config(build_config(raw)).fit(resume=True, show_progress=False, echo=lines.append)
    warning = next(line for line in lines if line.startswith("Warning:"))
    assert re.search(rf"checkpoint \S*step-00000004 is damaged: {what}[^;]*\. Falling back to the checkpoint before it, \S*step-00000002", warning), warning
    assert clf.train_result_.resumed_from.endswith("step-00000002")
    assert clf.train_result_.global_step == 4
    read_checkpoint(damaged)  # written again, whole, by the resumed run


def test_the_cli_resumes_behind_a_damaged_checkpoint(finished_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw, out = _copy_run(finished_run, tmp_path)
    _truncate(out / "checkpoints" / "step-00000004" / "model.safetensors")
    assert main(["train", str(_config(tmp_path, raw)), "--resume", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "step-00000004 is damaged: model.safetensors is truncated" in captured.out
    assert "Resumed from" in captured.out and "step-00000002" in captured.out


@pytest.mark.parametrize("damage", ["optimizer-truncated", "state-corrupt"])
def test_a_damaged_only_checkpoint_is_a_clear_error(finished_run, tmp_path: Path, damage: str) -> None:
    raw, out = _copy_run(finished_run, tmp_path, keep=1)
    spoil, what = DAMAGE[damage]
    spoil(out / "checkpoints" / "step-00000004")
    with pytest.raises(CheckpointError, match=rf"cannot resume: checkpoint \S*step-00000004 is damaged: {what}.*no whole checkpoint to fall back to .*keep_checkpoints: 2.*To start afresh, train without --resume"):
        TextClassifier.from_config(build_config(raw)).fit(resume=True, show_progress=False, echo=lambda _: None)


def test_the_cli_names_a_damaged_only_checkpoint_without_a_traceback(finished_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw, out = _copy_run(finished_run, tmp_path, keep=1)
    _truncate(out / "checkpoints" / "step-00000004" / "model.safetensors")
    assert main(["train", str(_config(tmp_path, raw)), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Error: cannot resume: checkpoint" in err and "model.safetensors is truncated" in err and "start afresh" in err
    assert "Traceback" not in err


def test_a_checkpoint_after_a_fallback_prunes_the_abandoned_later_ones(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    for step in (5, 10, 15):
        save_checkpoint(tmp_path, TrainerState(global_step=step), model, optimizer, scheduler, keep=3)
    # A run resumed from step 5 (10 and 15 were damaged) writes step 7: what lies beyond it goes.
    save_checkpoint(tmp_path, TrainerState(global_step=7), model, optimizer, scheduler, keep=2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-00000007", "step-00000005"]
    save_checkpoint(tmp_path, TrainerState(global_step=9), model, optimizer, scheduler, keep=2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-00000009", "step-00000007"]


def test_resuming_with_the_heads_listed_in_another_order_works(finished_run, tmp_path: Path) -> None:
    # Today the optimiser's moments go to other parameters by position, and the fused AdamW kernel
    # writes out of bounds (a segfault): as after a YAML config rewritten with sorted keys.
    raw, out = _copy_run(finished_run, tmp_path)
    shutil.rmtree(out / "checkpoints" / "step-00000004")
    raw = {**raw, "heads": dict(reversed(list(raw["heads"].items())))}
    clf = TextClassifier.from_config(build_config(raw)).fit(resume=True, show_progress=False, echo=lambda _: None)
    assert clf.train_result_.resumed_from.endswith("step-00000002")
    assert clf.train_result_.global_step == 4


def _two_layers(order: list[str]) -> torch.nn.ModuleDict:
    torch.manual_seed(0)
    layers = {"a": torch.nn.Linear(3, 2), "b": torch.nn.Linear(4, 5)}
    return torch.nn.ModuleDict({name: layers[name] for name in order})


def _step(model: torch.nn.ModuleDict, optimizer: torch.optim.Optimizer) -> None:
    torch.manual_seed(1)
    loss = model["a"](torch.randn(2, 3)).sum() + model["b"](torch.randn(2, 4)).pow(2).sum()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_optimizer_state_is_restored_by_parameter_name() -> None:
    from textheads.training import optimizer_state

    first = _two_layers(["a", "b"])
    first_optimizer = torch.optim.AdamW(first.parameters(), fused=True)
    _step(first, first_optimizer)
    tensors, data = optimizer_state.flatten(first, first_optimizer)
    second = _two_layers(["b", "a"])
    second.load_state_dict(first.state_dict())
    second_optimizer = torch.optim.AdamW(second.parameters(), fused=True)
    optimizer_state.restore(second, second_optimizer, tensors, data)
    _step(first, first_optimizer)
    _step(second, second_optimizer)
    for name, param in first.named_parameters():
        torch.testing.assert_close(second.get_parameter(name), param, rtol=0, atol=0, msg=name)
    # A checkpoint from before names were recorded loads by position, its shapes checked.
    unnamed = {key: value for key, value in data.items() if key != "param_names"}
    with pytest.raises(ValueError, match=r"the optimiser's exp_avg of b\.weight has shape \(2, 3\), the parameter \(5, 4\)"):
        optimizer_state.restore(second, torch.optim.AdamW(second.parameters()), tensors, unnamed)
    # A checkpoint of other parameters is refused, not loaded into the wrong ones.
    with pytest.raises(ValueError, match="other parameters"):
        other = torch.nn.ModuleDict({"c": torch.nn.Linear(3, 2), "b": torch.nn.Linear(4, 5)})
        optimizer_state.restore(other, torch.optim.AdamW(other.parameters()), tensors, data)
