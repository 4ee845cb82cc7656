"""Tests of run configs and head specs: textheads.config and textheads.specs.

A bad config must fail with a ConfigError that names the offending key path.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from textheads import TextClassifier
from textheads.config import (
    RunConfig,
    TrainSection,
    apply_overrides,
    build_config,
    dump_config,
    load_config,
    parse_duration,
)
from textheads.errors import ConfigError
from textheads.specs import HeadSpec

EXAMPLE = """\
model: {encoder: default, pooling: mean, max_length: 128}
data: {train: data/train.jsonl, validation: data/dev.jsonl, text: text}
heads:
  topics:    {kind: multilabel, column: topics, separator: ",", weight: 1.0}
  level:     {kind: multiclass, labels: [junior, mid, senior], weight: 0.5}
  salary:    {kind: regression, loss: huber}
train: {epochs: 3, batch_size: 32, learning_rate: 5.0e-5, freeze: none,
        early_stopping_patience: 2, metric: mean_macro_f1, seed: 42}
output_dir: runs/jobs
"""


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE)


def edited(path: str, value: Any) -> dict[str, Any]:
    """The example with one key set (`a.b.c`); `value=DELETE` removes it."""
    raw = example()
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


DELETE = object()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def key_error(source: str, key: str, message: str = "") -> str:
    """Regex for one line of a ConfigError: 'SOURCE: KEY: MESSAGE'."""
    return re.escape(f"{source}: {key}: ") + message


# ----------------------------------------------------------------------------- the example


def test_example_loads_with_defaults_filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path / "config.yaml", EXAMPLE))
    assert isinstance(config, RunConfig)
    assert (config.model.encoder, config.model.pooling, config.model.max_length) == ("default", "mean", 128)
    assert config.data.train == "data/train.jsonl"  # exists nowhere: kept as written
    assert config.data.test is None
    assert config.data.text_columns == ["text"]
    assert config.data.text_separator == "\n"
    assert config.output_dir == "runs/jobs"

    assert list(config.heads) == ["topics", "level", "salary"]
    topics, level, salary = config.heads.values()
    assert [h.name for h in (topics, level, salary)] == ["topics", "level", "salary"]
    assert [h.kind for h in (topics, level, salary)] == ["multilabel", "multiclass", "regression"]
    assert [h.loss for h in (topics, level, salary)] == ["bce", "cross_entropy", "huber"]
    assert [h.weight for h in (topics, level, salary)] == [1.0, 0.5, 1.0]
    assert topics.separator == ","
    assert topics.labels is None
    assert level.labels == ["junior", "mid", "senior"]
    assert [h.source_column for h in (topics, level, salary)] == ["topics", "level", "salary"]
    assert level.column is None
    assert (level.dropout, level.hidden_sizes, level.threshold, salary.huber_delta) == (0.1, [], 0.5, 1.0)

    train = config.train
    assert train.epochs == 3 and train.batch_size == 32 and train.seed == 42
    assert train.learning_rate == pytest.approx(5e-5)
    assert train.freeze == "none"
    assert train.early_stopping_patience == 2
    assert train.metric == "mean_macro_f1"
    assert train.head_learning_rate == pytest.approx(2e-3)  # a default
    assert train.max_time is None and train.max_time_seconds is None


@pytest.mark.parametrize(
    ("kind", "loss"), [("multilabel", "bce"), ("multiclass", "cross_entropy"), ("regression", "mse")]
)
def test_default_loss_per_kind(kind: str, loss: str) -> None:
    config = build_config(
        {"heads": {"h": {"kind": kind, **({"labels": ["a", "b"]} if kind == "multiclass" else {})}}}
    )
    assert config.heads["h"].loss == loss


@pytest.mark.parametrize(
    ("freeze", "expected"),
    [("none", [[2, 3, 4], [2, 3, 4], [], [], [5]]), (1, [[2, 3, 4], [2, 3, 4], [], [], [5]]), ("encoder", [[], [], [], [], [5]])],
)
def test_head_type_defaults_to_convolutions_for_classification_on_a_fine_tuned_encoder(freeze: str | int, expected: list) -> None:
    heads = {
        "tags": {"kind": "multilabel"},
        "level": {"kind": "multiclass"},
        "score": {"kind": "regression"},
        "pooled": {"kind": "multilabel", "conv_kernel_sizes": []},  # a user's explicit choice stands
        "conv": {"kind": "regression", "conv_kernel_sizes": [5]},
    }
    config = build_config({"heads": heads, "train": {"freeze": freeze}})
    assert [spec.conv_kernel_sizes for spec in config.heads.values()] == expected
    assert build_config(yaml.safe_load(dump_config(config))) == config  # stored resolved
    assert HeadSpec(name="h", kind="multilabel").reads_tokens is False  # unset outside a run config: pooled


FINE_TUNING_DEFAULTS = {"pool_layers": 1, "hidden_sizes": [], "dropout": 0.1, "epochs": None, "batch_size": 32, "head_learning_rate": 2e-3}
FROZEN_DEFAULTS = {"pool_layers": "all", "hidden_sizes": [512], "dropout": 0.3, "epochs": 8, "batch_size": 512, "head_learning_rate": 1e-3}


def _defaults_seen(config: RunConfig) -> list[dict[str, Any]]:
    """The encoder-dependent settings of each head, with the model's and the train section's."""
    shared = {"pool_layers": config.model.pool_layers, **{k: getattr(config.train, k) for k in ("epochs", "batch_size", "head_learning_rate")}}
    return [{**shared, "hidden_sizes": spec.hidden_sizes, "dropout": spec.dropout} for spec in config.heads.values()]


@pytest.mark.parametrize(("freeze", "expected"), [("encoder", FROZEN_DEFAULTS), ("none", FINE_TUNING_DEFAULTS), (2, FINE_TUNING_DEFAULTS)])
def test_a_frozen_encoder_has_the_best_frozen_set_up_as_defaults(freeze: str | int, expected: dict) -> None:
    heads = {"tags": {"kind": "multilabel"}, "level": {"kind": "multiclass"}, "score": {"kind": "regression"}}
    config = build_config({"heads": heads, "train": {"freeze": freeze}})
    assert _defaults_seen(config) == [expected] * 3
    assert build_config(yaml.safe_load(dump_config(config))) == config  # stored as used
    # The Python API fills them the same way, from dicts or from spec and section objects.
    clf = TextClassifier({"tags": HeadSpec(name="tags", kind="multilabel")}, train=TrainSection(freeze=freeze))
    assert _defaults_seen(clf.config) == [expected]


def test_values_given_win_over_the_frozen_defaults() -> None:
    given = {"pool_layers": 1, "hidden_sizes": [], "dropout": 0.1, "epochs": 3, "batch_size": 32, "head_learning_rate": 2e-3}
    config = build_config(
        {
            "model": {"pool_layers": 1},
            "heads": {"tags": {"kind": "multilabel", "hidden_sizes": [], "dropout": 0.1}, "level": {"kind": "multiclass", "hidden_sizes": [64]}},
            "train": {"freeze": "encoder", "epochs": 3, "batch_size": 32, "head_learning_rate": 2e-3},
        }
    )
    assert _defaults_seen(config) == [given, {**given, "hidden_sizes": [64], "dropout": 0.3}]
    # A step budget, not the default epochs, decides a frozen run that sets max_steps.
    config = build_config({"heads": {"tags": {"kind": "multilabel"}}, "train": {"freeze": "encoder", "max_steps": 10}})
    assert config.train.epochs is None and config.train.batch_size == 512


def test_minimal_config_fills_every_section() -> None:
    config = build_config({"heads": {"level": {"kind": "multiclass"}}})
    assert config.model.encoder == "default" and config.model.pooling == "mean"
    assert config.data.text == "text" and config.data.train is None
    assert config.train.epochs is None and config.train.metric == "mean_macro_f1"  # 3, or 40 on the fast path
    assert config.output_dir is None


def test_head_column_overrides_name() -> None:
    config = build_config({"heads": {"level": {"kind": "multiclass", "column": "seniority"}}})
    assert config.heads["level"].source_column == "seniority"


def test_several_text_columns() -> None:
    config = build_config(
        {"data": {"text": ["title", "body"], "text_separator": " "}, "heads": {"s": {"kind": "regression"}}}
    )
    assert config.data.text_columns == ["title", "body"]


# ----------------------------------------------------------------------------- errors name the key


# (key set in the example, its value, key path the error names, the message)
BAD_KEYS = [
    ("heads.level.lables", ["a", "b"], "heads.level.lables", "unknown key"),
    ("train.epoch", 1, "train.epoch", "unknown key"),
    ("model.encodr", "x", "model.encodr", "unknown key"),
    ("extra_section", {}, "extra_section", "unknown key"),
    (
        "heads.level.kind",
        "binary",
        "heads.level.kind",
        "Input should be 'multilabel', 'multiclass' or 'regression'; got 'binary'",
    ),
    (
        "heads.topics.loss",
        "huber",
        "heads.topics",
        "loss must be one of ['bce', 'focal', 'asl'] for a multilabel head; got 'huber'",
    ),
    (
        "heads.salary.loss",
        "bce",
        "heads.salary",
        "loss must be one of ['mse', 'huber'] for a regression head",
    ),
    ("train.epochs", -1, "train.epochs", "Input should be greater than 0; got -1"),
    ("train.batch_size", 0, "train.batch_size", "Input should be greater than or equal to 1"),
    (
        "train.metric",
        "salery.mae",
        "(top level)",
        (
            "train.metric must be 'loss', 'mean_macro_f1' or 'HEAD.METRIC' with HEAD one of "
            "['level', 'salary', 'topics']; got 'salery.mae'"
        ),
    ),
    (
        "heads.level.labels",
        ["a", "b", "a"],
        "heads.level.labels",
        "labels must be unique; ['a'] appear more than once",
    ),
    ("heads.level.labels", ["only"], "heads.level", "a multiclass head needs at least 2 labels"),
    ("heads.level.class_weights", [1.0, 2.0], "heads.level", "class_weights has 2 values for 3 labels"),
    ("heads.topics.class_weights", [1.0], "heads.topics", "class_weights applies to multiclass heads only"),
    ("heads.level.threshold", 0.3, "heads.level", "threshold applies to multilabel heads only"),
    ("heads.salary.threshold", {"a": 0.5}, "heads.salary", "threshold applies to multilabel heads only"),
    ("heads.salary.labels", ["a", "b"], "heads.salary", "a regression head takes no labels"),
    ("heads.level.labels_file", "levels.txt", "heads.level", "give either labels or labels_file, not both"),
    (
        "heads.level.hidden_sizes",
        [64, 0],
        "heads.level.hidden_sizes",
        "hidden sizes must be positive integers",
    ),
    ("heads.level.weight", -1, "heads.level.weight", "Input should be greater than or equal to 0"),
    ("heads.level.name", "other", "heads", "head 'level' has name 'other'; leave `name` out"),
    ("heads", {}, "heads", "define at least one head"),
    ("heads", DELETE, "heads", "required key is missing"),
    ("train.freeze", -1, "train.freeze", "freeze must be 'none', 'encoder' or a layer count >= 0; got -1"),
    (
        "train.freeze",
        "all",
        "train.freeze.literal['none','encoder']",
        "Input should be 'none' or 'encoder'; got 'all'",
    ),
    (
        "train.max_time",
        "soon",
        "train.max_time",
        "expected a duration such as '90s', '45m' or '1.5h'; got 'soon'",
    ),
    ("model.pooling", "median", "model.pooling", "Input should be 'mean', 'cls', 'max' or 'mean_max'; got 'median'"),
    ("model.pool_layers", 0, "model.pool_layers", "pool_layers must be a layer count from 1 to 64 or 'all'; got 0"),
    ("model.pool_layers", "every", "model.pool_layers", "pool_layers must be a layer count from 1 to 64 or 'all'; got 'every'"),
    ("model.max_length", 4, "model.max_length", "Input should be greater than or equal to 8"),
    ("data.text", [], "data.text", "give at least one text column"),
    ("heads.topics.threshold", 1.5, "heads.topics.threshold", "threshold must be between 0 and 1; got 1.5"),
    ("heads.topics.threshold", -0.1, "heads.topics.threshold", "threshold must be between 0 and 1; got -0.1"),
    ("heads.topics.threshold", float("nan"), "heads.topics.threshold", "threshold must be between 0 and 1; got nan"),
    (
        "heads.topics.threshold",
        {"a": float("nan")},
        "heads.topics.threshold",
        "threshold of label 'a' must be between 0 and 1; got nan",
    ),
    ("heads.topics.threshold", {"a": 2}, "heads.topics.threshold", "threshold of label 'a' must be between 0 and 1; got 2"),
    ("train.epochs", float("inf"), "train.epochs", "Input should be a finite number; got inf"),
    ("train.learning_rate", float("nan"), "train.learning_rate", "Input should be a finite number; got nan"),
    ("heads.level.labels", ["a", float("nan")], "heads.level.labels.1", "Input should be a valid string; got nan"),
]


@pytest.mark.parametrize(("key", "value", "at", "message"), BAD_KEYS)
def test_error_names_the_bad_key(key: str, value: Any, at: str, message: str) -> None:
    with pytest.raises(ConfigError, match=key_error("cfg.yaml", at, re.escape(message))):
        build_config(edited(key, value), source="cfg.yaml")


def test_every_bad_key_is_reported_at_once() -> None:
    raw = edited("train.epochs", 0)
    raw["model"]["pooling"] = "median"
    raw["heads"]["level"]["lables"] = ["x"]
    with pytest.raises(ConfigError) as info:
        build_config(raw, source="cfg.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert {line.split(": ")[1] for line in lines} == {"train.epochs", "model.pooling", "heads.level.lables"}


@pytest.mark.parametrize("metric", ["loss", "mean_macro_f1", "level.macro_f1", "salary.mae"])
def test_valid_metrics(metric: str) -> None:
    assert build_config(edited("train.metric", metric)).train.metric == metric


@pytest.mark.parametrize("freeze", ["none", "encoder", 0, 4])
def test_valid_freeze(freeze: Any) -> None:
    assert build_config(edited("train.freeze", freeze)).train.freeze == freeze


@pytest.mark.parametrize("raw", [["a", "b"], "just text", 3, None])
def test_config_that_is_not_a_mapping(raw: Any) -> None:
    with pytest.raises(
        ConfigError, match=rf"^cfg\.yaml: expected a mapping of sections; got {type(raw).__name__}$"
    ):
        build_config(raw, source="cfg.yaml")


def test_yaml_file_that_is_a_list(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "- model\n- heads\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: expected a mapping of sections; got list")):
        load_config(path)


def test_empty_yaml_file_asks_for_heads(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "")
    with pytest.raises(ConfigError, match=key_error(str(path), "heads", "required key is missing")):
        load_config(path)


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "model:\n  encoder: default\n  pooling: mean: cls\nheads: {}\n")
    with pytest.raises(
        ConfigError,
        match=re.escape(f"{path}: not valid YAML at line 3, column ")
        + r"\d+: mapping values are not allowed",
    ):
        load_config(path)


def test_yaml_unclosed_bracket_gives_line(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "heads:\n  level: {kind: multiclass\ntrain: {epochs: 1}\n")
    with pytest.raises(
        ConfigError, match=re.escape(f"{path}: not valid YAML at line ") + r"[34], column \d+"
    ):
        load_config(path)


def test_unreadable_config_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(
        ConfigError, match=re.escape(f"cannot read config {str(path)!r}: No such file or directory")
    ):
        load_config(path)
    with pytest.raises(ConfigError, match=re.escape(f"cannot read config {str(tmp_path)!r}")):
        load_config(tmp_path)  # a directory


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", EXAMPLE.replace("epochs: 3", "epoch: 3"))
    with pytest.raises(ConfigError, match=key_error(str(path), "train.epoch", "unknown key")):
        load_config(path)


def test_missing_labels_file_names_the_head(tmp_path: Path) -> None:
    raw = example()
    raw["heads"]["level"] = {"kind": "multiclass", "labels_file": "levels.txt"}
    path = write(tmp_path / "config.yaml", yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError,
        match=re.escape(f"heads.level.labels_file: cannot read {str(tmp_path / 'levels.txt')!r}")
        + r" \(No such file or directory\)",
    ):
        load_config(path)


# ----------------------------------------------------------------------------- --set overrides


def test_override_values_are_parsed_as_yaml() -> None:
    raw = apply_overrides(
        example(),
        ["train.epochs=1", "heads.level.weight=2.5", "model.pooling=cls", "heads.level.labels=[a, b]"],
    )
    assert raw["train"]["epochs"] == 1 and isinstance(raw["train"]["epochs"], int)
    assert raw["heads"]["level"]["weight"] == 2.5
    assert raw["model"]["pooling"] == "cls"
    assert raw["heads"]["level"]["labels"] == ["a", "b"]
    config = build_config(raw)
    assert config.train.epochs == 1 and config.heads["level"].weight == 2.5 and config.model.pooling == "cls"


def test_override_creates_nested_keys() -> None:
    raw = apply_overrides(
        example(), ["heads.extra.kind=regression", "data.test=data/test.jsonl", "train.max_time=45m"]
    )
    assert raw["heads"]["extra"] == {"kind": "regression"}
    config = build_config(raw)
    assert config.heads["extra"].kind == "regression"
    assert config.data.test == "data/test.jsonl"
    assert config.train.max_time_seconds == 2700


def test_override_into_empty_section_and_empty_value() -> None:
    raw = apply_overrides(
        {"train": None, "heads": {"s": {"kind": "regression"}}}, ["train.seed=7", "output_dir="]
    )
    assert raw["train"] == {"seed": 7}
    assert raw["output_dir"] == ""


def test_override_value_that_is_not_yaml_is_kept_as_text() -> None:
    raw = apply_overrides({}, ["model.encoder=a: b: c"])
    assert raw["model"]["encoder"] == "a: b: c"


@pytest.mark.parametrize("item", ["train.epochs", "=3", "  =3", ""])
def test_malformed_override(item: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"--set expects KEY=VALUE such as train.epochs=1; got {item!r}")
    ):
        apply_overrides(example(), [item])


@pytest.mark.parametrize(
    ("item", "part"),
    [
        ("output_dir.x=1", "output_dir"),
        ("train.epochs.min=1", "epochs"),
        ("heads.level.labels.x=1", "labels"),
    ],
)
def test_override_into_a_non_section(item: str, part: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"--set {item}: {part!r} is not a section")):
        apply_overrides(example(), [item])


def test_load_config_applies_overrides_before_validation(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", EXAMPLE)
    config = load_config(path, ["train.epochs=1", "heads.level.weight=2.5"])
    assert config.train.epochs == 1 and config.heads["level"].weight == 2.5
    with pytest.raises(
        ConfigError, match=key_error(str(path), "train.epochs", "Input should be greater than 0")
    ):
        load_config(path, ["train.epochs=0"])


# ----------------------------------------------------------------------------- paths


def test_labels_file_is_read_relative_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "configs"
    write(config_dir / "levels.txt", "junior\n\n  mid  \nsenior\n")
    raw = example()
    raw["heads"]["level"] = {"kind": "multiclass", "labels_file": "levels.txt"}
    path = write(config_dir / "job.yaml", yaml.safe_dump(raw))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    level = load_config(path).heads["level"]
    assert level.labels == ["junior", "mid", "senior"]
    assert level.labels_file is None
    assert level.num_outputs == 3


def test_absolute_labels_file(tmp_path: Path) -> None:
    labels = write(tmp_path / "labels" / "topics.txt", "a\nb\n")
    spec = HeadSpec(name="topics", kind="multilabel", labels_file=str(labels))
    assert spec.with_labels_resolved(tmp_path / "somewhere").labels == ["a", "b"]
    assert spec.with_labels_resolved().labels == ["a", "b"]


def test_data_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    write(project / "data" / "train.jsonl", "{}\n")
    write(project / "data" / "dev.jsonl", "{}\n")
    path = write(project / "config.yaml", EXAMPLE + "\n")
    cwd = tmp_path / "cwd"
    write(cwd / "data" / "dev.jsonl", "{}\n")  # found relative to the cwd: kept as written
    monkeypatch.chdir(cwd)
    config = load_config(
        path, ["data.test=data/test.jsonl", f"data.validation={project / 'data' / 'dev.jsonl'}"]
    )
    assert config.data.train == str(project / "data" / "train.jsonl")
    assert config.data.validation == str(project / "data" / "dev.jsonl")  # absolute: unchanged
    assert config.data.test == "data/test.jsonl"  # exists nowhere: unchanged

    config = load_config(path)
    assert config.data.validation == "data/dev.jsonl"  # exists relative to the cwd


# ----------------------------------------------------------------------------- dump_config


def test_dump_config_round_trips_the_example() -> None:
    config = build_config(example())
    text = dump_config(config)
    assert build_config(yaml.safe_load(text)) == config
    assert "name:" not in text  # heads are keyed by name, not repeating it


def test_dump_config_round_trips_every_option(tmp_path: Path) -> None:
    raw = {
        "model": {"encoder": str(tmp_path / "enc"), "pooling": "cls", "max_length": 64},
        "data": {"train": "t.csv", "text": ["title", "body"], "text_separator": " | "},
        "heads": {
            "topics": {
                "kind": "multilabel",
                "labels": ["a", "b", "ü"],
                "threshold": {"a": 0.3},
                "hidden_sizes": [16],
            },
            "level": {
                "kind": "multiclass",
                "labels": ["x", "y"],
                "class_weights": [1.0, 3.0],
                "label_smoothing": 0.1,
            },
            "salary": {"kind": "regression", "loss": "huber", "huber_delta": 2.0, "column": "pay"},
        },
        "train": {
            "epochs": 0.5,
            "freeze": 2,
            "max_time": "1.5h",
            "metric": "level.macro_f1",
            "max_steps": 100,
        },
        "output_dir": "out",
    }
    config = build_config(raw)
    again = build_config(yaml.safe_load(dump_config(config)))
    assert again == config
    assert again.heads["topics"].threshold == {"a": 0.3}
    assert again.train.freeze == 2


# ----------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("45m", 2700.0),
        ("1.5h", 5400.0),
        (" 2 m ", 120.0),
        ("0.5s", 0.5),
        (30, 30.0),
    ],
)
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "10d", "", "-5m", "1.5.2h", "m", "1h30m"])
def test_parse_duration_rejects_bad_text(text: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"expected a duration such as '90s', '45m' or '1.5h'; got {text!r}")
    ):
        parse_duration(text)


def test_max_time_seconds() -> None:
    assert build_config(edited("train.max_time", "2h")).train.max_time_seconds == 7200


# ----------------------------------------------------------------------------- HeadSpec


def test_thresholds_from_one_float() -> None:
    spec = HeadSpec(name="t", kind="multilabel", labels=["a", "b", "c"], threshold=0.3)
    assert spec.thresholds() == [0.3, 0.3, 0.3]


def test_thresholds_from_a_dict_default_to_half() -> None:
    spec = HeadSpec(name="t", kind="multilabel", labels=["a", "b", "c"], threshold={"c": 0.9, "a": 0.2})
    assert spec.thresholds() == [0.2, 0.5, 0.9]


def test_thresholds_without_labels_is_empty() -> None:
    assert HeadSpec(name="t", kind="multilabel", threshold=0.7).thresholds() == []


def test_num_outputs() -> None:
    assert HeadSpec(name="s", kind="regression").num_outputs == 1
    assert HeadSpec(name="t", kind="multilabel", labels=["a", "b", "c"]).num_outputs == 3
    with pytest.raises(ValueError, match="head 't' has no labels yet"):
        _ = HeadSpec(name="t", kind="multilabel").num_outputs


def test_head_spec_rejects_unknown_keys_and_empty_labels() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        HeadSpec(name="t", kind="multilabel", lables=["a"])  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="labels must not be empty"):
        HeadSpec(name="t", kind="multilabel", labels=[])
    with pytest.raises(ValueError, match="String should have at least 1 character"):
        HeadSpec(name="", kind="regression")


def test_head_spec_validates_assignment() -> None:
    spec = HeadSpec(name="t", kind="multilabel")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        spec.weight = -1.0


def test_build_config_does_not_change_its_input() -> None:
    raw = example()
    before = copy.deepcopy(raw)
    build_config(raw)
    assert raw == before


# ----------------------------------------------------------------------------- regressions


@pytest.mark.parametrize(("labels", "expected"), [([1, 2, 3], ["1", "2", "3"]), ([2.5, "x"], ["2.5", "x"])])
def test_numeric_labels_in_config_become_strings(labels: list[Any], expected: list[str]) -> None:
    config = build_config({"heads": {"stars": {"kind": "multiclass", "labels": labels}}})
    assert config.heads["stars"].labels == expected


def test_numeric_labels_are_still_unique() -> None:
    with pytest.raises(ConfigError, match=re.escape("heads.stars.labels: labels must be unique; ['1']")):
        build_config({"heads": {"stars": {"kind": "multiclass", "labels": [1, "1", 2]}}})


@pytest.mark.parametrize(
    ("lines", "options", "message"),
    [
        ("a\na\nb\n", {}, "labels must be unique; ['a'] appear more than once"),
        ("only\n", {}, "a multiclass head needs at least 2 labels"),
        ("\n  \n", {}, "labels must not be empty"),
        ("a\nb\n", {"class_weights": [1.0, 2.0, 3.0]}, "class_weights has 3 values for 2 labels"),
    ],
    ids=["duplicates", "one-label", "empty-file", "class-weights"],
)
def test_labels_file_contents_are_validated(
    tmp_path: Path, lines: str, options: dict[str, Any], message: str
) -> None:
    labels = write(tmp_path / "levels.txt", lines)
    raw = {"heads": {"level": {"kind": "multiclass", "labels_file": "levels.txt", **options}}}
    path = write(tmp_path / "config.yaml", yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=re.escape(f"heads.level.labels_file: {str(labels)!r}: {message}")):
        load_config(path)


def test_override_on_a_non_mapping_config_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections to apply --set to; got list"):
        load_config(path, ["train.epochs=1"])
    with pytest.raises(ConfigError, match=re.escape(f"{path}: expected a mapping of sections; got list")):
        load_config(path)


# ----------------------------------------------------------------------------- inf and NaN


def _float_fields() -> list[tuple[str, str]]:
    """(section, field) of every config field that takes a float, HeadSpec's included."""
    from textheads.config import DataSection, ModelSection, TrainSection

    fields = []
    for section, model in (("model", ModelSection), ("data", DataSection), ("train", TrainSection), ("heads.level", HeadSpec)):
        for name, info in model.model_fields.items():
            if "float" in str(info.annotation):
                fields.append((section, name))
    return fields


