"""The fine-tuning loop on accelerate: batches, optimiser steps, evaluation, checkpoints.

One process, or several started by `accelerate launch` / `torchrun` (see
`textheads.training.distributed`): each process computes its share of every
batch (`textheads.training.step`), every process evaluates its share of the
validation texts and the main process judges the whole, writes the files and
tells the others whether to stop."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from textheads.config import RunConfig
from textheads.data.dataset import LabelledData
from textheads.errors import CheckpointError, ConfigError
from textheads.evaluation import evaluate_outputs
from textheads.inference.batching import Tokenized, grouped_batches, tokenize
from textheads.inference.predict import pad_id, run_heads, to_user_outputs
from textheads.losses import combined_loss
from textheads.model import TextHeadsModel
from textheads.model_config import long_text_of, max_length_of
from textheads.progress import progress
from textheads.training import distributed
from textheads.training.best_model import BestModelTracker, read_validation_metrics, save_best
from textheads.training.checkpoint import (
    TrainerState,
    apply_checkpoint,
    complete_checkpoints,
    numpy_seed,
    read_checkpoint,
    save_checkpoint,
    seed_everything,
)
from textheads.training.optim import LinearSchedule, build_optimizer, build_scheduler, schedule_of
from textheads.training.run_log import RunLog, learning_rates
from textheads.training.step import StepRunner
from textheads.training.targets import TargetTensors

DEFAULT_EPOCHS = 3


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: Path
    global_step: int
    best_metric: float | None
    best_step: int | None
    stopped_early: bool
    resumed_from: str | None
    validation_metrics: dict[str, Any] | None
    train_seconds: float = 0.0
    """Wall time of the training loop (evaluations and saves included)."""


def training_precision(name: str, device: torch.device) -> str:
    """`train.precision` on `device`: `auto` → `bf16` where `device` computes bfloat16
    natively, else `fp32` (inference's `auto` differs: see `textheads.inference.device`).

    On a CPU without native bf16, autocast emulates it and runs slower than fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if device.type == "cpu":
        native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return "bf16" if native else "fp32"
    return "fp32"


class Trainer:
    """Trains a `TextHeadsModel` as a `RunConfig` says.

    The best model (by `train.metric` on the validation data, or the last one
    without validation data) is saved as `output_dir` itself; resumable
    checkpoints go to `output_dir/checkpoints/`. Under a launcher, every
    process constructs its own `Trainer`; only the main one writes or prints.
    """

    def __init__(
        self,
        model: TextHeadsModel,
        tokenizer: PreTrainedTokenizerBase,
        config: RunConfig,
        train_data: LabelledData,
        validation_data: LabelledData | None = None,
        *,
        show_progress: bool = True,
        echo: Callable[[str], None] = print,
        run_log: RunLog | None = None,
    ) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.settings = config.train
        self.output_dir = Path(config.output_dir)
        self.accelerator = distributed.start_accelerator(self.settings.device)
        self.is_main = bool(self.accelerator.is_main_process)
        self.show_progress = show_progress and self.is_main
        self.echo = echo if self.is_main else _silent
        self.train_data, self.validation_data = train_data, validation_data
        self.pad_id = pad_id(tokenizer)
        # A batch holds batch_size texts; under `long_text: windows` each brings up to
        # max_windows windows into the step (one loss per text, over all its windows).
        max_length, long_text = max_length_of(model.config), long_text_of(model.config)
        self.train_tokens = tokenize(tokenizer, train_data.texts, max_length, long_text)
        self.validation_tokens: Tokenized | None = None
        if validation_data is not None:
            self.validation_tokens = tokenize(tokenizer, validation_data.texts, max_length, long_text)
        self.targets = TargetTensors(model, train_data)
        self.validation_targets = TargetTensors(model, validation_data) if validation_data is not None else None
        self.steps_per_epoch = math.ceil(len(train_data) / self.settings.batch_size)
        epochs = self.settings.epochs if self.settings.epochs is not None else DEFAULT_EPOCHS
        self.total_steps = self.settings.max_steps or math.ceil(epochs * self.steps_per_epoch)
        self.log = run_log or RunLog(self.output_dir)  # writes in the main process only
        self.device = self.accelerator.device
        self.precision = training_precision(self.settings.precision, self.device)
        self.tracker = BestModelTracker(self.settings.metric, self.settings.early_stopping_patience, log=self._log, echo=self.echo)
        model.to(self.device)

    # -- public -----------------------------------------------------------------

    def train(self, *, resume: bool = False) -> TrainResult:
        """Run (or continue) training; return where the best model is and how it scored."""
        seed_everything(self.settings.seed)
        if self.settings.num_threads:
            torch.set_num_threads(self.settings.num_threads)
        self.model.freeze(self.settings.freeze)
        optimizer = build_optimizer(self.model, self.settings)
        scheduler = build_scheduler(optimizer, self.total_steps, self.settings.warmup_ratio)
        scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        state, resumed_from = self._resume(optimizer, scheduler, scaler) if resume else (TrainerState(), None)
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        processes = self.accelerator.num_processes
        self._log({"event": "start", "step": state.global_step, "total_steps": self.total_steps, "device": str(self.device), "precision": self.precision, **({"processes": processes} if processes > 1 else {})})
        # The scheduler is not prepared: accelerate would step it once per process, and here a
        # step is one batch of `train.batch_size`, whatever the number of processes.
        prepared_model, prepared_optimizer = self.accelerator.prepare(self.model, optimizer)
        steps = StepRunner(self.accelerator, prepared_model, self.model.specs, prepared_optimizer, scheduler, self.settings, self.train_tokens, self.targets, self.pad_id, self.precision, scaler)
        self._run(state, steps, optimizer, scheduler, scaler)
        return self._result(state, resumed_from)

    def _resume(self, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler | None) -> tuple[TrainerState, str | None]:
        """Restore the newest checkpoint that reads back whole, warning about any damaged one
        skipped; (state, checkpoint path), or a fresh state when there is no checkpoint."""
        checkpoints = complete_checkpoints(self.output_dir)
        if not checkpoints:
            self.echo(f"No checkpoint under {self.output_dir / 'checkpoints'}; starting from the beginning")
            return TrainerState(), None
        damaged: list[CheckpointError] = []
        for path in checkpoints:
            try:
                checkpoint = read_checkpoint(path)
            except CheckpointError as exc:
                damaged.append(exc)
                continue
            if damaged:
                skipped = "; ".join(str(exc) for exc in damaged)
                self.echo(f"Warning: {skipped}. Falling back to the checkpoint before it, {path}")
            try:
                state = apply_checkpoint(checkpoint, self.model, optimizer, scheduler, scaler)
            except (RuntimeError, ValueError, KeyError) as exc:
                raise ConfigError(
                    f"cannot resume from {path}: it does not match this config (heads, labels, "
                    f"head type (conv_kernel_sizes), encoder or freezing changed?): {str(exc).splitlines()[0]}"
                ) from None
            self.echo(f"Resumed from {path} (epoch {state.epoch + 1}, step {state.global_step} of {self.total_steps})")
            self._log({"event": "resumed", "from": str(path), "step": state.global_step, "skipped_damaged": [str(e) for e in damaged]})
            return state, str(path)
        reasons = "; ".join(str(exc) for exc in damaged)
        raise CheckpointError(
            f"cannot resume: {reasons}; there is no whole checkpoint to fall back to (train.keep_checkpoints: 2 "
            "keeps the one before the newest). To start afresh, train without --resume into a new "
            "output_dir, or with --overwrite to replace this run."
        )

    # -- the loop ---------------------------------------------------------------

    def _run(self, state: TrainerState, steps: StepRunner, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler | None) -> None:
        settings = self.settings
        started = monotonic() - state.elapsed_seconds
        budget = settings.max_time_seconds
        eval_every = settings.eval_every_steps
        save_every = settings.save_every_steps
        self.model.train()
        if self.model.encoder_frozen:
            self.model.encoder.eval()  # no dropout on features the encoder will not learn from
        window: list[dict[str, float]] = []
        schedule = schedule_of(scheduler)
        replan_after_evaluation = False
        self._plan_mark = (state.global_step, state.elapsed_seconds)

        def checkpoint() -> None:
            if self.is_main:
                save_checkpoint(self.output_dir, state, self.model, optimizer, scheduler, settings.keep_checkpoints, scaler)

        with progress(schedule.total_steps, "Training", enabled=self.show_progress) as advance:
            advance(state.global_step)
            while state.global_step < schedule.total_steps and not state.stopped_early:
                # `batch_in_epoch` counts whole batches (optimiser steps), so it means the same
                # data position whatever the number of processes.
                batches = grouped_batches(self.train_tokens.lengths, settings.batch_size, numpy_seed(settings.seed, state.epoch))
                for indices in batches[state.batch_in_epoch :]:
                    parts = steps.run(indices)
                    state.global_step += 1
                    state.batch_in_epoch += 1
                    # The main process's clock decides the time budget for every process.
                    state.elapsed_seconds = distributed.from_main(monotonic() - started) if budget is not None else monotonic() - started
                    window.append(parts)
                    advance(info=f"loss {parts['loss']:.4f}")
                    if state.global_step % settings.log_every_steps == 0:
                        # Mean over the steps since the last record; heads absent from a batch count as 0.
                        means = {key: float(np.mean([p[key] for p in window])) for key in window[0]}
                        self._log({"step": state.global_step, "epoch": self._epochs_done(state), **means, "lr": scheduler.get_last_lr()[0]}, learning_rates(optimizer))
                        window.clear()
                    if budget is not None and self._replan_due(state, schedule, after_evaluation=replan_after_evaluation):
                        replan_after_evaluation = False
                        self._plan_to_budget(schedule, state, budget)
                        advance(0, total=schedule.total_steps)
                    out_of_time = budget is not None and state.elapsed_seconds >= budget
                    finished = state.global_step >= schedule.total_steps or out_of_time
                    if finished or (eval_every and state.global_step % eval_every == 0):
                        self._evaluate_and_checkpoint(state, checkpoint)
                        replan_after_evaluation = True
                    elif save_every and state.global_step % save_every == 0:
                        checkpoint()
                    if out_of_time:
                        self.echo(f"Stopped: the time budget train.max_time={settings.max_time} is spent")
                        state.stopped_early = True
                    if finished or state.stopped_early:
                        break
                else:
                    state.epoch += 1
                    state.batch_in_epoch = 0
                    if not eval_every and state.global_step < schedule.total_steps:
                        self._evaluate_and_checkpoint(state, checkpoint)
                        replan_after_evaluation = True

    def _epochs_done(self, state: TrainerState) -> float:
        """Epochs completed, as a fraction (1.0 at the end of the first)."""
        return round(state.global_step / self.steps_per_epoch, 3)

    def _calibration_steps(self) -> int:
        """Steps timed before a `max_time` budget re-plans the schedule."""
        return max(5, min(50, self.total_steps // 20))

    def _replan_due(self, state: TrainerState, schedule: LinearSchedule, *, after_evaluation: bool) -> bool:
        """Whether a `max_time` budget re-plans now: after the first timed steps, after each
        evaluation (they cost time too), and once a tenth of the plan (at least the calibration
        steps) ran since the last plan (a budget shorter than an epoch may see no evaluation)."""
        calibration, mark_step = self._calibration_steps(), self._plan_mark[0]
        if state.global_step == calibration or after_evaluation:
            return True
        return mark_step >= calibration and state.global_step - mark_step >= max(calibration, schedule.total_steps // 10)

    def _plan_to_budget(self, schedule: LinearSchedule, state: TrainerState, budget: float) -> None:
        """Re-plan the schedule to end (decayed to 0) within the time budget: shorter when steps
        are slower than planned, longer (up to the configured epochs or `max_steps`; without
        either, as long as the budget allows) when they are faster.

        Seconds per step are measured over the steps since the previous plan, evaluations
        included, so that slow first steps (warm-up of caches and allocators) do not set the
        pace for the whole run; 5 % of the budget is kept for the last evaluation and save.
        """
        mark_step, mark_seconds = self._plan_mark
        if state.global_step <= mark_step or state.global_step >= schedule.total_steps:
            return  # nothing timed since the last plan, or the plan is done: the run ends here
        per_step = (state.elapsed_seconds - mark_seconds) / (state.global_step - mark_step)
        self._plan_mark = (state.global_step, state.elapsed_seconds)
        affordable = state.global_step + int((0.95 * budget - state.elapsed_seconds) / max(per_step, 1e-9))
        planned = max(state.global_step + 1, min(affordable, self._most_steps()))
        if planned != schedule.total_steps:
            moved = abs(planned - schedule.total_steps)
            schedule.replan(planned)
            if moved >= max(2, planned // 20):  # say so when the plan moved, not at every small correction
                self.echo(f"train.max_time={self.settings.max_time}: planning {schedule.total_steps} steps ({per_step:.2f} s a step)")

    def _most_steps(self) -> int:
        """The longest schedule a `max_time` budget may plan: the configured `max_steps` or
        `epochs`; without either, the budget alone decides (early stopping may end it sooner)."""
        if self.settings.max_steps or self.settings.epochs is not None:
            return self.total_steps
        return 1_000 * self.steps_per_epoch

    # -- evaluation, best model, checkpoints -------------------------------------

    def _evaluate_and_checkpoint(self, state: TrainerState, checkpoint: Callable[[], None]) -> None:
        """Evaluate (every process its share), judge on the main process, save the best model
        and a checkpoint there, and give every process the main process's verdict."""
        improved, outputs = True, None
        if self.validation_data is not None and self.validation_tokens is not None:
            metrics, outputs = self.evaluate_validation()
            if self.is_main:
                improved = self.tracker.judge(state, epoch=self._epochs_done(state), metrics=metrics)
        elif self.is_main:
            state.best_step = state.global_step
        if self.is_main:
            if improved:
                save_best(self.model, self.tokenizer, self.output_dir, validation_outputs=outputs, validation_data=self.validation_data)
            checkpoint()
        verdict = distributed.from_main((state.best_metric, state.best_step, state.evals_without_improvement, state.stopped_early))
        state.best_metric, state.best_step, state.evals_without_improvement, state.stopped_early = verdict

    def evaluate_validation(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Headline metrics of every head on the whole validation data (thresholds tuned on it),
        the weighted validation `loss`, and the outputs they were computed from.

        Under several processes each runs every n-th text and the outputs are gathered, so
        every process returns the metrics of all the texts."""
        assert self.validation_data is not None and self.validation_tokens is not None
        raw = self._validation_outputs()
        outputs = to_user_outputs(self.model, raw)
        metrics: dict[str, Any] = evaluate_outputs(self.model.specs, outputs, self.validation_data, tune_thresholds=True, detailed=False)
        targets = self.validation_targets
        assert targets is not None
        with torch.no_grad():
            loss, _ = combined_loss(self.model.specs, {k: torch.from_numpy(v) for k, v in raw.items()}, targets.values, targets.masks)
        metrics["loss"] = float(loss)
        return metrics, outputs

    def _validation_outputs(self) -> dict[str, np.ndarray]:
        """Raw head outputs for every validation text, each process computing its share."""
        tokens = self.validation_tokens
        assert tokens is not None
        batch_size = max(64, self.settings.batch_size)
        processes, rank = self.accelerator.num_processes, self.accelerator.process_index
        if processes == 1:
            return run_heads(self.model, tokens, self.pad_id, batch_size=batch_size, show_progress=self.show_progress, description="Validating")
        share = tokens.subset(np.arange(rank, len(tokens), processes))
        mine = run_heads(self.model, share, self.pad_id, batch_size=batch_size, show_progress=self.show_progress, description="Validating")
        raw: dict[str, np.ndarray] = {}
        for other, values in enumerate(distributed.gathered(mine)):
            for name, array in values.items():
                if name not in raw:
                    raw[name] = np.empty((len(tokens), *array.shape[1:]), dtype=array.dtype)
                raw[name][other::processes] = array
        return raw

    def _log(self, record: dict[str, Any], scalars: dict[str, float] | None = None) -> None:
        """Every record of the run's log goes through here (the main process's only)."""
        self.log.write(record, scalars=scalars)

    def _result(self, state: TrainerState, resumed_from: str | None) -> TrainResult:
        distributed.wait_for_everyone()  # the main process has written the best model
        metrics = read_validation_metrics(self.output_dir)
        return TrainResult(self.output_dir, state.global_step, state.best_metric, state.best_step, state.stopped_early, resumed_from, metrics, state.elapsed_seconds)


def _silent(_: str) -> None:
    """What other processes than the main one print: nothing."""
