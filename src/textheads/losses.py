"""Per-head losses and their weighted, masked sum.

A row without a label for a head adds nothing to that head's loss, and the
head's loss is the mean over the rows that do have one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textheads.specs import HeadSpec


def head_loss(spec: HeadSpec, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean loss of one head over the rows where `mask` is true (0 when none are)."""
    if not bool(mask.any()):
        return output.sum() * 0.0  # keeps the graph connected, adds nothing
    output, target = output[mask], target[mask]
    if spec.kind == "multilabel":
        return F.binary_cross_entropy_with_logits(output, target.to(output.dtype))
    if spec.kind == "multiclass":
        weight = None
        if spec.class_weights is not None:
            weight = torch.tensor(spec.class_weights, dtype=output.dtype, device=output.device)
        return F.cross_entropy(output, target, weight=weight, label_smoothing=spec.label_smoothing)
    # Regression targets arrive standardised, so huber_delta is in standard deviations.
    if spec.loss == "huber":
        return F.huber_loss(output, target.to(output.dtype), delta=spec.huber_delta)
    return F.mse_loss(output, target.to(output.dtype))


def combined_loss(
    specs: dict[str, HeadSpec],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`Σ weight_h · L_h` and each head's unweighted part, for logging."""
    parts = {name: head_loss(spec, outputs[name], targets[name], masks[name]) for name, spec in specs.items()}
    total = sum(specs[name].weight * part for name, part in parts.items())
    return total, parts
