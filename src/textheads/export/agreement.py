"""How far a quantised model's answers are from the fp32 model's, head by head.

A classification head's *agreement* is the share of its decisions that are
equal: each text's class (multiclass), each text's decision on each label at
the stored thresholds (multilabel; the share of texts whose whole label set is
equal is reported beside it, a much stricter figure with many labels: 99.6 %
of 28 labels' decisions was 89.6 % of texts' label sets on GoEmotions).
Beside them: the largest probability difference, and for regression heads the
largest and mean absolute error in the target's units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from textheads.decisions import head_decisions
from textheads.specs import HeadSpec


@dataclass(frozen=True)
class HeadAgreement:
    """One head's comparison over the same texts."""

    kind: str
    agreement: float | None = None
    """Classification: share of equal decisions (per text and label for multilabel heads)."""
    same_label_sets: float | None = None
    """Multilabel: share of texts whose whole label set is equal."""
    max_abs_diff: float | None = None
    """Classification: largest probability difference."""
    max_abs_error: float | None = None
    """Regression: largest absolute difference of the values."""
    mean_abs_error: float | None = None
    """Regression: mean absolute difference of the values."""

    def to_json(self) -> dict[str, float | str]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    def describe(self) -> str:
        if self.same_label_sets is not None:
            return (
                f"{self.agreement:.2%} of label decisions agree, {self.same_label_sets:.2%} of texts have the same "
                f"label set (max probability difference {self.max_abs_diff:.4f})"
            )
        if self.agreement is not None:
            return f"{self.agreement:.2%} of decisions agree (max probability difference {self.max_abs_diff:.4f})"
        return f"values differ by at most {self.max_abs_error:.4g} (mean {self.mean_abs_error:.4g})"


def compare_outputs(specs: Mapping[str, HeadSpec], reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> dict[str, HeadAgreement]:
    """Each head's agreement of `candidate` with `reference` (per-head outputs for the same texts)."""
    result = {}
    for name, spec in specs.items():
        # Decisions from the float32 outputs, exactly as `predict` takes them.
        ref, got = np.asarray(reference[name], dtype=np.float32), np.asarray(candidate[name], dtype=np.float32)
        difference = np.abs(ref.astype(np.float64) - got)
        if spec.kind == "regression":
            result[name] = HeadAgreement(spec.kind, max_abs_error=float(difference.max()), mean_abs_error=float(difference.mean()))
            continue
        if spec.kind == "multilabel":
            same = head_decisions(spec, ref) == head_decisions(spec, got)
            result[name] = HeadAgreement(spec.kind, agreement=float(same.mean()), same_label_sets=float(same.all(axis=1).mean()), max_abs_diff=float(difference.max()))
            continue
        same = head_decisions(spec, ref) == head_decisions(spec, got)
        result[name] = HeadAgreement(spec.kind, agreement=float(same.mean()), max_abs_diff=float(difference.max()))
    return result


def lowest_agreement(report: Mapping[str, HeadAgreement]) -> float | None:
    """The smallest agreement over the classification heads (None when there are none)."""
    values = [head.agreement for head in report.values() if head.agreement is not None]
    return min(values) if values else None


def falls_short(report: Mapping[str, HeadAgreement], min_agreement: float) -> list[str]:
    """The classification heads whose agreement is under `min_agreement`."""
    return [name for name, head in report.items() if head.agreement is not None and head.agreement < min_agreement]


def format_report(report: Mapping[str, HeadAgreement]) -> str:
    """One line per head, indented."""
    return "\n".join(f"  {name}: {head.describe()}" for name, head in report.items())
