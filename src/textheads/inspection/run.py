"""`inspect_data`: a run's data read, checked and split as `fit` reads it, then described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textheads.config import RunConfig, apply_overrides, build_config
from textheads.data.dataset import LabelledData
from textheads.data.kinds import infer_kind
from textheads.data.prepare import RunData, load_run_data, load_split
from textheads.inference.windows import LongText
from textheads.inspection.duplicates import inspect_duplicates
from textheads.inspection.figures import DataInspection, SplitRows
from textheads.inspection.labels import inspect_head
from textheads.inspection.lengths import inspect_lengths
from textheads.inspection.problems import list_problems


def inspect_data(config: RunConfig) -> DataInspection:
    """Describe the data of a training run before training: rows per split, each head's labels
    (or values), rare labels, co-occurrence, token lengths against `max_length`, duplicates.

    The data is read, checked and split by the same code as `TextClassifier.fit`, so a bad row,
    an unknown label or a missing column raises the error training would raise.

    Example:
        >>> from textheads import inspect_data, load_config
        >>> figures = inspect_data(load_config("examples/advice/config.yaml"))  # doctest: +SKIP
        >>> figures.lengths.cut  # doctest: +SKIP
        0
    """
    from textheads.encoder import check_max_length, load_tokenizer

    run = load_run_data(config)
    model = config.model
    tokenizer, encoder_config = load_tokenizer(model.encoder)
    check_max_length(model.max_length, encoder_config, tokenizer, model.encoder)
    splits: dict[str, LabelledData] = {"train": run.train}
    if run.validation is not None:
        splits["validation"] = run.validation
    if config.data.test is not None:
        splits["test"], _ = load_split(config.data, config.data.test, run.specs, "test")
    long_text = LongText(model.long_text, model.stride, model.max_windows, model.window_pooling)
    figures = DataInspection(
        splits=_split_rows(config, run, splits),
        heads=[inspect_head(spec, splits, too_few_to_split=run.too_few_to_split) for spec in run.specs],
        lengths=inspect_lengths(
            tokenizer, {name: data.texts for name, data in splits.items()},
            encoder=model.encoder, max_length=model.max_length, long_text=long_text,
        ),
        duplicates=inspect_duplicates(splits, run.specs),
    )
    figures.problems = list_problems(figures)
    return figures


def data_file_config(
    path: str | Path,
    heads: dict[str, str | None],
    *,
    text: str | None = None,
    encoder: str | None = None,
    max_length: int | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """The run config of training on one data file: `heads` maps each head (and its column) to
    its kind, or to None to tell the kind from the column's cells (`data.kinds.infer_kind`);
    what is not given keeps the config's default; `overrides` are `--set KEY=VALUE`.

    Example:
        >>> config = data_file_config("train.jsonl", {"topics": "multilabel", "level": "multiclass"})
        >>> config.data.validation_split
        0.1
    """
    raw: dict[str, Any] = {
        "data": {"train": str(path), **({"text": text} if text is not None else {})},
        "heads": {name: {"kind": kind} if kind else {} for name, kind in heads.items()},
        "model": {
            **({"encoder": encoder} if encoder is not None else {}),
            **({"max_length": max_length} if max_length is not None else {}),
        },
    }
    raw = apply_overrides(raw, overrides or [])
    for name, spec in raw["heads"].items():
        if isinstance(spec, dict) and "kind" not in spec:  # after --set, which may name its column
            spec["kind"] = infer_kind(path, spec.get("column") or name)
    return build_config(raw, source="inspect options")


def _split_rows(config: RunConfig, run: RunData, splits: dict[str, LabelledData]) -> list[SplitRows]:
    rows = []
    for name, data in splits.items():
        source = data.source
        if name == "validation" and run.held_out:
            source = f"held out of {data.source} (validation_split {config.data.validation_split}, stratified)"
        rows.append(SplitRows(name, len(data), source))
    return rows
