"""Head specifications: what each output of the model answers, as data.

A head spec is validated when it is built, is written into the saved model's
config, and is read back unchanged when the model is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

HeadKind = Literal["multilabel", "multiclass", "regression"]

LOSSES: dict[str, tuple[str, ...]] = {
    "multilabel": ("bce", "focal", "asl"),
    "multiclass": ("cross_entropy", "focal"),
    "regression": ("mse", "huber"),
}
DEFAULT_LOSS = {"multilabel": "bce", "multiclass": "cross_entropy", "regression": "mse"}
RESERVED_HEAD_NAMES = frozenset({"text", "truncated"})
DEFAULT_CONV_KERNEL_SIZES = [2, 3, 4]
"""Kernel sizes of the convolutional head that classification heads get by default
when the encoder is fine-tuned (see `HeadSpec.with_default_head_type`)."""


class StrictModel(BaseModel):
    """Pydantic model that rejects unknown keys (a typo must not pass silently) and
    infinite or NaN numbers (`.inf` and `.nan` are valid YAML, never a valid setting)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class HeadSpec(StrictModel):
    """One output of the model.

    Example:
        >>> HeadSpec(name="topics", kind="multilabel", separator=",").column
        'topics'
    """

    name: str = Field(min_length=1)
    kind: HeadKind
    column: str | None = None
    """Data column holding this head's labels; defaults to the head's name."""
    labels: list[str] | None = None
    """Label names, in output order. Discovered from training data when absent."""
    labels_file: str | None = None
    """A text file with one label per line, instead of `labels`."""
    separator: str | None = None
    """For multilabel string cells such as "a,b": the delimiter between labels."""
    loss: str | None = None
    """`bce`, `focal` or `asl` (multilabel); `cross_entropy` or `focal` (multiclass);
    `mse` or `huber` (regression)."""
    weight: float = Field(default=1.0, ge=0.0)
    """This head's weight in the summed loss."""
    hidden_sizes: list[int] = Field(default_factory=list)
    """Hidden layer sizes of an MLP head; empty means one linear layer."""
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    conv_kernel_sizes: list[int] | None = None
    """Non-empty: a convolutional head over the token states (one 1-D convolution per
    kernel size, max-pooled over the text) instead of a head on the pooled vector; `[]`:
    a head on the pooled vector. Unset: `[2, 3, 4]` for multilabel and multiclass heads
    on a fine-tuned encoder, `[]` for regression heads and on a frozen encoder (whose
    fast path trains on cached pooled vectors), as set by the run config."""
    conv_channels: int = Field(default=128, ge=1)
    """Filters per kernel size of a convolutional head."""
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Multiclass only: label smoothing of the cross-entropy."""
    class_weights: Literal["auto"] | list[float] | None = None
    """Multiclass only: one weight per label in label order, or `auto` (inverse class
    frequency in the training data, capped at `weight_cap`)."""
    pos_weight: Literal["auto"] | list[float] | None = None
    """Multilabel `bce`/`focal`: weight of each label's positives, or `auto`
    (negatives / positives in the training data, capped at `weight_cap`)."""
    weight_cap: float = Field(default=10.0, ge=1.0)
    """Upper bound of `auto` positive-class and class weights."""
    focal_gamma: float = Field(default=2.0, ge=0.0)
    """Focal loss: how much easy examples are down-weighted (0 gives plain BCE / CE)."""
    focal_alpha: float | None = Field(default=None, gt=0.0, lt=1.0)
    """Multilabel focal loss: weight of positives (negatives get 1 - alpha)."""
    asl_gamma_neg: float = Field(default=4.0, ge=0.0)
    """Asymmetric loss: focusing of negatives."""
    asl_gamma_pos: float = Field(default=0.0, ge=0.0)
    """Asymmetric loss: focusing of positives."""
    asl_clip: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Asymmetric loss: probability margin under which negatives add no loss."""
    huber_delta: float = Field(default=1.0, gt=0.0)
    """Regression with `huber` loss: the delta, in standard deviations of the target."""
    threshold: float | dict[str, float] = 0.5
    """Multilabel only: decision threshold, one for all labels or one per label."""
    tune_thresholds: bool = True
    """Multilabel only: after training, tune one threshold per label on the validation data."""
    top1_fallback: bool = False
    """Multilabel only: a text always gets at least its most probable label."""

    @field_validator("name")
    @classmethod
    def _not_a_record_field(cls, name: str) -> str:
        # Prediction records hold each head by name beside these two fields.
        if name in RESERVED_HEAD_NAMES:
            raise ValueError(f"a head may not be named {name!r}: prediction records use that name for the text's own field (reserved: {sorted(RESERVED_HEAD_NAMES)})")
        return name

    @field_validator("hidden_sizes", "conv_kernel_sizes")
    @classmethod
    def _positive_sizes(cls, sizes: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if sizes is not None and any(size <= 0 for size in sizes):
            raise ValueError(f"{(info.field_name or '').replace('_', ' ')} must be positive integers; got {sizes}")
        return sizes

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, labels: object) -> object:
        # Star ratings and other numeric classes (`labels: [1, 2, 3]`) are names too.
        if isinstance(labels, (list, tuple)):
            return [str(label) if is_number(label) else label for label in labels]
        return labels

    @field_validator("threshold", mode="before")
    @classmethod
    def _thresholds_in_unit_range(cls, value: object) -> object:
        # Checked before the union is tried, so a bad value gets one clear message.
        if isinstance(value, Mapping):
            for label, threshold in value.items():
                _check_unit(threshold, f"threshold of label {label!r}")
        else:
            _check_unit(value, "threshold")
        return value

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str] | None) -> list[str] | None:
        if labels is None:
            return None
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"labels must be unique; {duplicates} appear more than once")
        if not labels:
            raise ValueError("labels must not be empty")
        return labels

    @model_validator(mode="after")
    def _check_kind_options(self) -> HeadSpec:
        if self.loss is None:
            object.__setattr__(self, "loss", DEFAULT_LOSS[self.kind])
        if self.loss not in LOSSES[self.kind]:
            raise ValueError(
                f"loss must be one of {list(LOSSES[self.kind])} for a {self.kind} head; "
                f"got {self.loss!r}"
            )
        if self.kind == "regression" and (self.labels or self.labels_file):
            raise ValueError("a regression head takes no labels")
        if self.labels is not None and self.labels_file is not None:
            raise ValueError("give either labels or labels_file, not both")
        if self.kind == "multiclass" and self.labels is not None and len(self.labels) < 2:
            raise ValueError("a multiclass head needs at least 2 labels")
        for option, kind in (("class_weights", "multiclass"), ("pos_weight", "multilabel")):
            value = getattr(self, option)
            if value is None:
                continue
            if self.kind != kind:
                raise ValueError(f"{option} applies to {kind} heads only")
            if isinstance(value, list) and self.labels is not None and len(value) != len(self.labels):
                raise ValueError(f"{option} has {len(value)} values for {len(self.labels)} labels")
            if isinstance(value, list) and any(v <= 0 for v in value):
                raise ValueError(f"{option} must be positive; got {value}")
        if self.pos_weight is not None and self.loss == "asl":
            raise ValueError("pos_weight applies to the bce and focal losses, not asl")
        if self.focal_alpha is not None and not (self.kind == "multilabel" and self.loss == "focal"):
            raise ValueError("focal_alpha applies to multilabel heads with loss: focal")
        if self.top1_fallback and self.kind != "multilabel":
            raise ValueError("top1_fallback applies to multilabel heads only")
        if (isinstance(self.threshold, dict) or self.threshold != 0.5) and self.kind != "multilabel":
            raise ValueError("threshold applies to multilabel heads only")
        if isinstance(self.threshold, dict) and self.labels is not None:
            unknown = [label for label in self.threshold if label not in self.labels]
            if unknown:
                raise ValueError(f"threshold names {unknown}, not among the head's labels {self.labels}")
        return self

    @property
    def reads_tokens(self) -> bool:
        """True for heads over the token states (convolutional), not the pooled vector."""
        return bool(self.conv_kernel_sizes)

    def with_default_head_type(self, encoder_frozen: bool) -> HeadSpec:
        """A copy with `conv_kernel_sizes` set when it was left unset: a convolutional
        head for classification on a fine-tuned encoder, a pooled head otherwise.

        Convolutions over the token states beat a head on the mean-pooled vector on
        both data sets measured (docs/benchmarks.md); a regression head lost to the
        pooled one there, and a frozen encoder's fast path needs pooled vectors.
        """
        if self.conv_kernel_sizes is not None:
            return self
        conv = self.kind != "regression" and not encoder_frozen
        return self.model_copy(update={"conv_kernel_sizes": list(DEFAULT_CONV_KERNEL_SIZES) if conv else []})

    @property
    def source_column(self) -> str:
        """The data column read for this head."""
        return self.column or self.name

    @property
    def num_outputs(self) -> int:
        """Width of the head's output layer."""
        if self.kind == "regression":
            return 1
        if self.labels is None:
            raise ValueError(f"head {self.name!r} has no labels yet")
        return len(self.labels)

    def thresholds(self) -> list[float]:
        """Per-label thresholds in label order (multilabel heads)."""
        labels = self.labels or []
        if isinstance(self.threshold, dict):
            return [float(self.threshold.get(label, 0.5)) for label in labels]
        return [float(self.threshold)] * len(labels)

    def thresholds_by_label(self) -> dict[str, float]:
        """Each label's decision threshold (multilabel heads; empty for others)."""
        return dict(zip(self.labels or [], self.thresholds(), strict=True)) if self.kind == "multilabel" else {}

    def with_thresholds(self, value: float | Mapping[str, float]) -> HeadSpec:
        """A copy with new decision thresholds: one for every label, or a mapping that
        changes the labels it names and keeps the others' thresholds.

        Raises `ConfigError` naming an unknown label or a value outside [0, 1].

        Example:
            >>> spec = HeadSpec(name="t", kind="multilabel", labels=["a", "b"], threshold={"a": 0.3, "b": 0.7})
            >>> spec.with_thresholds({"b": 0.6}).thresholds()
            [0.3, 0.6]
        """
        from textheads.errors import ConfigError

        if isinstance(value, Mapping):
            if self.labels is None:
                raise ConfigError(f"head {self.name!r} has no labels yet to set thresholds of")
            unknown = [label for label in value if label not in self.labels]
            if unknown:
                raise ConfigError(f"head {self.name!r} has no label(s) {unknown}; its labels are {self.labels}")
            value = {**self.thresholds_by_label(), **value}
        try:
            return HeadSpec.model_validate({**self.model_dump(), "threshold": value})
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ConfigError(f"head {self.name!r}: {problems}") from None

    def with_labels_resolved(self, base_dir: Path | None = None) -> HeadSpec:
        """Return a copy whose `labels` are read from `labels_file` when given."""
        if self.labels_file is None:
            return self
        from textheads.errors import ConfigError

        path = Path(self.labels_file)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            # utf-8-sig: a byte-order mark is not part of the first label.
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except OSError as exc:
            raise ConfigError(
                f"heads.{self.name}.labels_file: cannot read {str(path)!r} ({exc.strerror})"
            ) from None
        except UnicodeDecodeError:
            from textheads.data.reading import undecodable_line

            line, problem = undecodable_line(path)
            raise ConfigError(
                f"heads.{self.name}.labels_file: {str(path)!r}: line {line}: {problem}; save it as UTF-8"
            ) from None
        labels = [line.strip() for line in lines if line.strip()]
        try:
            return HeadSpec.model_validate({**self.model_dump(), "labels": labels, "labels_file": None})
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ConfigError(f"heads.{self.name}.labels_file: {str(path)!r}: {problems}") from None


def is_number(value: object) -> bool:
    """True for ints and finite floats (not bools)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _check_unit(value: object, what: str) -> None:
    """Raise unless `value` (when it is a number at all) lies in [0, 1]."""
    if isinstance(value, bool):
        return
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # not a number: pydantic reports the type
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise ValueError(f"{what} must be between 0 and 1; got {value!r}")
