"""Resumable checkpoints, written atomically under `output_dir/checkpoints/`.

A checkpoint is a directory `step-NNNNNNNN` holding the model weights, the
optimiser's tensors (safetensors) and everything else as JSON. It appears
under its final name only once complete, so a run killed at any moment
(even `kill -9`) leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from textheads.io import atomic_directory

_PREFIX = "step-"


@dataclass
class TrainerState:
    """Where a run is, and what it has learned about its best model so far."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    elapsed_seconds: float = 0.0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def checkpoint_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / "state.json").is_file())
    return done[-1] if done else None


def save_checkpoint(
    output_dir: Path,
    state: TrainerState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    keep: int,
) -> Path:
    """Write a checkpoint atomically and drop the oldest beyond `keep`."""
    target = checkpoint_dir(output_dir) / f"{_PREFIX}{state.global_step:08d}"
    with atomic_directory(target) as tmp:
        save_file(_contiguous(model.state_dict()), str(tmp / "model.safetensors"))
        tensors, optimizer_json = _flatten_optimizer(optimizer.state_dict())
        tensors["torch_rng_state"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        extra = {
            "optimizer": optimizer_json,
            "scheduler": scheduler.state_dict(),
            "python_rng_state": _jsonable(random.getstate()),
        }
        (tmp / "optimizer.json").write_text(json.dumps(extra), encoding="utf-8")
        # state.json last: its presence marks the checkpoint complete.
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    _prune(checkpoint_dir(output_dir), keep)
    return target


def load_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainerState:
    """Restore model, optimiser, scheduler and RNG from a checkpoint directory."""
    model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    tensors = load_file(str(path / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("torch_rng_state"))
    extra = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
    optimizer.load_state_dict(_unflatten_optimizer(tensors, extra["optimizer"]))
    scheduler.load_state_dict(extra["scheduler"])
    random.setstate(_tuples(extra["python_rng_state"]))
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return TrainerState(**state)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage; a clone per tensor is cheap next to training.
    return {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in saved["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": saved["param_groups"]}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _prune(root: Path, keep: int) -> None:
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def numpy_seed(seed: int, epoch: int) -> np.random.Generator:
    """The batch-order generator of one epoch: the same on a resumed run."""
    return np.random.default_rng([seed, epoch])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
