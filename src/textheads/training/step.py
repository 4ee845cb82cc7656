"""One optimiser step on one batch, which may be split over processes and accumulation micro-steps.

`train.batch_size` is the batch of one optimiser step, whatever the number of
processes and `train.gradient_accumulation_steps`: the batch is dealt out into
`processes × accumulation` parts (row j to part j mod parts, so that each part
holds texts of every length in the batch), and each process runs its parts one
after the other, accumulating gradients, synchronised on its last. So the
update does not depend on how many processes compute it, and a checkpoint
written by N processes resumes with M.

The loss of a part is scaled so that the parts add up to the loss of the whole
batch: each head's mean over a part's labelled rows is weighed by that part's
share of the batch's labelled rows (`textheads.losses.loss_denominator`), and
times the number of processes, which data-parallel training averages over.
With `train.balance_heads`, the balancing factors come from each micro-step's
head losses over all processes: exact without accumulation; with it, they are
those of the micro-step, since the whole batch's losses are known only after
its last micro-step.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from textheads.config import TrainSection
from textheads.inference.batching import Tokenized, collate
from textheads.losses import balance_factors, combined_loss, head_loss, loss_denominator
from textheads.specs import HeadSpec
from textheads.training.distributed import summed
from textheads.training.targets import TargetTensors

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class StepRunner:
    """Runs optimiser steps of a prepared model on batches of row indices."""

    def __init__(
        self,
        accelerator: Any,
        model: torch.nn.Module,
        specs: dict[str, HeadSpec],
        optimizer: Any,
        scheduler: Any,
        settings: TrainSection,
        tokens: Tokenized,
        targets: TargetTensors,
        pad_id: int,
        precision: str,
        grad_scaler: torch.amp.GradScaler | None,
    ) -> None:
        self.accelerator, self.model, self.specs = accelerator, model, specs
        self.optimizer, self.scheduler, self.settings = optimizer, scheduler, settings
        self.tokens, self.targets, self.pad_id = tokens, targets, pad_id
        self.precision, self.grad_scaler = precision, grad_scaler
        self.device = accelerator.device
        self.processes = accelerator.num_processes
        self.rank = accelerator.process_index
        self.accumulation = settings.gradient_accumulation_steps
        self.trainable = [p for p in model.parameters() if p.requires_grad]

    def run(self, indices: np.ndarray) -> dict[str, float]:
        """One optimiser step on the rows `indices`; the batch's loss and each head's, for the log."""
        if self.processes * self.accumulation == 1:
            logged = self._whole(indices)
        else:
            logged = self._in_parts(indices)
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)
        if self.settings.max_grad_norm is not None:
            self.accelerator.clip_grad_norm_(self.trainable, self.settings.max_grad_norm)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return logged

    def _whole(self, indices: np.ndarray) -> dict[str, float]:
        """One process, no accumulation: the batch in one forward pass."""
        outputs, targets, masks = self._forward(indices)
        loss, parts = combined_loss(self.specs, outputs, targets, masks, balance=self.settings.balance_heads)
        self._backward(loss)
        return {"loss": loss.item(), **{f"loss.{name}": part.item() for name, part in parts.items()}}

    def _in_parts(self, indices: np.ndarray) -> dict[str, float]:
        parts = [indices[j :: self.processes * self.accumulation] for j in range(self.processes * self.accumulation)]
        whole = self._denominators(indices)
        logged = dict.fromkeys(["loss", *(f"loss.{name}" for name in self.specs)], 0.0)
        for micro in range(self.accumulation):
            # Micro-step `micro` of every process: parts micro, accumulation + micro, ...
            step_parts = parts[micro :: self.accumulation]
            mine = step_parts[self.rank]
            last = micro == self.accumulation - 1
            sync = contextlib.nullcontext() if last else self.accelerator.no_sync(self.model)
            with sync:
                self._micro_step(mine, step_parts, whole, logged)
        return logged

    def _micro_step(self, mine: np.ndarray, step_parts: list[np.ndarray], whole: dict[str, torch.Tensor], logged: dict[str, float]) -> None:
        # A process whose part is empty (a last batch smaller than the parts) still runs a
        # forward and backward pass, on one row weighed 0, so that every process joins the
        # same gradient synchronisations.
        weight = 1.0 if len(mine) else 0.0
        outputs, targets, masks = self._forward(mine if len(mine) else step_parts[0][:1])
        means = {name: head_loss(spec, outputs[name], targets[name], masks[name]) for name, spec in self.specs.items()}
        local = {name: loss_denominator(spec, targets[name].cpu(), masks[name].cpu()) * weight for name, spec in self.specs.items()}
        step_counts = self._denominators(np.concatenate(step_parts))
        # Each head's loss over this micro-step's rows on all processes (for balancing and the log).
        sums = summed(torch.stack([means[name].detach().double().cpu() * local[name] for name in self.specs]))
        step_means = {name: sums[i] / step_counts[name].clamp(min=1e-12) for i, name in enumerate(self.specs)}
        factors: dict[str, torch.Tensor] = {}
        present = [name for name in self.specs if step_counts[name] > 0]
        if self.settings.balance_heads and len(self.specs) > 1 and present:
            factors = balance_factors({name: step_means[name] for name in present})
        loss = outputs[next(iter(self.specs))].sum() * 0.0
        for name, spec in self.specs.items():
            share = float(local[name] / whole[name].clamp(min=1e-12))
            factor = float(factors.get(name, 1.0))
            loss = loss + spec.weight * factor * means[name] * (share * self.processes)
            batch_share = float(step_counts[name] / whole[name].clamp(min=1e-12))
            logged[f"loss.{name}"] += float(step_means[name]) * batch_share
            logged["loss"] += spec.weight * factor * float(step_means[name]) * batch_share
        self._backward(loss)

    def _denominators(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        targets, masks = self.targets.batch(indices)
        return {name: loss_denominator(spec, targets[name], masks[name]) for name, spec in self.specs.items()}

    def _forward(self, indices: np.ndarray) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        device = self.device
        batch = {k: v.to(device) for k, v in collate(self.tokens, indices, self.pad_id).items()}
        targets, masks = self.targets.batch(indices)
        targets = {k: v.to(device) for k, v in targets.items()}
        masks = {k: v.to(device) for k, v in masks.items()}
        dtype = AUTOCAST_DTYPES.get(self.precision)
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            outputs = self.model(**batch)
        return {k: v.float() for k, v in outputs.items()}, targets, masks

    def _backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss)
