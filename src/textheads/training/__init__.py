"""Training: one entry point (`run.train_model`) for the fine-tuning loop on accelerate and the
frozen-encoder path, and their small parts (steps, checkpoints, best-model tracking, optimiser set-up)."""

from textheads.training.loop import Trainer, TrainResult

__all__ = ["TrainResult", "Trainer"]
