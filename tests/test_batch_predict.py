"""Batch prediction on Spark (`local[2]`) and Ray (a local instance): every input column
kept, one column per head, the values of `TextClassifier.predict_proba` and `predict`."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import make_rows
from textheads import TextClassifier
from textheads.errors import ConfigError, MissingExtraError
from textheads.inference.columns import head_type

# Labels that are no valid Spark or Python identifiers: dots, spaces, a backtick, non-ASCII.
RENAMED = {"code": "code.py", "cook": "cook & bake", "health": "health`s ü"}
LEVELS = {"beginner": "level 1", "mid": "level.2", "expert": "Expert!"}


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rows = make_rows(n, seed=seed, missing=False)
    for row in rows:
        row["topics"] = [RENAMED[t] for t in row["topics"]]
        row["level"] = LEVELS[row["level"]]
    return rows


@pytest.fixture(scope="module")
def model_dir(tiny_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved three-head model with per-label thresholds of its own."""
    clf = TextClassifier(
        {"topics": {"kind": "multilabel"}, "level": {"kind": "multiclass"}, "score": {"kind": "regression"}},
        encoder=str(tiny_encoder_dir),
        max_length=32,
        train={"epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "seed": 3},
    )
    clf.fit(_rows(64, seed=1), _rows(24, seed=2), show_progress=False, echo=lambda _: None)
    clf.set_thresholds("topics", {"code.py": 0.3, "cook & bake": 0.6})
    path = tmp_path_factory.mktemp("batch") / "model"
    clf.save(path)
    return path


TEXTS = [row["text"] for row in make_rows(40, seed=5)] + ["python " * 60, "中文 学习", "a"]
WITH_BLANKS = [*TEXTS[:20], None, *TEXTS[20:], "  "]


def _expected(model_dir: Path, texts: list[str]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    clf = TextClassifier.load(model_dir)
    return clf.predict_proba(texts), clf.predict(texts)


def _check_rows(rows: list[dict[str, Any]], model_dir: Path, prefix: str = "") -> None:
    """`rows` (dicts with id, text, extra and the head columns, of `WITH_BLANKS`) hold the
    library's predictions, and nulls for the blank texts."""
    assert [row["id"] for row in rows] == list(range(len(WITH_BLANKS)))
    specs = TextClassifier.load(model_dir).heads_
    assert all(row["extra"] == f"x{row['id']}" and row["text"] == WITH_BLANKS[row["id"]] for row in rows)
    blank = [row for row in rows if row["text"] in (None, "  ")]
    assert len(blank) == 2 and all(row[prefix + name] is None for row in blank for name in specs)
    rows = [row for row in rows if row not in blank]
    proba, decisions = _expected(model_dir, [row["text"] for row in rows])
    for i, row in enumerate(rows):
        for name, spec in specs.items():
            got = row[prefix + name]
            if spec.kind == "regression":
                assert got == pytest.approx(float(proba[name][i]), rel=1e-5)
                continue
            probabilities = [got["probabilities"][label] for label in spec.labels]
            np.testing.assert_allclose(probabilities, proba[name][i], rtol=1e-5, atol=1e-6)
            assert got["labels" if spec.kind == "multilabel" else "label"] == decisions[i][name]


# -- Spark ----------------------------------------------------------------------


def _descendants() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One `local[2]` session for the module; its JVM and Python workers end with it."""
    pytest.importorskip("pyspark", reason="needs the spark extra: pip install 'textheads[spark]'")
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs Java (none on PATH, no JAVA_HOME)")
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    before = _descendants()
    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import textheads from this environment
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")  # several batches per partition
        .getOrCreate()
    )
    yield session
    gateway = SparkContext._gateway
    session.stop()
    if gateway is not None:  # the JVM would otherwise live until this Python process ends
        gateway.shutdown()
        gateway.proc.stdin.close()  # the JVM exits when its driver's pipe closes
        gateway.proc.wait(timeout=60)
        SparkContext._gateway = SparkContext._jvm = None
    if previous is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = previous
    assert _descendants() <= before, "Spark left processes behind"


def _frame(spark: Any, texts: list[str | None], partitions: int = 2) -> Any:
    rows = [(i, text, f"x{i}") for i, text in enumerate(texts)]
    return spark.createDataFrame(rows, "id long, text string, extra string").repartition(partitions, "id").sortWithinPartitions("id")


def test_spark_adds_the_library_predictions_and_keeps_every_row_and_column(spark: Any, model_dir: Path) -> None:
    from textheads.spark import predict, spark_type

    scored = predict(_frame(spark, WITH_BLANKS), model_dir, batch_size=8, threads=1, on_empty="null")
    specs = TextClassifier.load(model_dir).heads_
    assert scored.columns == ["id", "text", "extra", *specs]
    for name, spec in specs.items():
        assert scored.schema[name].dataType == spark_type(head_type(spec))
    rows = [row.asDict(recursive=True) for row in scored.orderBy("id").collect()]
    _check_rows(rows, model_dir)
    # A label that is no identifier is still a field to select.
    picked = scored.select("id", scored["topics"].getField("probabilities").getField("cook & bake").alias("p")).orderBy("id").collect()
    assert [row["p"] for row in picked] == [row["topics"] and row["topics"]["probabilities"]["cook & bake"] for row in rows]


def test_spark_runs_the_model_once_per_batch_whatever_the_number_of_heads(spark: Any, model_dir: Path) -> None:
    from textheads.spark import predict

    plan = predict(_frame(spark, TEXTS[:4]), model_dir)._jdf.queryExecution().executedPlan().toString()
    assert plan.count("ArrowEvalPython") == 1 and plan.count("predict_heads(") == 1


def test_spark_refuses_a_missing_text_column_a_clash_and_a_bad_option_before_any_job(spark: Any, model_dir: Path) -> None:
    from textheads.spark import predict

    frame = spark.createDataFrame([(1, "python", "code.py")], "id long, body string, Topics string")
    with pytest.raises(ConfigError, match=r"no text column 'text': the columns are \['id', 'body', 'Topics'\]"):
        predict(frame, model_dir)
    with pytest.raises(ConfigError, match=r"\['topics'\] would replace input column.*prefix="):
        predict(frame, model_dir, text_column="body")
    with pytest.raises(ConfigError, match=r"on_empty must be one of \['error', 'null'\]; got 'skip'"):
        predict(frame, model_dir, text_column="body", prefix="p_", on_empty="skip")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="the text column 'id' holds bigint; expected string"):
        predict(frame, model_dir, text_column="id", prefix="p_")
    scored = predict(frame, model_dir, text_column="body", prefix="predicted_")
    assert scored.columns == ["id", "body", "Topics", "predicted_topics", "predicted_level", "predicted_score"]


def test_spark_runs_an_onnx_export(spark: Any, model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from textheads.export import export_onnx
    from textheads.spark import predict

    export = export_onnx(model_dir, tmp_path / "onnx", echo=lambda _: None)
    rows = [row.asDict(recursive=True) for row in predict(_frame(spark, TEXTS[:12]), export).orderBy("id").collect()]
    proba = TextClassifier.load(export).predict_proba(TEXTS[:12])
    np.testing.assert_allclose([row["score"] for row in rows], proba["score"], rtol=1e-5)


# Last of the Spark tests: a failed task ends its Python worker, and the next job starts new ones.
def test_spark_null_or_blank_texts_fail_naming_the_column(spark: Any, model_dir: Path) -> None:
    from pyspark.errors import PythonException

    from textheads.spark import predict

    texts = ["python code", None, "  ", "oven pasta"]
    with pytest.raises(PythonException, match=r"DataError: column 'text': 2 of \d+ texts in a batch are null or blank"):
        predict(_frame(spark, texts, partitions=1), model_dir).collect()


def test_a_missing_extra_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    from textheads import ray as textheads_ray
    from textheads import spark as textheads_spark

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(MissingExtraError, match=r"textheads\[spark\]"):
        textheads_spark.predict(None, model_dir)  # type: ignore[arg-type]
    with pytest.raises(MissingExtraError, match=r"textheads\[ray\]"):
        textheads_ray.predict(None, model_dir)  # type: ignore[arg-type]


# -- Ray ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_data() -> Iterator[Any]:
    """One local Ray instance for the module (2 CPUs, no dashboard), rows kept in order."""
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'textheads[ray]'")
    pytest.importorskip("ray.data", reason="needs the ray extra: pip install 'textheads[ray]'")
    before = _descendants()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    yield ray.data
    ray.shutdown()
    assert _descendants() <= before, "Ray left processes behind"


def _dataset(ray_data: Any, texts: list[str | None]) -> Any:
    return ray_data.from_items([{"id": i, "text": text, "extra": f"x{i}"} for i, text in enumerate(texts)], override_num_blocks=3)


def test_ray_adds_the_library_predictions_and_keeps_every_row_and_column(ray_data: Any, model_dir: Path) -> None:
    from textheads.ray import predict

    scored = predict(_dataset(ray_data, WITH_BLANKS), model_dir, rows_per_call=16, concurrency=2, batch_size=8, threads=1, on_empty="null", prefix="p_")
    rows = scored.take_all()
    specs = TextClassifier.load(model_dir).heads_
    assert list(rows[0]) == ["id", "text", "extra", *[f"p_{name}" for name in specs]]
    _check_rows(rows, model_dir, prefix="p_")


def test_ray_refuses_a_missing_text_column_naming_the_columns(ray_data: Any, model_dir: Path) -> None:
    from textheads.ray import predict

    with pytest.raises(ConfigError, match=r"no text column 'body': the columns are \['id', 'text', 'extra'\]"):
        predict(_dataset(ray_data, TEXTS[:2]), model_dir, text_column="body").take_all()


def test_ray_null_or_blank_texts_fail_naming_the_column(ray_data: Any, model_dir: Path) -> None:
    from ray.exceptions import UserCodeException

    from textheads.ray import predict

    texts = ["python code", None, "  ", "oven pasta"]
    # Ray Data reports an actor's error as its own, with the actor's traceback.
    with pytest.raises(UserCodeException, match=r"DataError: column 'text': 2 of 4 texts in a batch are null or blank"):
        predict(_dataset(ray_data, texts), model_dir, rows_per_call=4).take_all()


def test_a_model_path_missing_on_a_worker_is_an_error_saying_where_it_must_be(tmp_path: Path) -> None:
    from textheads.errors import ModelLoadError
    from textheads.inference.columns import load_cached

    with pytest.raises(ModelLoadError, match=r"cannot read the model .*missing on host .*must be readable on every worker"):
        load_cached(tmp_path / "missing")
