"""The one entry point of training, for fine-tuning and the frozen-encoder path alike.

`TextClassifier.fit` calls `open_run_folder` and `train_model`; both work the same
whether one process runs or several were started by `accelerate launch` or
`torchrun`: the main process claims and writes the folder, the others train
beside it (fine-tuning) or wait for it (the frozen path, which runs in the
main process only: its heads train in seconds on cached vectors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from textheads.config import RunConfig
from textheads.data.dataset import LabelledData
from textheads.model import TextHeadsModel
from textheads.training import distributed
from textheads.training.best_model import read_validation_metrics
from textheads.training.embedding_cache import default_cache_dir
from textheads.training.frozen import FrozenHeadsTrainer, ignored_settings
from textheads.training.loop import Trainer, TrainResult
from textheads.training.run_log import RunLog


@dataclass
class TrainOutcome:
    """A finished run, and (frozen path) the best heads' validation outputs, which spare
    threshold tuning a second encoding of the validation texts."""

    result: TrainResult
    validation_outputs: dict[str, np.ndarray] | None = None
    embedding_cache: Path | None = None
    """The frozen path: the folder caching its pooled vectors, where evaluation finds the
    texts it has seen (None: the run fine-tuned)."""


def uses_frozen_path(model: TextHeadsModel, config: RunConfig) -> bool:
    """The frozen-encoder fast path: the encoder is frozen and no head reads token states."""
    return config.train.freeze == "encoder" and not model.reads_tokens


def train_model(
    model: TextHeadsModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RunConfig,
    train_data: LabelledData,
    validation_data: LabelledData | None,
    *,
    resume: bool = False,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
    run_log: RunLog | None = None,
) -> TrainOutcome:
    """Train `model` into `config.output_dir` (already claimed with `run_folder`); the best
    model is saved there."""
    if not uses_frozen_path(model, config):
        trainer = Trainer(model, tokenizer, config, train_data, validation_data, show_progress=show_progress, echo=echo, run_log=run_log)
        return TrainOutcome(trainer.train(resume=resume))
    output_dir = Path(config.output_dir or ".")
    if not distributed.is_main_process():
        return TrainOutcome(TrainResult(output_dir, 0, None, None, False, None, None))
    processes = distributed.num_processes()
    if processes > 1:
        echo(f"Frozen encoder: the heads train in the main process only; the other {processes - 1} process(es) wait")
    ignored = ignored_settings(config.train, resume=resume)
    if ignored:
        echo(f"Frozen encoder: ignoring {', '.join(ignored)} (the fast path keeps no checkpoints and trains on the CPU)")
    model.freeze("encoder")
    trainer = FrozenHeadsTrainer(model, tokenizer, config, train_data, validation_data, show_progress=show_progress, echo=echo, run_log=run_log)
    state = trainer.train()
    result = TrainResult(output_dir, state.global_step, state.best_metric, state.best_step, state.stopped_early, None, read_validation_metrics(output_dir))
    cache_dir = Path(config.train.cache_dir) if config.train.cache_dir else default_cache_dir()
    return TrainOutcome(result, trainer.validation_outputs, cache_dir)
