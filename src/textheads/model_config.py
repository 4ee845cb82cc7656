"""The saved model's config (`TextHeadsConfig`) and its mapping to and from the run config.

A run config (`RunConfig`, what the user writes) becomes a `TextHeadsConfig`
(what `config.json` holds) here, and a loaded model's config becomes a run
config here: nowhere else maps one config onto the other. Importing this module
loads no weights and no torch, so the service's HTTP process can read a
model's description without the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedConfig

from textheads import __version__
from textheads.config import DataSection, ModelSection, RunConfig
from textheads.data.dataset import LabelledData
from textheads.errors import ModelLoadError
from textheads.inference.windows import LongText
from textheads.specs import HeadSpec


class TextHeadsConfig(PreTrainedConfig):
    """Everything needed to rebuild the model: encoder config, pooling and head specs.

    Code reads the text window as `max_length_of(config)`; `config.json` stores it as
    `max_text_length` because transformers refuses a model config with `max_length`
    (a generation setting), and so every saved model has it under that key.
    """

    model_type = "textheads"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        encoder_name: str = "",
        pooling: str = "mean",
        pool_layers: int = 1,
        max_text_length: int = 128,
        head_specs: list[dict[str, Any]] | None = None,
        target_stats: dict[str, list[float]] | None = None,
        text_columns: list[str] | None = None,
        textheads_version: str = "",
        long_text: str = "truncate",
        window_stride: int = 32,
        max_windows: int = 8,
        window_pooling: str = "mean",
        **kwargs: Any,
    ) -> None:
        self.encoder = encoder or {}
        self.encoder_name = encoder_name
        self.pooling = pooling
        self.pool_layers = pool_layers
        self.max_text_length = max_text_length
        self.head_specs = head_specs or []
        self.target_stats = target_stats or {}
        self.text_columns = text_columns or ["text"]
        self.textheads_version = textheads_version
        # Models saved before `model.long_text` existed have none of these keys: they truncate.
        self.long_text = long_text
        self.window_stride = window_stride
        self.max_windows = max_windows
        self.window_pooling = window_pooling
        super().__init__(**{**kwargs, **label_maps(self.head_specs)})

    @property
    def specs(self) -> dict[str, HeadSpec]:
        """Head specs by name, in output order."""
        return {d["name"]: HeadSpec.model_validate(d) for d in self.head_specs}


PROBLEM_TYPES = {"multilabel": "multi_label_classification", "multiclass": "single_label_classification"}


def label_maps(head_specs: list[dict[str, Any]]) -> dict[str, Any]:
    """`id2label`, `label2id` and `problem_type` as transformers means them, for a model with
    one classification head, so the Hub's widgets and other tools show its label names.

    Derived from the head specs each time (a config.json saved before they were written
    gets them on load); a model with several heads, or a regression head, keeps
    transformers' defaults (which `config.json` omits): one label map cannot describe it.
    """
    if len(head_specs) != 1 or head_specs[0].get("kind") not in PROBLEM_TYPES or not head_specs[0].get("labels"):
        return {}
    labels = head_specs[0]["labels"]
    return {
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
        "problem_type": PROBLEM_TYPES[head_specs[0]["kind"]],
    }


def max_length_of(config: TextHeadsConfig) -> int:
    """The model's `max_length` (the run config's `model.max_length`), in tokens."""
    return int(config.max_text_length)


def long_text_of(config: TextHeadsConfig) -> LongText:
    """How the model reads texts longer than its `max_length` (`model.long_text` and its settings)."""
    return LongText(config.long_text, config.window_stride, config.max_windows, config.window_pooling)  # type: ignore[arg-type]


def read_model_config(folder: str | Path) -> TextHeadsConfig:
    """The `config.json` of a model directory or ONNX export, without loading any weights."""
    try:
        config = TextHeadsConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the config.json in {folder}: {exc}") from None
    if not config.head_specs:
        raise ModelLoadError(f"{folder}/config.json is not a textheads model config (no head specs)")
    return config


def target_stats(specs: list[HeadSpec], data: LabelledData) -> dict[str, list[float]]:
    """(mean, std) of each regression head's training targets: heads predict standardised values."""
    stats = {}
    for spec in specs:
        if spec.kind == "regression":
            target = data.targets[spec.name]
            values = target.values[target.mask].astype(np.float64)
            std = float(values.std()) if len(values) > 1 else 0.0
            stats[spec.name] = [float(values.mean()), std if std > 0 else 1.0]
    return stats


def model_config_for(
    run_config: RunConfig, specs: list[HeadSpec], encoder_config: dict[str, Any], stats: dict[str, list[float]], *, pool_layers: int
) -> TextHeadsConfig:
    """The saved config of a model trained with `run_config` (its heads as `specs`), pooling
    `pool_layers` hidden states (`model.pool_layers` counted on the encoder)."""
    model = run_config.model
    return TextHeadsConfig(
        encoder=encoder_config,
        encoder_name=model.encoder,
        pooling=model.pooling,
        pool_layers=pool_layers,
        max_text_length=model.max_length,
        head_specs=[spec.model_dump(mode="json") for spec in specs],
        target_stats=stats,
        text_columns=run_config.data.text_columns,
        textheads_version=__version__,
        long_text=model.long_text,
        window_stride=model.stride,
        max_windows=model.max_windows,
        window_pooling=model.window_pooling,
    )


def used_run_config(run_config: RunConfig, config: TextHeadsConfig) -> RunConfig:
    """`run_config` with the model settings as `config` (the model built for it) has them:
    `pool_layers: all` counted, so the saved run config and the run's log say what was used."""
    return run_config.model_copy(update={"model": run_config.model.model_copy(update={"pool_layers": config.pool_layers})})


def run_config_for(config: TextHeadsConfig, *, max_length: int, output_dir: str | Path | None = None) -> RunConfig:
    """The run config a loaded model answers to: its encoder, pooling, text columns and heads.

    `max_length` is the window the model really reads (see `encoder.usable_max_length`).
    """
    return RunConfig(
        model=ModelSection(
            encoder=config.encoder_name or "default",
            pooling=config.pooling,
            pool_layers=config.pool_layers,
            max_length=max_length,
            long_text=config.long_text,
            # The saved stride fitted the saved max_length; a smaller usable window may need less.
            window_stride=min(config.window_stride, max_length // 2),
            max_windows=config.max_windows,
            window_pooling=config.window_pooling,
        ),
        data=DataSection(text=config.text_columns or "text"),
        heads=config.specs,
        output_dir=str(output_dir) if output_dir is not None else None,
    )
