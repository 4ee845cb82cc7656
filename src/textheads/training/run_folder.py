"""The folder of a training run: who may use it, and how a run starts, resumes or
replaces another in it.

Only a new or empty folder, or one textheads wrote, is used (see
`textheads.ownership`); one run at a time holds it (a lock); `overwrite`
deletes only the earlier run's own files; and a run is resumed only with the
settings and data it was started with. A resumed run continues the old learning-rate plan, batch order and
best-model record, so resuming with other epochs, learning rates, batch size,
seed, heads or data would silently train something that is neither the old
run nor the new one. The run folder keeps the config it started with
(`training_config.yaml`) and a digest of its data (in the ownership marker);
a resume compares both and names every difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from textheads.config import RunConfig, dump_config
from textheads.data.dataset import LabelledData
from textheads.errors import ConfigError
from textheads.ownership import (
    claim_folder,
    holds_model,
    read_marker,
    refuse_foreign_folder,
    remove_run,
    run_lock,
)
from textheads.saving import remove_partial_saves
from textheads.training import distributed
from textheads.training.checkpoint import latest_checkpoint, remove_partial_checkpoints

_WHERE = "--output-dir (output_dir in the config)"

CHANGEABLE_ON_RESUME = frozenset(
    {
        "output_dir",
        "data.train",  # paths may move; their content is compared by digest
        "data.validation",
        "data.test",
        "train.num_threads",
        "train.device",
        "train.cache_dir",
        "train.keep_checkpoints",
        "train.log_every_steps",
        "train.save_every_steps",
        "train.eval_every_steps",
        "train.report_to",
        # The same update in more or fewer micro-batches (a resume on a smaller GPU).
        "train.gradient_accumulation_steps",
    }
)
"""Settings that do not change what a run computes, only where and how it reports and saves."""


def data_digest(data: LabelledData) -> str:
    """A digest of the texts and every head's targets and masks, in row order."""
    digest = hashlib.sha256()
    for text in data.texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    for name in sorted(data.targets):
        target = data.targets[name]
        digest.update(name.encode("utf-8"))
        digest.update(target.values.tobytes())
        digest.update(target.mask.tobytes())
    return digest.hexdigest()


def flatten_keys(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of `a.b.c` keys (an empty mapping stays a value)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten_keys(item, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): value}


def config_changes(started: dict[str, Any], now: RunConfig) -> list[str]:
    """`key: old → new` for every setting that differs and matters to the computation."""
    old = flatten_keys(started)
    new = flatten_keys(yaml.safe_load(dump_config(now)))
    changes = []
    for key in sorted(set(old) | set(new)):
        if key in CHANGEABLE_ON_RESUME or old.get(key) == new.get(key):
            continue
        changes.append(f"{key}: {old.get(key, '(unset)')!r} → {new.get(key, '(unset)')!r}")
    return changes


def check_resume(output_dir: Path, config: RunConfig, digests: dict[str, str], stored_digests: dict[str, str]) -> None:
    """Raise `ConfigError` naming what changed since the run in `output_dir` started."""
    changes = []
    path = output_dir / "training_config.yaml"
    if path.is_file():
        started = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        changes += config_changes(started, config)
    for split, digest in digests.items():
        if split in stored_digests and stored_digests[split] != digest:
            changes.append(f"the {split} data (data.{split}) differs from the data the run started with")
    if changes:
        listed = "\n  ".join(changes)
        raise ConfigError(
            f"cannot resume the run in {output_dir}: resuming continues its old plan, and these "
            f"settings differ from the ones it started with:\n  {listed}\n"
            "Put them back to resume, or start afresh with --overwrite (or another --output-dir)."
        )


@contextmanager
def open_run_folder(
    output_dir: Path,
    config: RunConfig,
    digests: dict[str, str],
    *,
    resume: bool,
    overwrite: bool,
    echo: Callable[[str], None] = print,
) -> Iterator[None]:
    """Check, lock and mark `output_dir` for a run of `config` on data with `digests`, and
    remove the temporary folders a run killed mid-save left there (only those).

    Refused: a non-empty folder textheads did not write; a folder holding an
    earlier run's model or checkpoints unless `resume` (continue it: only with
    the same settings and data, and only from a checkpoint) or `overwrite`
    (delete that run's own files first); a folder another run holds.

    Under a launcher only the main process checks, locks and marks the folder, for the
    run; the other processes wait until it holds it.
    """
    if not distributed.is_main_process():
        distributed.wait_for_everyone()
        yield
        return
    if resume and overwrite:
        raise ConfigError("--resume continues the run in output_dir and --overwrite replaces it: choose one")
    refuse_foreign_folder(output_dir, option=_WHERE)
    with run_lock(output_dir):
        # What a run killed mid-save left; the lock says no other run is writing them now.
        remove_partial_saves(output_dir)
        remove_partial_checkpoints(output_dir)
        marker = read_marker(output_dir) or {}
        has_checkpoint, has_model = latest_checkpoint(output_dir) is not None, holds_model(output_dir)
        if overwrite:
            removed = remove_run(output_dir)
            if removed:
                echo(f"--overwrite: removed the earlier run's {', '.join(removed)} from {output_dir}")
        elif resume and has_checkpoint:
            check_resume(output_dir, config, digests, marker.get("data", {}))
        elif resume and has_model:
            raise ConfigError(
                f"{output_dir} holds a trained model but no checkpoint to resume from (a frozen-encoder "
                f"run keeps none). Train afresh over it with --overwrite, or choose another {_WHERE}."
            )
        elif has_checkpoint or has_model:
            raise ConfigError(
                f"output_dir {str(output_dir)!r} already holds a model or checkpoints. Pass --resume "
                f"(resume=True) to continue that run, --overwrite (overwrite=True) to replace it, or "
                f"choose another {_WHERE}."
            )
        else:
            remove_run(output_dir)  # leftovers of a run that ended before its first checkpoint
        claim_folder(output_dir, "train", data=digests)
        distributed.wait_for_everyone()
        yield
