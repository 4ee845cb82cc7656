"""Resumable checkpoints, written atomically under `output_dir/checkpoints/`.

A checkpoint is a directory `step-NNNNNNNN` holding the model weights, the
optimiser's tensors (safetensors) and everything else as JSON. It appears
under its final name only once complete, so a run killed at any moment
(even `kill -9`) leaves the previous checkpoint intact; the temporary folder
such a kill leaves is removed by the next run on the folder (`remove_partial_checkpoints`,
called by `textheads.training.run_folder`).
A new checkpoint is checked (every file whole) before older ones are pruned,
and each is checked again before a resume trusts it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from textheads.errors import CheckpointError, SaveError
from textheads.io import atomic_directory
from textheads.training import optimizer_state
from textheads.training.integrity import safetensors_problem

_PREFIX = "step-"
_TENSOR_FILES = ("model.safetensors", "optimizer.safetensors")
_JSON_FILES = ("optimizer.json", "state.json")
# What `atomic_directory` names its temporary and replaced folders (tempfile's 8 random characters).
_PARTIAL = re.compile(r"\.tmp-step-\d{8}-[a-z0-9_]{8}|\.old-step-\d{8}")


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


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """The complete checkpoints (those with a `state.json`), newest first."""
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / "state.json").is_file()]
    return sorted(done, reverse=True)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    done = complete_checkpoints(output_dir)
    return done[0] if done else None


def remove_partial_checkpoints(output_dir: Path) -> None:
    """Remove the temporary folders a killed checkpoint write leaves; nothing else."""
    root = checkpoint_dir(output_dir)
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and _PARTIAL.fullmatch(path.name):
                shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    output_dir: Path,
    state: TrainerState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    keep: int,
    grad_scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write a checkpoint atomically; once it reads back whole, drop the oldest beyond `keep`."""
    target = checkpoint_dir(output_dir) / f"{_PREFIX}{state.global_step:08d}"
    try:
        with atomic_directory(target) as tmp:
            _write(tmp, state, model, optimizer, scheduler, grad_scaler)
            problem = checkpoint_problem(tmp)
            if problem is not None:
                raise SaveError(f"the checkpoint written to {target} does not read back: {problem}")
    except SaveError:
        raise
    except (OSError, SafetensorError) as exc:
        raise SaveError(f"cannot write the checkpoint {target}: {exc} (is the disk full?)") from None
    _prune(checkpoint_dir(output_dir), keep, newest=target)
    return target


def _write(
    folder: Path,
    state: TrainerState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_scaler: torch.amp.GradScaler | None,
) -> None:
    save_file(_contiguous(model.state_dict()), str(folder / "model.safetensors"))
    tensors, optimizer_json = optimizer_state.flatten(model, optimizer)
    tensors["torch_rng_state"] = torch.get_rng_state()
    if torch.cuda.is_available():  # so that a resume on the GPU draws the same dropout masks
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_rng_state.{index}"] = cuda_state
    save_file(tensors, str(folder / "optimizer.safetensors"))
    extra = {
        "optimizer": optimizer_json,
        "scheduler": scheduler.state_dict(),
        "python_rng_state": _jsonable(random.getstate()),
    }
    if grad_scaler is not None:
        extra["grad_scaler"] = grad_scaler.state_dict()
    (folder / "optimizer.json").write_text(json.dumps(extra), encoding="utf-8")
    # state.json last: its presence marks the checkpoint complete.
    (folder / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with a checkpoint's files, or None when each is whole (reads headers and JSON only)."""
    for name in _TENSOR_FILES:
        problem = safetensors_problem(path / name)
        if problem is not None:
            return f"{name} is {problem}"
    for name in _JSON_FILES:
        try:
            data = json.loads((path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as exc:
            return f"{name} is unreadable ({exc.strerror or exc})"
        except ValueError as exc:
            return f"{name} is not valid JSON ({exc})"
        if not _json_fits(name, data):
            return f"{name} does not hold what textheads writes there (found {sorted(data) if isinstance(data, dict) else type(data).__name__})"
    return None


def _json_fits(name: str, data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if name == "optimizer.json":
        return {"optimizer", "scheduler", "python_rng_state"} <= data.keys()
    try:
        TrainerState(**data)
    except TypeError:
        return False
    return True


@dataclass
class Checkpoint:
    """A checkpoint's contents, read and checked, not yet applied to a model."""

    path: Path
    state: TrainerState
    model: dict[str, torch.Tensor]
    optimizer_tensors: dict[str, torch.Tensor]
    extra: dict[str, Any]


def read_checkpoint(path: Path) -> Checkpoint:
    """Read every file of a checkpoint; `CheckpointError` naming the file and the damage when one is not whole."""
    problem = checkpoint_problem(path)
    if problem is None:
        try:
            model = load_file(str(path / "model.safetensors"))
            tensors = load_file(str(path / "optimizer.safetensors"))
        except (OSError, SafetensorError) as exc:
            problem = f"a tensor file does not load ({exc})"
        else:
            if "torch_rng_state" not in tensors:
                problem = "optimizer.safetensors lacks the random number generator state"
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
    state = TrainerState(**json.loads((path / "state.json").read_text(encoding="utf-8")))
    extra = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
    return Checkpoint(path, state, model, tensors, extra)


def apply_checkpoint(
    checkpoint: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    grad_scaler: torch.amp.GradScaler | None = None,
) -> TrainerState:
    """Restore model, optimiser, scheduler, fp16 loss scale and RNGs (CUDA's too, where the
    checkpoint and this machine have as many GPUs); RuntimeError, ValueError or KeyError when
    the checkpoint does not fit them (another config)."""
    model.load_state_dict(checkpoint.model, strict=True)
    tensors = dict(checkpoint.optimizer_tensors)
    rng_state = tensors.pop("torch_rng_state")
    cuda_states = [tensors.pop(key) for key in sorted((k for k in list(tensors) if k.startswith("cuda_rng_state.")), key=lambda k: int(k.split(".")[1]))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    if grad_scaler is not None and "grad_scaler" in checkpoint.extra:
        grad_scaler.load_state_dict(checkpoint.extra["grad_scaler"])
    optimizer_state.restore(model, optimizer, tensors, checkpoint.extra["optimizer"])
    scheduler.load_state_dict(checkpoint.extra["scheduler"])
    torch.set_rng_state(rng_state)
    random.setstate(_tuples(checkpoint.extra["python_rng_state"]))
    return checkpoint.state


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage; a clone per tensor is cheap next to training.
    return {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _prune(root: Path, keep: int, newest: Path) -> None:
    """Keep the `keep` newest checkpoints up to `newest`; later ones belong to a future this run
    abandoned (damaged checkpoints it resumed behind), so they go too."""
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX))
    later = [p for p in done if p.name > newest.name]
    kept = [p for p in done if p.name <= newest.name]
    for old in later + kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def numpy_seed(seed: int, epoch: int) -> np.random.Generator:
    """The batch-order generator of one epoch: the same on a resumed run."""
    return np.random.default_rng([seed, epoch])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
