"""Per-head losses and their weighted, masked sum.

A row without a label for a head adds nothing to that head's loss, and the
head's loss is the mean over the rows that do have one.

Multilabel: `bce` (binary cross-entropy, optional positive-class weights),
`focal` (BCE scaled by (1 - p_t)^gamma), `asl` (asymmetric loss, Ridnik et
al. 2021: positives and negatives focused separately, easy negatives under
a probability margin dropped). Multiclass: `cross_entropy` (optional label
smoothing and class weights) and `focal`. Regression: `mse` and `huber` on
standardised targets.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from textheads.specs import HeadSpec


def head_loss(spec: HeadSpec, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean loss of one head over the rows where `mask` is true (0 when none are)."""
    if not bool(mask.any()):
        return output.sum() * 0.0  # keeps the graph connected, adds nothing
    output, target = output[mask], target[mask]
    if spec.kind == "multilabel":
        return _multilabel(spec, output, target.to(output.dtype))
    if spec.kind == "multiclass":
        return _multiclass(spec, output, target)
    # Regression targets arrive standardised, so huber_delta is in standard deviations.
    if spec.loss == "huber":
        return F.huber_loss(output, target.to(output.dtype), delta=spec.huber_delta)
    return F.mse_loss(output, target.to(output.dtype))


def _as_tensor(values: list[float] | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if values is None else torch.tensor(values, dtype=like.dtype, device=like.device)


def _multilabel(spec: HeadSpec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    pos_weight = _as_tensor(spec.pos_weight if isinstance(spec.pos_weight, list) else None, logits)
    if spec.loss == "asl":
        return asymmetric_loss(logits, target, gamma_neg=spec.asl_gamma_neg, gamma_pos=spec.asl_gamma_pos, clip=spec.asl_clip)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
    if spec.loss == "focal":
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        bce = bce * (1 - p_t).pow(spec.focal_gamma)
        if spec.focal_alpha is not None:
            bce = bce * (spec.focal_alpha * target + (1 - spec.focal_alpha) * (1 - target))
    return bce.mean()


def asymmetric_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma_neg: float, gamma_pos: float, clip: float) -> torch.Tensor:
    """Asymmetric loss (mean over rows and labels)."""
    p = torch.sigmoid(logits)
    log_p = F.logsigmoid(logits)
    # Shifted probability for negatives: those under `clip` add nothing.
    p_neg = (p - clip).clamp(min=0) if clip > 0 else p
    log_not_p = torch.log((1 - p_neg).clamp(min=1e-8)) if clip > 0 else F.logsigmoid(-logits)
    positive = target * (1 - p).pow(gamma_pos) * log_p
    negative = (1 - target) * p_neg.pow(gamma_neg) * log_not_p
    return -(positive + negative).mean()


def _multiclass(spec: HeadSpec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    weight = _as_tensor(spec.class_weights if isinstance(spec.class_weights, list) else None, logits)
    if spec.loss != "focal":
        return F.cross_entropy(logits, target, weight=weight, label_smoothing=spec.label_smoothing)
    ce = F.cross_entropy(logits, target, label_smoothing=spec.label_smoothing, reduction="none")
    p_t = torch.softmax(logits, dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)
    focal = (1 - p_t).pow(spec.focal_gamma) * ce
    if weight is None:
        return focal.mean()
    w = weight[target]
    return (w * focal).sum() / w.sum()


MAX_BALANCE = 10.0
"""The most `balance` scales one head's loss up by."""


def combined_loss(
    specs: dict[str, HeadSpec],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    *,
    balance: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`Σ weight_h · L_h` and each head's unweighted part, for logging.

    `balance`: scale each head's loss by `mean_k L_k / L_h` (the factor held
    constant, so it steers the gradient but is not differentiated). Every head
    then pulls on the shared encoder in proportion to its weight, not to the
    size of its loss: a 28-label head whose mean BCE has fallen to 0.05 is no
    longer drowned by a 4-label head at 0.3 (`train.balance_heads`). No head
    is scaled up more than `MAX_BALANCE` times. The value is then the mean
    head loss times the sum of the weights; with one head, value and gradient are
    the plain ones. Heads without labelled rows in the batch are left out.
    """
    parts = {name: head_loss(spec, outputs[name], targets[name], masks[name]) for name, spec in specs.items()}
    present = [name for name in parts if bool(masks[name].any())] if balance and len(parts) > 1 else []
    if not present:
        return sum(specs[name].weight * part for name, part in parts.items()), parts
    factors = balance_factors({name: parts[name].detach() for name in present})
    total = sum(specs[name].weight * (parts[name] * factors[name] if name in factors else parts[name]) for name in parts)
    return total, parts


def balance_factors(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`mean_k L_k / L_h` for each head present in the batch (see `combined_loss`)."""
    mean = torch.stack(list(losses.values())).mean()
    # A head is scaled up at most MAX_BALANCE times: a nearly solved head (loss near 0)
    # must not take over the gradient.
    return {name: mean / torch.maximum(loss, mean / MAX_BALANCE).clamp(min=1e-12) for name, loss in losses.items()}


def loss_denominator(spec: HeadSpec, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """What `head_loss` divides its sum by, up to a constant factor: the labelled rows, or for a
    multiclass head with class weights the sum of their targets' weights.

    A batch split into parts (gradient accumulation, several processes) gets the whole
    batch's loss when each part's `head_loss` is scaled by its denominator over the whole
    batch's: the mean of the part means would weigh a part's rows by how many rows it has."""
    weights = spec.class_weights if spec.kind == "multiclass" and isinstance(spec.class_weights, list) else None
    if weights is None:
        return mask.sum().to(torch.float64)
    return torch.tensor(weights, dtype=torch.float64)[target[mask].long()].sum()


def resolve_auto_weights(spec: HeadSpec, values: np.ndarray, mask: np.ndarray) -> HeadSpec:
    """Replace `pos_weight: auto` / `class_weights: auto` by numbers from the training targets.

    Positive weight of a label: negatives / positives; class weight: n / (classes · count).
    Both are capped at `weight_cap` (and a label never seen gets the cap).
    """
    rows = values[mask]
    update = {}
    if spec.pos_weight == "auto":
        positives = rows.sum(axis=0)
        ratio = np.divide(len(rows) - positives, positives, out=np.full(len(positives), np.inf), where=positives > 0)
        update["pos_weight"] = [round(float(w), 6) for w in np.clip(ratio, 1e-6, spec.weight_cap)]
    if spec.class_weights == "auto":
        classes = len(spec.labels or [])
        counts = np.bincount(rows.astype(np.int64), minlength=classes).astype(np.float64)
        weights = np.divide(len(rows), classes * counts, out=np.full(classes, np.inf), where=counts > 0)
        update["class_weights"] = [round(float(w), 6) for w in np.clip(weights, 1e-6, spec.weight_cap)]
    return HeadSpec.model_validate({**spec.model_dump(), **update}) if update else spec
