"""Imbalance-aware losses and automatic weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from textheads.losses import asymmetric_loss, head_loss, resolve_auto_weights
from textheads.specs import HeadSpec

ALL = torch.ones(4, dtype=torch.bool)


def _ml(**options: object) -> HeadSpec:
    return HeadSpec(name="t", kind="multilabel", labels=["a", "b"], **options)


def test_focal_multilabel_downweights_easy_examples() -> None:
    logits = torch.tensor([[4.0, -4.0], [0.1, -0.1], [-3.0, 3.0], [0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    expected = (bce * (1 - p_t) ** 2).mean()
    assert torch.allclose(head_loss(_ml(loss="focal"), logits, target, ALL), expected)
    # gamma 0 is plain BCE
    assert torch.allclose(head_loss(_ml(loss="focal", focal_gamma=0.0), logits, target, ALL), bce.mean())
    alpha = head_loss(_ml(loss="focal", focal_alpha=0.25), logits, target, ALL)
    assert torch.allclose(alpha, (bce * (1 - p_t) ** 2 * (0.25 * target + 0.75 * (1 - target))).mean())


def test_pos_weight_scales_positive_terms() -> None:
    logits, target = torch.randn(4, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    loss = head_loss(_ml(pos_weight=[3.0, 0.5]), logits, target, ALL)
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor([3.0, 0.5])))


def test_asymmetric_loss_matches_its_definition() -> None:
    logits = torch.tensor([[2.0, -1.0], [-0.5, 0.2]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(logits)
    p_m = (p - 0.05).clamp(min=0)
    expected = -(target * (1 - p) ** 1 * torch.log(p) + (1 - target) * p_m**4 * torch.log(1 - p_m)).mean()
    assert torch.allclose(asymmetric_loss(logits, target, gamma_neg=4, gamma_pos=1, clip=0.05), expected, atol=1e-6)
    # An easy negative below the clip margin adds nothing.
    easy = asymmetric_loss(torch.tensor([[-6.0]]), torch.tensor([[0.0]]), gamma_neg=4, gamma_pos=0, clip=0.05)
    assert easy.item() == 0.0


def test_focal_multiclass_with_class_weights() -> None:
    spec = HeadSpec(name="c", kind="multiclass", labels=["x", "y", "z"], loss="focal", focal_gamma=2.0, class_weights=[1.0, 2.0, 4.0])
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 2])
    ce = F.cross_entropy(logits, target, reduction="none")
    p_t = torch.softmax(logits, -1)[torch.arange(4), target]
    w = torch.tensor([1.0, 2.0, 4.0])[target]
    expected = (w * (1 - p_t) ** 2 * ce).sum() / w.sum()
    assert torch.allclose(head_loss(spec, logits, target, ALL), expected)


def test_auto_weights_from_label_frequencies() -> None:
    values = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 0], [0, 0]], dtype=np.float32)
    mask = np.array([True] * 5 + [False])  # the last row is missing: not counted
    spec = resolve_auto_weights(_ml(pos_weight="auto", weight_cap=3.0), values, mask)
    # label a: 3 positives, 2 negatives -> 2/3; label b: 1 positive, 4 negatives -> 4, capped at 3
    assert spec.pos_weight == pytest.approx([2 / 3, 3.0])
    classes = HeadSpec(name="c", kind="multiclass", labels=["x", "y", "z"], class_weights="auto")
    resolved = resolve_auto_weights(classes, np.array([0, 0, 0, 1, -100]), np.array([True, True, True, True, False]))
    # n / (classes * count): x 4/9, y 4/3, z unseen -> the cap
    assert resolved.class_weights == pytest.approx([4 / 9, 4 / 3, 10.0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "multiclass", "labels": ["a", "b"], "pos_weight": "auto"}, "pos_weight applies to multilabel heads only"),
        ({"kind": "multilabel", "loss": "asl", "pos_weight": "auto"}, "pos_weight applies to the bce and focal losses"),
        ({"kind": "multilabel", "focal_alpha": 0.25}, "focal_alpha applies to multilabel heads with loss: focal"),
        ({"kind": "multiclass", "labels": ["a", "b"], "top1_fallback": True}, "top1_fallback applies to multilabel heads only"),
        ({"kind": "regression", "loss": "focal"}, "loss must be one of"),
    ],
)
def test_loss_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeadSpec(name="h", **options)
