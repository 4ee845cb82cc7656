"""Training: the loop and its small parts (optimiser set-up, checkpoints, early stopping)."""

from textheads.training.loop import Trainer, TrainResult

__all__ = ["TrainResult", "Trainer"]
