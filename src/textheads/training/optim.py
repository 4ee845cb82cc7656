"""Optimiser and learning-rate schedule: AdamW with separate encoder and head rates."""

from __future__ import annotations

import math

import torch
from transformers import get_linear_schedule_with_warmup

from textheads.config import TrainSection
from textheads.model import TextHeadsModel

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def build_optimizer(model: TextHeadsModel, train: TrainSection) -> torch.optim.AdamW:
    """AdamW over trainable parameters: the encoder at `learning_rate`, the heads at
    `head_learning_rate`; no weight decay on biases and norms."""
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "heads" if name.startswith("heads.") else "encoder"
        decay = not any(name.endswith(suffix) for suffix in _NO_DECAY)
        groups.setdefault((part, decay), []).append(param)
    rates = {"encoder": train.learning_rate, "heads": train.head_learning_rate}
    param_groups = [
        {"params": params, "lr": rates[part], "weight_decay": train.weight_decay if decay else 0.0, "name": f"{part}{'' if decay else '_no_decay'}"}
        for (part, decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_ratio` of the steps, then linear decay to zero."""
    warmup = math.ceil(total_steps * warmup_ratio)
    return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
