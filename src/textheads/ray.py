"""Batch prediction on Ray Data: `predict(dataset, model)` adds one column per head.

Needs the `ray` extra (`pip install 'textheads[ray]'`). The model is run by a pool of
actors (`map_batches` with a class): each actor loads it once.
"""

# This module is `textheads.ray`; `import ray` below is the absolute import of Ray itself.
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from textheads.errors import MissingExtraError

if TYPE_CHECKING:
    import ray.data

    from textheads.inference.columns import OnEmpty


class Predictor:
    """A Ray Data actor: loads the model once, then adds the head columns to each batch."""

    def __init__(self, model: str, text_column: str, batch_size: int, threads: int | None, on_empty: OnEmpty, prefix: str) -> None:
        from textheads.inference.columns import load_cached

        self.clf = load_cached(model, threads)  # loading caps the threads (PyTorch's, or ONNX Runtime's)
        self.text_column, self.batch_size, self.on_empty, self.prefix = text_column, batch_size, on_empty, prefix

    def __call__(self, batch: pa.Table) -> pa.Table:
        from textheads.inference.columns import check_arguments, predict_columns

        check_arguments(text_column=self.text_column, columns=batch.column_names, specs=self.clf.heads_, prefix=self.prefix, on_empty=self.on_empty)
        texts = batch.column(self.text_column).to_pylist()
        columns = predict_columns(self.clf, texts, column=self.text_column, batch_size=self.batch_size, on_empty=self.on_empty)
        for name, values in columns.items():
            batch = batch.append_column(self.prefix + name, values)
        return batch


def predict(
    dataset: ray.data.Dataset,
    model: str | Path,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    rows_per_call: int = 4096,
    concurrency: int = 1,
    num_cpus: float = 1,
    threads: int | None = None,
    on_empty: OnEmpty = "error",
    prefix: str = "",
) -> ray.data.Dataset:
    """`dataset` with every column kept and one more column per head, named `prefix` + head
    name (types: see `textheads.inference.columns`): multilabel and multiclass heads give a
    struct of per-label probabilities and the decision (the labels over their thresholds,
    or the class), regression heads a float64. Values are those of
    `TextClassifier.predict_proba` and `predict`.

    `model` is a model directory or an ONNX export; it must be readable at the same path on
    every node. It is loaded once here to check it, then once per actor: `concurrency`
    actors of `num_cpus` CPUs each, running `threads` model threads (PyTorch's or ONNX Runtime's). Each actor call gets
    `rows_per_call` rows, sorted by length and predicted `batch_size` at a time.

    Rows keep their columns (so an id column stays with its row); their order is Ray
    Data's, kept when `DataContext.get_current().execution_options.preserve_order` is set.
    A null or blank text fails with a `DataError` naming the column, unless
    `on_empty="null"`, which gives it null predictions.

    Example:
        >>> scored = predict(ray.data.read_parquet("posts.parquet"), "/models/advice", concurrency=4)  # doctest: +SKIP
        >>> scored.write_parquet("scored/")  # doctest: +SKIP
    """
    try:
        import ray.data  # noqa: F401 - checks the extra is there
    except ImportError:
        raise MissingExtraError("ray[data]", "ray") from None
    from textheads.classifier import TextClassifier
    from textheads.inference.columns import check_arguments

    path = str(Path(model).resolve())
    specs = TextClassifier.load(path).heads_
    schema = dataset.schema(fetch_if_missing=False)  # known without running the dataset, or None (then the actors check)
    check_arguments(text_column=text_column, columns=schema.names if schema is not None else None, specs=specs, prefix=prefix, on_empty=on_empty)
    return dataset.map_batches(
        Predictor,
        fn_constructor_kwargs={"model": path, "text_column": text_column, "batch_size": batch_size, "threads": threads, "on_empty": on_empty, "prefix": prefix},
        batch_format="pyarrow",
        batch_size=rows_per_call,
        concurrency=concurrency,
        num_cpus=num_cpus,
    )
