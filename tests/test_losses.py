"""Losses: the right function per kind, masking of missing labels, and the weighted sum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from textheads.losses import combined_loss, head_loss
from textheads.specs import HeadSpec

ML = HeadSpec(name="tags", kind="multilabel", labels=["a", "b", "c"])
MC = HeadSpec(name="level", kind="multiclass", labels=["x", "y", "z"])
REG = HeadSpec(name="score", kind="regression")


def _example(spec: HeadSpec, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    if spec.kind == "multilabel":
        return torch.randn(n, 3, requires_grad=True), torch.randint(0, 2, (n, 3)).float()
    if spec.kind == "multiclass":
        return torch.randn(n, 3, requires_grad=True), torch.randint(0, 3, (n,))
    return torch.randn(n, requires_grad=True), torch.randn(n)


def test_multilabel_is_binary_cross_entropy_per_label() -> None:
    logits, target = _example(ML)
    loss = head_loss(ML, logits, target, torch.ones(6, dtype=torch.bool))
    expected = -(target * torch.log(torch.sigmoid(logits)) + (1 - target) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_multiclass_is_softmax_cross_entropy_with_smoothing_and_weights() -> None:
    logits, target = _example(MC)
    spec = MC.model_copy(update={"label_smoothing": 0.1, "class_weights": [1.0, 2.0, 0.5]})
    loss = head_loss(spec, logits, target, torch.ones(6, dtype=torch.bool))
    expected = F.cross_entropy(logits, target, weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1)
    assert torch.allclose(loss, expected)
    plain = head_loss(MC, logits, target, torch.ones(6, dtype=torch.bool))
    assert torch.allclose(plain, -torch.log_softmax(logits, -1)[torch.arange(6), target].mean())


@pytest.mark.parametrize("loss_name", ["mse", "huber"])
def test_regression_losses(loss_name: str) -> None:
    spec = REG.model_copy(update={"loss": loss_name, "huber_delta": 0.5})
    pred, target = _example(spec)
    loss = head_loss(spec, pred, target, torch.ones(6, dtype=torch.bool))
    expected = F.mse_loss(pred, target) if loss_name == "mse" else F.huber_loss(pred, target, delta=0.5)
    assert torch.allclose(loss, expected)


@pytest.mark.parametrize("spec", [ML, MC, REG], ids=lambda s: s.kind)
def test_masked_rows_add_no_loss_and_no_gradient(spec: HeadSpec) -> None:
    output, target = _example(spec)
    mask = torch.tensor([True, False, True, False, True, True])
    loss = head_loss(spec, output, target, mask)
    # The mean is over labelled rows only: equal to the loss on those rows alone.
    alone = head_loss(spec, output[mask].detach(), target[mask], torch.ones(int(mask.sum()), dtype=torch.bool))
    assert torch.allclose(loss, alone)
    loss.backward()
    assert torch.all(output.grad[~mask] == 0)
    assert torch.any(output.grad[mask] != 0)


@pytest.mark.parametrize("spec", [ML, MC, REG], ids=lambda s: s.kind)
def test_a_head_without_labels_in_the_batch_contributes_zero(spec: HeadSpec) -> None:
    output, target = _example(spec)
    loss = head_loss(spec, output, target, torch.zeros(6, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph: no error, zero gradient
    assert torch.all(output.grad == 0)


def test_combined_loss_is_the_weighted_sum_and_reports_parts() -> None:
    specs = {
        "tags": ML.model_copy(update={"weight": 1.0}),
        "level": MC.model_copy(update={"weight": 0.5}),
        "score": REG.model_copy(update={"weight": 2.0}),
    }
    outputs, targets = {}, {}
    for name, spec in specs.items():
        outputs[name], targets[name] = _example(spec)
    masks = {name: torch.ones(6, dtype=torch.bool) for name in specs}
    masks["score"][:3] = False
    total, parts = combined_loss(specs, outputs, targets, masks)
    assert set(parts) == set(specs)
    expected = parts["tags"] + 0.5 * parts["level"] + 2.0 * parts["score"]
    assert torch.allclose(total, expected)


def test_missing_label_is_not_read_as_negative() -> None:
    # A multilabel row with a missing label must not push probabilities towards 0.
    logits = torch.zeros(2, 3, requires_grad=True)
    target = torch.zeros(2, 3)
    head_loss(ML, logits, target, torch.tensor([True, False])).backward()
    assert torch.all(logits.grad[1] == 0)
    assert torch.all(logits.grad[0] > 0)


def test_balanced_heads_pull_by_weight_not_by_loss_size() -> None:
    specs = {"tags": ML, "level": MC.model_copy(update={"weight": 2.0})}
    outputs = {"tags": _example(ML)[0], "level": _example(MC)[0]}
    targets = {"tags": _example(ML)[1], "level": _example(MC)[1]}
    masks = {name: torch.ones(6, dtype=torch.bool) for name in specs}
    total, parts = combined_loss(specs, outputs, targets, masks, balance=True)
    mean = (parts["tags"] + parts["level"]).detach() / 2
    assert torch.allclose(total, mean * 3.0)  # mean head loss x (1 + 2)
    total.backward()
    # Each head's gradient is its plain gradient scaled by mean / its own loss.
    for name, spec in specs.items():
        output = outputs[name].detach().requires_grad_()
        plain = head_loss(spec, output, targets[name], masks[name])
        plain.backward()
        expected = output.grad * spec.weight * mean / plain.detach()
        assert torch.allclose(outputs[name].grad, expected, atol=1e-6)


def test_balancing_leaves_one_head_and_absent_heads_alone() -> None:
    logits, target = _example(ML)
    mask = torch.ones(6, dtype=torch.bool)
    plain, _ = combined_loss({"tags": ML}, {"tags": logits}, {"tags": target}, {"tags": mask})
    balanced, _ = combined_loss({"tags": ML}, {"tags": logits}, {"tags": target}, {"tags": mask}, balance=True)
    assert torch.equal(plain, balanced)
    # A head with no labelled rows in the batch neither counts in the mean nor adds loss.
    level, level_target = _example(MC)
    specs = {"tags": ML, "level": MC}
    total, parts = combined_loss(specs, {"tags": logits, "level": level}, {"tags": target, "level": level_target}, {"tags": mask, "level": torch.zeros(6, dtype=torch.bool)}, balance=True)
    assert torch.allclose(total, parts["tags"]) and float(parts["level"].detach()) == 0.0


def test_balancing_scales_a_nearly_solved_head_up_at_most_ten_times() -> None:
    from textheads.losses import MAX_BALANCE

    logits = torch.tensor([[20.0, -20.0, 20.0]] * 6, requires_grad=True)  # tags solved: loss ~ 2e-9
    target = torch.tensor([[1.0, 0.0, 1.0]] * 6)
    level, level_target = _example(MC)
    specs, masks = {"tags": ML, "level": MC}, {"tags": torch.ones(6, dtype=torch.bool), "level": torch.ones(6, dtype=torch.bool)}
    total, parts = combined_loss(specs, {"tags": logits, "level": level}, {"tags": target, "level": level_target}, masks, balance=True)
    mean = (parts["tags"] + parts["level"]).detach() / 2
    expected = parts["tags"] * MAX_BALANCE + parts["level"] * mean / parts["level"].detach()
    assert torch.allclose(total, expected)
