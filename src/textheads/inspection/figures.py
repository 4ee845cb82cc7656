"""What `textheads inspect` finds in a run's data, as plain dataclasses (`to_dict` gives JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "validation", "test")


@dataclass
class SplitRows:
    """One split's rows and where they come from."""

    name: str
    rows: int
    source: str
    """The file, or how the rows were held out of the training file."""


@dataclass
class LabelCount:
    """How many rows carry one label, per split."""

    label: str
    counts: dict[str, int]


@dataclass
class Distribution:
    """Summary of a regression head's values in one split."""

    count: int
    min: float
    p5: float
    p25: float
    median: float
    p75: float
    p95: float
    max: float
    mean: float
    std: float


@dataclass
class Histogram:
    """Counts between consecutive `edges` (len(edges) = len(counts) + 1)."""

    edges: list[float]
    counts: list[int]


@dataclass
class LabelPair:
    """Two labels of a multilabel head and the training rows carrying both."""

    first: str
    second: str
    rows: int


@dataclass
class AlwaysWith:
    """A label found only on rows that also carry `with_label` (`mutual`: and the other way round)."""

    label: str
    with_label: str
    rows: int
    mutual: bool


@dataclass
class HeadInspection:
    """One head's labels or values across the splits, and what may trouble training on them."""

    name: str
    kind: str
    column: str
    labelled: dict[str, int]
    """Rows with a label (or value) for this head, per split."""
    missing_share: dict[str, float]
    """Share of a split's rows without a label for this head (they add no loss to it)."""
    labels: list[LabelCount] = field(default_factory=list)
    """Classification heads: every label, most frequent in the training rows first."""
    labels_per_row: dict[int, int] = field(default_factory=dict)
    """Multilabel heads: training rows by how many labels they carry."""
    distribution: dict[str, Distribution] = field(default_factory=dict)
    """Regression heads: the values of each split."""
    histogram: Histogram | None = None
    """Regression heads: the training values."""
    too_few_to_split: list[str] = field(default_factory=list)
    """Labels with fewer than 2 examples when validation rows are held out of the training file."""
    too_few_to_tune: list[str] = field(default_factory=list)
    """Multilabel heads tuning thresholds: labels with fewer validation positives than a threshold
    of their own needs (they get the head's global threshold)."""
    never_in_train: list[str] = field(default_factory=list)
    only_in_evaluation: list[str] = field(default_factory=list)
    """Labels never seen in training rows that the validation or test rows do carry."""
    pairs: list[LabelPair] = field(default_factory=list)
    """Multilabel heads: the most frequent pairs of labels in the training rows."""
    always_with: list[AlwaysWith] = field(default_factory=list)
    cooccurrence: list[list[int]] = field(default_factory=list)
    """Multilabel heads: training rows carrying both labels, in the order of `label_order`."""
    label_order: list[str] = field(default_factory=list)
    """The head's labels in its output order."""


@dataclass
class LengthInspection:
    """Texts' lengths in tokens of the run's tokenizer (special tokens included) against `max_length`."""

    encoder: str
    max_length: int
    long_text: str
    texts: int
    percentiles: dict[str, int]
    """`p50`, `p90`, `p95`, `p99` and `max` tokens of a text."""
    cut: int
    """Texts of which some tokens would not be read (as `model.long_text` reads them)."""
    cut_by_split: dict[str, int]
    tokens_not_read: dict[str, float] = field(default_factory=dict)
    """Over the cut texts: `mean`, `median` and `max` tokens not read, and `mean_share` of their tokens."""
    max_windows: int | None = None
    """`long_text: windows`: the most windows read per text (the cut texts need more)."""
    windows: dict[str, float] = field(default_factory=dict)
    """`long_text: windows`: `mean` and `max` windows read per text."""
    histogram: Histogram | None = None


@dataclass
class RowRef:
    """One row of a data file."""

    split: str
    source: str
    line: int


@dataclass
class TextGroup:
    """Rows with the same text (`heads`: the heads on which their labels disagree)."""

    text: str
    rows: list[RowRef]
    heads: list[str] = field(default_factory=list)


@dataclass
class DuplicateInspection:
    """Texts that appear more than once."""

    repeated: dict[str, int]
    """Per split: rows whose exact text appears earlier in the same split."""
    conflicting: int
    """Texts whose rows (in any splits) disagree on some head's label."""
    leaked: dict[str, int]
    """`validation`, `test`: rows whose exact text is also a training row's."""
    conflict_examples: list[TextGroup] = field(default_factory=list)
    leak_examples: list[TextGroup] = field(default_factory=list)


@dataclass
class DataInspection:
    """Everything `textheads inspect` reports about a run's data, before any training."""

    splits: list[SplitRows]
    heads: list[HeadInspection]
    lengths: LengthInspection
    duplicates: DuplicateInspection
    problems: list[str] = field(default_factory=list)
    """One sentence per thing worth fixing before training."""

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        return dataclasses.asdict(self)