def test_every_float_field_is_found() -> None:
    found = {f"{section}.{name}" for section, name in _float_fields()}
    assert {"train.epochs", "train.max_grad_norm", "data.validation_split", "heads.level.threshold", "heads.level.class_weights"} <= found


@pytest.mark.parametrize(("section", "field"), _float_fields())
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_every_float_field_refuses_inf_and_nan(section: str, field: str, value: float) -> None:
    raw = example()
    spec = HeadSpec.model_fields.get(field)
    list_field = spec is not None and "list" in str(spec.annotation) and field != "labels"
    raw_value: Any = [1.0, value, 1.0] if list_field else value
    node = raw
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[field] = raw_value
    with pytest.raises(ConfigError, match=re.escape(f"cfg.yaml: {section}.{field}")):
        build_config(raw, source="cfg.yaml")


def test_yaml_inf_and_nan_are_refused_from_a_file_and_from_set(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", EXAMPLE.replace("epochs: 3", "epochs: .inf"))
    with pytest.raises(ConfigError, match=key_error(str(path), "train.epochs", "Input should be a finite number; got inf")):
        load_config(path)
    path = write(tmp_path / "config.yaml", EXAMPLE)
    with pytest.raises(ConfigError, match=key_error(str(path), "heads.topics.threshold", "threshold of label 'a' must be between 0 and 1; got nan")):
        load_config(path, ["heads.topics.threshold={a: .nan}"])


def test_threshold_naming_a_label_the_head_does_not_have() -> None:
    with pytest.raises(ConfigError, match=key_error("cfg.yaml", "heads.topics", re.escape("threshold names ['sprots'], not among the head's labels ['news', 'sports']"))):
        build_config(edited("heads.topics", {"kind": "multilabel", "labels": ["news", "sports"], "threshold": {"sprots": 0.3}}), source="cfg.yaml")


# ----------------------------------------------------------------------------- HeadSpec.with_thresholds


def test_with_thresholds_keeps_the_other_labels_thresholds() -> None:
    spec = HeadSpec(name="t", kind="multilabel", labels=["a", "b", "c"], threshold={"a": 0.2, "b": 0.7, "c": 0.4})
    assert spec.with_thresholds({"b": 0.6}).thresholds() == [0.2, 0.6, 0.4]
    assert HeadSpec(name="t", kind="multilabel", labels=["a", "b"], threshold=0.3).with_thresholds({"b": 0.6}).thresholds() == [0.3, 0.6]
    assert spec.with_thresholds(0.35).thresholds() == [0.35, 0.35, 0.35]
    assert spec.thresholds() == [0.2, 0.7, 0.4]  # a copy


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"d": 0.5, "a": 0.1}, "head 't' has no label(s) ['d']; its labels are ['a', 'b', 'c']"),
        ({"a": 1.5}, "head 't': threshold of label 'a' must be between 0 and 1; got 1.5"),
        ({"a": float("nan")}, "head 't': threshold of label 'a' must be between 0 and 1; got nan"),
        (-1, "head 't': threshold must be between 0 and 1; got -1"),
    ],
)
def test_with_thresholds_names_an_unknown_label_or_a_value_outside_0_1(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        HeadSpec(name="t", kind="multilabel", labels=["a", "b", "c"]).with_thresholds(value)


def test_with_thresholds_on_a_head_that_takes_none() -> None:
    with pytest.raises(ConfigError, match=re.escape("head 's': threshold applies to multilabel heads only")):
        HeadSpec(name="s", kind="regression").with_thresholds(0.3)


# ----------------------------------------------------------------------------- encodings


def test_config_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(EXAMPLE.encode() + "# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: line {EXAMPLE.count(chr(10)) + 1}: byte 0xe9 at character 6 is not UTF-8; save the config as UTF-8")):
        load_config(path)


def test_labels_file_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    labels = tmp_path / "levels.txt"
    labels.write_bytes("junior\nm\xe9dium\n".encode("latin-1"))
    path = write(tmp_path / "config.yaml", yaml.safe_dump({"heads": {"level": {"kind": "multiclass", "labels_file": "levels.txt"}}}))
    with pytest.raises(ConfigError, match=re.escape(f"heads.level.labels_file: {str(labels)!r}: line 2: byte 0xe9 at character 2 is not UTF-8")):
        load_config(path)


def test_labels_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "levels.txt").write_bytes(b"\xef\xbb\xbfjunior\nsenior\n")
    path = write(tmp_path / "config.yaml", yaml.safe_dump({"heads": {"level": {"kind": "multiclass", "labels_file": "levels.txt"}}}))
    assert load_config(path).heads["level"].labels == ["junior", "senior"]


@pytest.mark.parametrize("name", ["text", "truncated"])
def test_a_head_may_not_take_the_name_of_a_record_field(name: str) -> None:
    with pytest.raises(ConfigError, match=f"heads.{name}.name: a head may not be named '{name}'"):
        build_config({"heads": {name: {"kind": "regression"}}}, source="cfg.yaml")
