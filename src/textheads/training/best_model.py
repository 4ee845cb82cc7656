"""The best model of a run: which evaluation was best, patience, and what is written for it.

Both trainers (fine-tuning and the frozen-encoder path) judge an evaluation
here, so the metric, the "evaluation" log record, early stopping and the
files of the best model (`validation_metrics.json` and the model folder) are
decided in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from textheads.data.dataset import LabelledData
from textheads.evaluation import evaluate_outputs, summary
from textheads.io import write_json_atomic
from textheads.metrics import is_better, metric_value
from textheads.model import TextHeadsModel
from textheads.saving import save_model_dir
from textheads.training.checkpoint import TrainerState

VALIDATION_METRICS = "validation_metrics.json"


class BestModelTracker:
    """Judges each evaluation by `metric` and keeps count of evaluations without improvement.

    Its record lives in the `TrainerState` it is given (best value and step, patience
    count, history), so a checkpoint carries it over a resume."""

    def __init__(
        self,
        metric: str,
        patience: int | None,
        *,
        log: Callable[[dict[str, Any]], None],
        echo: Callable[[str], None],
    ) -> None:
        self.metric, self.patience = metric, patience
        self.log, self.echo = log, echo

    def judge(self, state: TrainerState, *, epoch: float, metrics: dict[str, Any]) -> bool:
        """Record an evaluation at `state.global_step`; True when it is the best so far. Sets
        `state.stopped_early` when `patience` evaluations in a row did not improve."""
        value = metric_value(metrics, self.metric)
        improved = is_better(self.metric, value, state.best_metric)
        record = {"step": state.global_step, "epoch": epoch, "validation": summary(metrics), "metric": self.metric, "value": value}
        state.history.append(record)
        self.log({"event": "evaluation", **record, "improved": improved})
        self.echo(f"step {state.global_step}: validation {self.metric} = {value:.4f}{' (best so far)' if improved else ''}")
        if improved:
            state.best_metric, state.best_step = value, state.global_step
            state.evals_without_improvement = 0
            return True
        state.evals_without_improvement += 1
        if self.patience is not None and state.evals_without_improvement >= self.patience:
            self.echo(f"Early stopping: no improvement in {self.patience} evaluation(s)")
            state.stopped_early = True
        return False


def save_best(
    model: TextHeadsModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    *,
    validation_outputs: dict[str, np.ndarray] | None = None,
    validation_data: LabelledData | None = None,
) -> None:
    """Write the best model as `output_dir`, with its detailed validation metrics (thresholds
    tuned on the validation data) when there is validation data."""
    if validation_outputs is not None and validation_data is not None:
        detailed = evaluate_outputs(model.specs, validation_outputs, validation_data, tune_thresholds=True)
        write_json_atomic(output_dir / VALIDATION_METRICS, detailed)
    save_model_dir(model, tokenizer, output_dir)


def read_validation_metrics(output_dir: Path) -> dict[str, Any] | None:
    """The best model's validation metrics, as `save_best` writes them, or None."""
    path = output_dir / VALIDATION_METRICS
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

