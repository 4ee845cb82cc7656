"""The data of a training run, read, checked and split exactly as `fit` uses it.

`TextClassifier.fit` and `textheads inspect` both call `load_run_data`, so what
inspect reports (and every error it raises) is what training would meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textheads.config import DataSection, RunConfig
from textheads.data.dataset import LabelledData, Source, Split, load_labelled, require_labelled_rows
from textheads.data.split import stratified_split
from textheads.errors import ConfigError
from textheads.specs import HeadSpec


@dataclass
class RunData:
    """Training and validation rows of a run, and the heads with their labels resolved."""

    train: LabelledData
    validation: LabelledData | None
    specs: list[HeadSpec]
    held_out: bool = False
    """True when the validation rows were split off the training file (`data.validation_split`)."""
    too_few_to_split: list[str] = field(default_factory=list)
    """`HEAD.LABEL` of labels with fewer than 2 training examples when validation rows were held
    out: the stratified split cannot put them on both sides."""


def load_split(data: DataSection, source: Source, heads: list[HeadSpec], split: Split) -> tuple[LabelledData, list[HeadSpec]]:
    """Read and check one labelled file with the config's text columns; training data may
    bring labels of heads that have none yet, other splits are checked against them."""
    return load_labelled(source, heads, data.text_columns, split=split, separator=data.text_separator, allow_new_labels=split == "train")


def load_run_data(config: RunConfig, train: Source | None = None, validation: Source | None = None) -> RunData:
    """Read the training data (and validation data, or hold validation rows out of the training
    rows as `data.validation_split` says), as `fit` does; files default to the config's `data`."""
    train = train if train is not None else config.data.train
    validation = validation if validation is not None else config.data.validation
    if train is None:
        raise ConfigError("no training data: pass `train` or set data.train in the config")
    train_data, specs = load_split(config.data, train, list(config.heads.values()), "train")
    if validation is not None:
        validation_data, _ = load_split(config.data, validation, specs, "validation")
        return RunData(train_data, validation_data, specs)
    if config.data.validation_split <= 0:
        return RunData(train_data, None, specs)
    kept, held_out, too_few = stratified_split(train_data, specs, config.data.validation_split, config.train.seed)
    # Holding out validation rows may have taken a head's last labelled rows.
    require_labelled_rows(kept, specs, after_split=True)
    return RunData(kept, held_out, specs, held_out=True, too_few_to_split=too_few)
