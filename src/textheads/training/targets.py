"""Training targets as tensors: regression standardised, rows without a label masked."""

from __future__ import annotations

import numpy as np
import torch

from textheads.data.dataset import LabelledData
from textheads.model import TextHeadsModel


class TargetTensors:
    """Every head's targets and masks for `data`, indexed by row."""

    def __init__(self, model: TextHeadsModel, data: LabelledData) -> None:
        self.values: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        for name, spec in model.specs.items():
            target = data.targets[name]
            values = target.values
            if spec.kind == "regression":
                mean, std = model.config.target_stats[name]
                values = np.where(target.mask, (values - mean) / std, 0.0).astype(np.float32)
            self.values[name] = torch.from_numpy(values)
            self.masks[name] = torch.from_numpy(target.mask)

    def batch(self, indices: np.ndarray) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        idx = torch.from_numpy(indices)
        return ({k: v[idx] for k, v in self.values.items()}, {k: m[idx] for k, m in self.masks.items()})
