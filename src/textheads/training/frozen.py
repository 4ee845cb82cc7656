"""The frozen-encoder fast path: encode each text once (cached on disk), then
train only the heads, on the cached vectors, for many epochs in seconds."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from textheads.config import FROZEN_TRAIN_DEFAULTS, RunConfig, TrainSection
from textheads.data.dataset import LabelledData
from textheads.evaluation import evaluate_outputs
from textheads.heads import Head
from textheads.inference.batching import run_in_batches, tokenize
from textheads.inference.predict import pad_id
from textheads.losses import combined_loss
from textheads.model import TextHeadsModel
from textheads.model_config import long_text_of, max_length_of
from textheads.progress import progress
from textheads.training.best_model import BestModelTracker, save_best
from textheads.training.checkpoint import TrainerState
from textheads.training.embedding_cache import (
    EmbeddingCache,
    default_cache_dir,
    encoder_key,
    tokenizer_digest,
    weights_digest,
)
from textheads.training.optim import build_optimizer, build_scheduler
from textheads.training.run_log import RunLog, learning_rates
from textheads.training.targets import TargetTensors

FROZEN_DEFAULT_EPOCHS = FROZEN_TRAIN_DEFAULTS["epochs"]


def embedding_cache_for(
    model: TextHeadsModel,
    tokenizer: PreTrainedTokenizerBase,
    cache_dir: Path | None,
    *,
    warn: Callable[[str], None] | None = None,
) -> EmbeddingCache:
    """The disk cache of `model`'s pooled vectors, keyed by its encoder's config and weights, the
    tokenizer, the pooling, the max length and `model.long_text`. `warn` receives a line per damaged shard dropped
    (default: `warnings.warn`)."""
    config = model.config
    key = encoder_key(
        config.encoder, weights_digest(model.encoder), tokenizer_digest(tokenizer), config.pooling, config.pool_layers, max_length_of(config), long_text_of(config)
    )
    return EmbeddingCache(cache_dir or default_cache_dir(), key, width=model.heads_input_size, warn=warn)


def pooled_vectors_fn(
    model: TextHeadsModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    batch_size: int = 128,
    show_progress: bool = False,
    device: torch.device | None = None,
) -> Callable[[list[str]], np.ndarray]:
    """A function encoding texts into `model`'s pooled vectors, in length-sorted batches, on
    `device` (default: where the model is; the model is moved there). Under `long_text: windows`
    a text's vector is its windows' combined, as the model combines them."""
    max_length, long_text = max_length_of(model.config), long_text_of(model.config)

    def compute(texts: list[str]) -> np.ndarray:
        where = device or next(model.parameters()).device
        model.to(where)

        def run(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
            return {"pooled": model.encode(**{k: v.to(where) for k, v in batch.items()}).float().cpu().numpy()}

        tokens = tokenize(tokenizer, texts, max_length, long_text)
        out = {"pooled": np.zeros((len(texts), model.heads_input_size), dtype=np.float32)}
        model.encoder.eval()
        with torch.inference_mode():
            return run_in_batches(tokens, pad_id(tokenizer), run, out, batch_size=batch_size, show_progress=show_progress, description="Encoding")["pooled"]

    return compute


def encode_with_cache(
    model: TextHeadsModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    cache_dir: Path | None,
    batch_size: int = 128,
    show_progress: bool = False,
) -> tuple[np.ndarray, int]:
    """Pooled vectors of `texts`, from the disk cache where present; (vectors, newly encoded)."""
    compute = pooled_vectors_fn(model, tokenizer, batch_size=batch_size, show_progress=show_progress)
    return embedding_cache_for(model, tokenizer, cache_dir).get_or_compute(texts, compute)


def cached_predictions(
    model: TextHeadsModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], *, cache_dir: Path | None, show_progress: bool = False
) -> dict[str, np.ndarray]:
    """`model`'s predictions (probabilities, values) for `texts` from their cached pooled vectors,
    the texts not cached yet encoded (and cached): what the model predicts, without encoding
    again the texts a frozen encoder has seen, e.g. the test texts of a second run."""
    vectors, _ = encode_with_cache(model, tokenizer, texts, cache_dir=cache_dir, show_progress=show_progress)
    model.eval()
    with torch.inference_mode():
        return {k: v.numpy() for k, v in model.to_predictions(model.forward_heads(torch.from_numpy(vectors))).items()}


IGNORED_SETTINGS = ("eval_every_steps", "save_every_steps", "keep_checkpoints", "max_time", "num_threads", "gradient_accumulation_steps")
"""Settings of the fine-tuning loop that the frozen path does not use (it keeps no checkpoints:
a rerun reads the cached vectors and trains the heads again in seconds)."""


def ignored_settings(settings: TrainSection, *, resume: bool) -> list[str]:
    """The settings given (not at their defaults) that the frozen path does not honour."""
    defaults = TrainSection()
    ignored = [f"train.{name}" for name in IGNORED_SETTINGS if getattr(settings, name) != getattr(defaults, name)]
    return ignored + (["--resume (the frozen path trains again from the cached vectors)"] if resume else [])


class FrozenHeadsTrainer:
    """Trains the heads of a frozen-encoder model on cached pooled vectors.

    The texts are encoded on `train.device`; the heads then train on the CPU (an epoch
    of small matrix products, faster there than a round trip to a GPU)."""

    def __init__(
        self,
        model: TextHeadsModel,
        tokenizer: PreTrainedTokenizerBase,
        config: RunConfig,
        train_data: LabelledData,
        validation_data: LabelledData | None,
        *,
        show_progress: bool = True,
        echo: Callable[[str], None] = print,
        run_log: RunLog | None = None,
    ) -> None:
        from textheads.inference.device import resolve_device
        from textheads.training.loop import training_precision

        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.settings = config.train
        self.precision = training_precision(self.settings.precision, torch.device("cpu"))  # heads train on the CPU
        self.output_dir = Path(config.output_dir or ".")
        self.echo, self.show_progress = echo, show_progress
        self.validation_data = validation_data
        self.validation_outputs: dict[str, np.ndarray] | None = None
        """After `train`: the best heads' outputs on the validation data, for threshold tuning."""
        self.log = run_log or RunLog(self.output_dir)
        self.tracker = BestModelTracker(self.settings.metric, self.settings.early_stopping_patience, log=self._log, echo=lambda _: None)
        cache_dir = Path(self.settings.cache_dir) if self.settings.cache_dir else None
        started = time.monotonic()
        cache = embedding_cache_for(model, tokenizer, cache_dir, warn=lambda line: echo(f"Warning: {line}"))
        compute = pooled_vectors_fn(model, tokenizer, show_progress=show_progress, device=resolve_device(self.settings.device))
        self.train_vectors, new_train = cache.get_or_compute(train_data.texts, compute)
        self.validation_vectors = None
        new_validation = 0
        if validation_data is not None:
            self.validation_vectors, new_validation = cache.get_or_compute(validation_data.texts, compute)
        model.to("cpu")
        total = len(train_data) + (len(validation_data) if validation_data is not None else 0)
        echo(f"Frozen encoder: {total - new_train - new_validation} of {total} texts from the embedding cache, {new_train + new_validation} encoded ({time.monotonic() - started:.1f} s)")
        self.targets = TargetTensors(model, train_data)
        self.validation_targets = TargetTensors(model, validation_data) if validation_data is not None else None

    def train(self) -> TrainerState:
        """Train the heads; save the best (by `train.metric`) as `output_dir`; the run's state."""
        settings = self.settings
        epochs = settings.epochs if settings.epochs is not None else FROZEN_DEFAULT_EPOCHS
        n = len(self.train_vectors)
        steps_per_epoch = math.ceil(n / settings.batch_size)
        total = settings.max_steps or math.ceil(epochs * steps_per_epoch)
        optimizer = build_optimizer(self.model, settings)
        scheduler = build_scheduler(optimizer, total, settings.warmup_ratio)
        vectors = torch.from_numpy(self.train_vectors)
        for head in self.model.heads.values():
            if isinstance(head, Head):
                head.standardise(vectors)
        rng = np.random.default_rng(settings.seed)
        state = TrainerState()
        best_heads: dict[str, Any] | None = None
        self._log({"event": "start", "step": 0, "total_steps": total, "device": "cpu", "precision": self.precision})
        self.model.train()
        with progress(total, "Training heads", enabled=self.show_progress) as advance:
            while state.global_step < total and not state.stopped_early:
                state.global_step, losses = self._epoch(vectors, rng.permutation(n), state.global_step, total, optimizer, scheduler, advance)
                state.epoch += 1
                # One training-loss record an epoch (the mean over its steps), as the fine-tuning loop logs every log_every_steps.
                epochs_done = round(state.global_step / steps_per_epoch, 3)
                self._log({"step": state.global_step, "epoch": epochs_done, **losses, "lr": scheduler.get_last_lr()[0]}, learning_rates(optimizer))
                if self.validation_vectors is None:
                    continue
                if self.tracker.judge(state, epoch=state.epoch, metrics=self._evaluate()):
                    best_heads = copy.deepcopy(self.model.heads.state_dict())
            if state.stopped_early:
                self.echo(f"Early stopping after epoch {state.epoch}: no improvement in {state.evals_without_improvement} evaluation(s)")
        state.stopped_early = state.global_step < total
        if best_heads is None:
            state.best_step = state.global_step
            save_best(self.model, self.tokenizer, self.output_dir)
            return state
        self.model.heads.load_state_dict(best_heads)
        assert state.best_metric is not None and state.best_step is not None
        self.echo(f"Best validation {settings.metric} = {state.best_metric:.4f} at epoch {math.ceil(state.best_step / steps_per_epoch)}")
        self.model.eval()
        self.validation_outputs = self._validation_outputs()
        save_best(self.model, self.tokenizer, self.output_dir, validation_outputs=self.validation_outputs, validation_data=self.validation_data)
        return state

    def _log(self, record: dict[str, Any], scalars: dict[str, float] | None = None) -> None:
        """Every record of the run's log goes through here."""
        self.log.write(record, scalars=scalars)

    def _epoch(
        self, vectors: torch.Tensor, order: np.ndarray, step: int, total: int, optimizer: Any, scheduler: Any, advance: Any
    ) -> tuple[int, dict[str, float]]:
        """One pass over the training vectors in `order` (stopping at `total` steps); the new step
        and the pass's mean training loss, total (`loss`) and per head (`loss.HEAD`)."""
        size = self.settings.batch_size
        sums: dict[str, float] = {}
        steps = 0
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            targets, masks = self.targets.batch(batch)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                raw = self.model.forward_heads(vectors[batch])
            loss, parts = combined_loss(self.model.specs, {k: v.float() for k, v in raw.items()}, targets, masks, balance=self.settings.balance_heads)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            for key, value in {"loss": loss, **{f"loss.{name}": part for name, part in parts.items()}}.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            step += 1
            steps += 1
            advance()
            if step >= total:
                break
        return step, {key: value / max(1, steps) for key, value in sums.items()}

    def _validation_outputs(self) -> dict[str, np.ndarray]:
        """The heads' predictions (probabilities, values) on the cached validation vectors."""
        assert self.validation_vectors is not None
        with torch.inference_mode():
            return {k: v.numpy() for k, v in self.model.to_predictions(self.model.forward_heads(torch.from_numpy(self.validation_vectors))).items()}

    def _evaluate(self) -> dict[str, Any]:
        assert self.validation_vectors is not None and self.validation_data is not None and self.validation_targets is not None
        self.model.eval()
        with torch.inference_mode():
            raw = self.model.forward_heads(torch.from_numpy(self.validation_vectors))
            loss, _ = combined_loss(self.model.specs, raw, self.validation_targets.values, self.validation_targets.masks)
            outputs = {k: v.numpy() for k, v in self.model.to_predictions(raw).items()}
        self.model.train()
        metrics: dict[str, Any] = evaluate_outputs(self.model.specs, outputs, self.validation_data, tune_thresholds=True, detailed=False)
        metrics["loss"] = float(loss)
        return metrics
