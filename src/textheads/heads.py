"""Head modules: a linear layer or a small MLP on the pooled encoder output."""

from __future__ import annotations

import torch
from torch import nn

from textheads.specs import HeadSpec


class Head(nn.Module):
    """Maps a pooled text vector to one head's logits (or standardised value)."""

    def __init__(self, spec: HeadSpec, input_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(spec.dropout)]
        size = input_size
        for hidden in spec.hidden_sizes:
            layers += [nn.Linear(size, hidden), nn.GELU(), nn.Dropout(spec.dropout)]
            size = hidden
        layers.append(nn.Linear(size, spec.num_outputs))
        self.layers = nn.Sequential(*layers)
        self.squeeze = spec.kind == "regression"

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        out = self.layers(pooled)
        return out.squeeze(-1) if self.squeeze else out
