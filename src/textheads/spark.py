"""Batch prediction on Apache Spark: `predict(df, model)` adds one column per head.

Needs the `spark` extra (`pip install 'textheads[spark]'`). The model is run by a pandas
UDF on the executors: each executor's Python process loads it once and keeps it for
later tasks (Spark reuses Python workers by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from textheads.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

    from textheads.inference.columns import OnEmpty

_OUTPUT = "__textheads_predictions"


def predict(
    df: DataFrame,
    model: str | Path,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    threads: int | None = None,
    on_empty: OnEmpty = "error",
    prefix: str = "",
) -> DataFrame:
    """`df` with every column kept and one more column per head, named `prefix` + head name
    (types: see `textheads.inference.columns`): multilabel and multiclass heads give a struct
    of per-label probabilities and the decision (the labels over their thresholds, or the
    class), regression heads a double. Values are those of `TextClassifier.predict_proba`
    and `predict`.

    `model` is a model directory or an ONNX export; it must be readable at the same path on
    every executor (a shared file system, or copied to each node). It is loaded once on the
    driver to check it and learn its heads, then once per executor Python process. Texts
    are predicted `batch_size` at a time, sorted by length inside each Arrow batch
    (`spark.sql.execution.arrow.maxRecordsPerBatch` rows). `threads` caps the model's threads (PyTorch's or ONNX Runtime's)
    in each executor process (cores per executor / concurrent tasks is a good start).

    A null or blank text fails the job with a `DataError` naming the column (in Spark's
    `PythonException`), unless `on_empty="null"`, which gives it null predictions.

    Example:
        >>> scored = predict(spark.read.parquet("posts.parquet"), "/models/advice")  # doctest: +SKIP
        >>> scored.select("id", "topics.labels", "level.label").show()  # doctest: +SKIP
    """
    try:
        from pyspark.sql import functions as F
    except ImportError:
        raise MissingExtraError("pyspark", "spark") from None
    try:
        import pandas  # noqa: F401 - pandas UDFs need it on the driver too
    except ImportError:
        raise MissingExtraError("pandas", "spark") from None
    from textheads.classifier import TextClassifier
    from textheads.inference.columns import check_arguments, output_schema

    path = str(Path(model).resolve())
    specs = TextClassifier.load(path).heads_
    check_arguments(text_column=text_column, columns=df.columns, specs=specs, prefix=prefix, on_empty=on_empty)
    text_type = df.schema[text_column].dataType.simpleString()
    if text_type != "string":
        raise ConfigError(f"the text column {text_column!r} holds {text_type}; expected string")
    schema = output_schema(specs)
    udf = F.pandas_udf(_udf_body(path, text_column, batch_size, threads, on_empty), returnType=spark_type(pa.struct(list(schema))))
    heads = [F.col(_OUTPUT).getField(name).alias(prefix + name) for name in specs]
    return df.withColumn(_OUTPUT, udf(F.col(_quoted(text_column)))).select("*", *heads).drop(_OUTPUT)


def _quoted(column: str) -> str:
    """A column name as Spark SQL reads it literally (dots and backticks included)."""
    return "`" + column.replace("`", "``") + "`"


def _udf_body(path: str, column: str, batch_size: int, threads: int | None, on_empty: OnEmpty) -> Any:
    """The function the executors run: Arrow batches of texts → a frame of head structs."""
    import pandas as pd

    def predict_heads(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        from textheads.inference.columns import load_cached, predict_columns

        clf = load_cached(path, threads)  # loading caps the threads (PyTorch's, or ONNX Runtime's)
        for texts in batches:
            values = [text if isinstance(text, str) else None for text in texts.tolist()]  # pandas gives NaN or NA for null
            columns = predict_columns(clf, values, column=column, batch_size=batch_size, on_empty=on_empty)
            yield pa.table(columns).to_pandas()

    # Spark reads the UDF kind (iterator of Series → iterator of frames) from the type
    # hints, which `from __future__ import annotations` leaves as unresolvable strings.
    predict_heads.__annotations__ = {"batches": Iterator[pd.Series], "return": Iterator[pd.DataFrame]}
    return predict_heads


def spark_type(arrow: pa.DataType) -> DataType:
    """The Spark SQL type of the Arrow types `textheads.inference.columns` uses."""
    from pyspark.sql import types as T

    if pa.types.is_struct(arrow):
        return T.StructType([T.StructField(field.name, spark_type(field.type)) for field in arrow])
    if pa.types.is_list(arrow):
        return T.ArrayType(spark_type(arrow.value_type))
    simple = {pa.float32(): T.FloatType(), pa.float64(): T.DoubleType(), pa.string(): T.StringType()}
    return simple[arrow]
