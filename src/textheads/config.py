"""Run configuration: encoder, data, heads and training, read from one YAML file.

Everything is validated when the config is built, so a typo or a bad value
fails before any training time is spent, with the offending key named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from textheads.errors import ConfigError
from textheads.specs import HeadSpec, StrictModel

TRACKERS = ("tensorboard", "mlflow")
"""The experiment trackers `train.report_to` may name."""
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")

FROZEN_MODEL_DEFAULTS: dict[str, Any] = {"pool_layers": "all"}
"""`model` settings that change their default when the encoder is frozen (`train.freeze:
encoder`): the best frozen set-up measured on GoEmotions (docs/benchmarks.md). A
frozen encoder's lower layers keep more of the words themselves, and nothing
fine-tunes the top layer to the task, so every hidden state is pooled."""
FROZEN_TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 8, "batch_size": 512, "head_learning_rate": 1e-3}
"""`train` settings that change their default when the encoder is frozen: the heads
train on cached vectors, where large batches cost little and 8 epochs at 1e-3 beat
40 at batch 32 (docs/benchmarks.md)."""


class ModelSection(StrictModel):
    """Which encoder, how to pool its token states, how many tokens to read."""

    encoder: str = "default"
    """A Hugging Face model id, a local directory, or `default` (all-MiniLM-L6-v2, bundled)."""
    pooling: Literal["mean", "cls", "max", "mean_max"] = "mean"
    pool_layers: int | Literal["all"] = 1
    """Pool each of the top k hidden states (the last being the encoder's output) and
    concatenate them: lower layers keep more of the words themselves. `all`: every
    hidden state, the embeddings included (the default when the encoder is frozen)."""
    max_length: int = Field(default=128, ge=8, le=8192)
    """Tokens the encoder reads at once (special tokens included)."""
    long_text: Literal["truncate", "head_tail", "windows"] = "truncate"
    """How a text longer than `max_length` is read: `truncate` (its first tokens), `head_tail`
    (its first quarter and last three quarters of `max_length`, the middle dropped), or
    `windows` (windows of `max_length` tokens covering the whole text, combined into one
    answer per head; see `window_stride`, `max_windows`)."""
    window_stride: int | None = Field(default=None, ge=0)
    """`windows`: tokens shared by consecutive windows; default `max_length // 4`. At most half
    of `max_length`."""
    max_windows: int = Field(default=8, ge=1, le=256)
    """`windows`: the most windows read per text; a longer text is read up to the end of its
    first `max_windows` windows and counts as truncated."""
    window_pooling: Literal["mean", "max"] = "mean"
    """`windows`: how the windows' pooled vectors are combined into the document's (convolutional
    heads always take the maximum of their features over all windows' tokens)."""

    @model_validator(mode="after")
    def _stride_below_window(self) -> ModelSection:
        if self.window_stride is not None and self.window_stride > self.max_length // 2:
            raise ValueError(
                f"window_stride: {self.window_stride} tokens of overlap is more than half of "
                f"max_length ({self.max_length}); give at most {self.max_length // 2}"
            )
        return self

    @property
    def stride(self) -> int:
        """`window_stride`, with its default resolved."""
        return self.window_stride if self.window_stride is not None else self.max_length // 4

    @field_validator("pool_layers", mode="before")
    @classmethod
    def _layer_count_or_all(cls, value: Any) -> Any:
        # One message for the union (pydantic would give one per member).
        if value != "all" and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64):
            raise ValueError(f"pool_layers must be a layer count from 1 to 64 or 'all'; got {value!r}")
        return value


class DataSection(StrictModel):
    """Where the data lives and which column(s) hold the text."""

    train: str | None = None
    validation: str | None = None
    test: str | None = None
    text: str | list[str] = "text"
    """The text column, or several columns joined with `text_separator`."""
    text_separator: str = "\n"
    validation_split: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Without a validation file: the fraction of training rows held out for validation
    (iteratively stratified over the labels), or 0 for none."""

    @property
    def text_columns(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)

    @field_validator("text")
    @classmethod
    def _non_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one text column")
        return value


class TrainSection(StrictModel):
    """Optimisation, evaluation and checkpointing."""

    epochs: float | None = Field(default=None, gt=0)
    """Passes over the training data: 3 by default (with `max_time` alone: as many as the
    budget allows), 8 when the encoder is frozen (set then unless `max_steps` is)."""
    max_steps: int | None = Field(default=None, gt=0)
    """Stop after this many optimiser steps (overrides `epochs` for the schedule)."""
    batch_size: int = Field(default=32, ge=1)
    """Texts per optimiser step (512 by default when the encoder is frozen), whatever the number
    of processes and accumulation steps (each process computes batch_size / (processes x
    gradient_accumulation_steps) at a time). Under `model.long_text: windows` each text brings
    all its windows (up to `max_windows`) into the step: up to batch_size x max_windows windows;
    `gradient_accumulation_steps` splits them."""
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    """Split each batch into this many micro-batches run one after the other, gradients
    accumulated: the same update as the whole batch, in a fraction of the memory."""
    learning_rate: float = Field(default=8e-5, gt=0)
    """Learning rate of the encoder."""
    head_learning_rate: float = Field(default=2e-3, gt=0)
    """Learning rate of the freshly initialised heads (1e-3 by default when the encoder is frozen)."""
    layer_lr_decay: float = Field(default=1.0, gt=0, le=1)
    """Layer-wise learning-rate decay: each encoder layer learns at this factor times the
    rate of the layer above it (1 = the same rate everywhere)."""
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    balance_heads: bool = True
    """Scale each head's loss by the batch's mean head loss over its own (at most 10x), so
    heads pull on the shared encoder by their `weight`, not by the size of their loss (no
    effect with one head). With the default conv heads it scored better on average on
    every head of both multi-head data sets measured (GoEmotions' three taxonomies; the
    advice example, three seeds; docs/benchmarks.md). `false`: the plain weighted sum."""
    freeze: Literal["none", "encoder"] | int = "none"
    """`none`, `encoder`, or an integer k: freeze all but the top k encoder layers."""
    eval_every_steps: int | None = Field(default=None, gt=0)
    """Evaluate (and checkpoint) every N steps; by default at the end of each epoch."""
    save_every_steps: int | None = Field(default=None, gt=0)
    """Write a resumable checkpoint every N steps, besides those at each evaluation."""
    early_stopping_patience: int | None = Field(default=None, ge=1)
    metric: str = "mean_macro_f1"
    """Validation metric that picks the best model: `loss`, `mean_macro_f1`, or `HEAD.METRIC`."""
    seed: int = 42
    log_every_steps: int = Field(default=20, ge=1)
    keep_checkpoints: int = Field(default=1, ge=1)
    num_threads: int | None = Field(default=None, ge=1)
    device: str = "auto"
    """`auto` (a CUDA GPU when there is one, else the CPU), `cpu`, `cuda` or `cuda:N`."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """`bf16`: bfloat16 autocast for the forward pass (weights and optimiser stay in
    fp32); `fp16`: float16 autocast with dynamic loss scaling (GPUs without bf16, such as
    T4 or V100); `auto`: bf16 where the hardware computes it natively (GPUs that support it,
    CPUs with AVX512-BF16 or AMX), else fp32."""
    cache_dir: str | None = None
    """Embedding cache of the frozen-encoder fast path (default ~/.cache/textheads)."""
    max_time: str | None = None
    """Wall-clock budget such as `45m`; training stops (and saves) when it is spent."""
    report_to: list[str] = Field(default_factory=list)
    """Experiment trackers that receive the losses, learning rates, validation metrics,
    thresholds and this config: any of `tensorboard` (event files under
    `output_dir/tensorboard/`) and `mlflow` (`MLFLOW_TRACKING_URI`, else a SQLite store,
    `output_dir/mlflow.db`). Default: none (`train_log.jsonl` only)."""

    @model_validator(mode="after")
    def _frozen_defaults(self) -> TrainSection:
        # Only settings left unset change: a value the user gave always stands.
        if self.freeze == "encoder":
            for name, value in FROZEN_TRAIN_DEFAULTS.items():
                if name not in self.model_fields_set and not (name == "epochs" and self.max_steps is not None):
                    object.__setattr__(self, name, value)  # assignment would run the validators again
        return self

    @field_validator("freeze")
    @classmethod
    def _freeze_k(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"freeze must be 'none', 'encoder' or a layer count >= 0; got {value}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", value):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {value!r}")
        return value

    @field_validator("report_to", mode="before")
    @classmethod
    def _trackers(cls, value: Any) -> Any:
        if isinstance(value, str):  # `report_to: tensorboard` for a single tracker
            value = [value]
        if not isinstance(value, list):
            return value  # pydantic names the type error
        unknown = [name for name in value if name not in TRACKERS]
        if unknown:
            raise ValueError(f"report_to must list trackers among {list(TRACKERS)}; got {unknown[0]!r}")
        return list(dict.fromkeys(value))

    @field_validator("max_time")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def max_time_seconds(self) -> float | None:
        return None if self.max_time is None else parse_duration(self.max_time)


class RunConfig(StrictModel):
    """A whole training run."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    heads: dict[str, HeadSpec]
    train: TrainSection = Field(default_factory=TrainSection)
    output_dir: str | None = None
    """Where the model directory is written (`runs/CONFIG-NAME` from the CLI when absent)."""

    @model_validator(mode="before")
    @classmethod
    def _name_heads(cls, values: Any) -> Any:
        # Heads are keyed by name in YAML; the spec carries its name too.
        if isinstance(values, dict) and isinstance(values.get("heads"), dict):
            heads = {}
            for name, spec in values["heads"].items():
                if isinstance(spec, dict):
                    spec = {**spec, "name": spec.get("name", name)}
                heads[name] = spec
            values = {**values, "heads": heads}
        return values

    @field_validator("heads")
    @classmethod
    def _at_least_one_head(cls, heads: dict[str, HeadSpec]) -> dict[str, HeadSpec]:
        if not heads:
            raise ValueError("define at least one head")
        for key, spec in heads.items():
            if spec.name != key:
                raise ValueError(f"head {key!r} has name {spec.name!r}; leave `name` out")
        return heads

    @model_validator(mode="after")
    def _defaults_for_the_encoder(self) -> RunConfig:
        """Fill what depends on whether the encoder is frozen: head types and sizes, pooled layers."""
        frozen = self.train.freeze == "encoder"
        heads = {name: spec.with_default_head_type(frozen) for name, spec in self.heads.items()}
        object.__setattr__(self, "heads", heads)  # assignment would run the validators again
        if frozen:
            unset = {k: v for k, v in FROZEN_MODEL_DEFAULTS.items() if k not in self.model.model_fields_set}
            object.__setattr__(self, "model", self.model.model_copy(update=unset))
        return self

    @model_validator(mode="after")
    def _metric_names_a_head(self) -> RunConfig:
        metric = self.train.metric
        if metric not in ("loss", "mean_macro_f1") and metric.split(".", 1)[0] not in self.heads:
            raise ValueError(
                f"train.metric must be 'loss', 'mean_macro_f1' or 'HEAD.METRIC' with HEAD one of "
                f"{sorted(self.heads)}; got {metric!r}"
            )
        return self


def parse_duration(text: str) -> float:
    """Parse `90`, `90s`, `45m` or `1.5h` into seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"expected a duration such as '90s', '45m' or '1.5h'; got {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn pydantic's error list into lines naming each bad key."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against docs/configuration.md)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif "input" in error and error["type"] not in ("value_error",):
            message = f"{message}; got {error['input']!r}"
        lines.append(f"{source}: {key or '(top level)'}: {message}")
    return "\n".join(lines)


def build_config(raw: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Validate a config dict, raising `ConfigError` that names every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections; got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` overrides; values are parsed as YAML (`1`, `true`, `[a, b]`)."""
    if overrides and not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping of sections to apply --set to; got {type(raw).__name__}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE such as train.epochs=1; got {item!r}")
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item}: {part!r} is not a section")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            node[parts[-1]] = value
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config, apply `--set` overrides, resolve relative paths.

    Relative data paths are taken relative to the current directory when they
    exist there, else relative to the config file; `labels_file` relative to
    the config file; `output_dir` relative to the current directory.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        from textheads.data.reading import undecodable_line

        line, problem = undecodable_line(path)
        raise ConfigError(f"{path}: line {line}: {problem}; save the config as UTF-8") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    raw = apply_overrides(raw, overrides or [])
    config = build_config(raw, source=str(path))
    return resolve_paths(config, path.parent)


def resolve_paths(config: RunConfig, base_dir: Path) -> RunConfig:
    """Resolve relative data files against `base_dir` when not found as given."""

    def resolve(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute() or Path(value).exists():
            return value
        candidate = base_dir / value
        return str(candidate) if candidate.exists() else value

    data = config.data.model_copy(
        update={name: resolve(getattr(config.data, name)) for name in ("train", "validation", "test")}
    )
    heads = {name: spec.with_labels_resolved(base_dir) for name, spec in config.heads.items()}
    return config.model_copy(update={"data": data, "heads": heads})


def dump_config(config: RunConfig) -> str:
    """The config as YAML, heads keyed by name without repeating it."""
    raw = config.model_dump(mode="json")
    for spec in raw["heads"].values():
        spec.pop("name", None)
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
