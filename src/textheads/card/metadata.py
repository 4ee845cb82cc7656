"""The model card's YAML front matter, built with `huggingface_hub`'s `ModelCardData`, so the
Hub reads the library, task, tags, base model and metrics (`model-index`) from it."""

from __future__ import annotations

from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from textheads.card.facts import CardFacts
from textheads.data.summary import source_name

HEADLINE: dict[str, tuple[tuple[str, str, str | None, str], ...]] = {
    # kind: (key in the metrics, Hub metric type, its config, pretty name)
    "multilabel": (("micro_f1", "f1", "micro", "micro-F1"), ("macro_f1", "f1", "macro", "macro-F1"), ("subset_accuracy", "accuracy", None, "subset accuracy")),
    "multiclass": (("accuracy", "accuracy", None, "accuracy"), ("macro_f1", "f1", "macro", "macro-F1")),
    "regression": (("mae", "mae", None, "MAE"), ("rmse", "rmse", None, "RMSE"), ("r2", "r_squared", None, "R²")),
}
"""The figures each head kind reports in `model-index` (every figure is in the card's tables)."""
TASK_NAMES = {"multilabel": "multi-label classification", "multiclass": "multi-class classification", "regression": "regression"}


def card_data(facts: CardFacts) -> ModelCardData:
    """The front matter of the card for `facts`."""
    kinds = {spec.kind for spec in facts.config.specs.values()}
    tags = ["textheads", "text-classification"]
    tags += [tag for kind, tag in (("multilabel", "multi-label-classification"), ("multiclass", "multi-class-classification"), ("regression", "regression")) if kind in kinds]
    if len(facts.config.specs) > 1:
        tags.append("multi-task")
    if facts.export is not None:
        tags.append("onnx")
    results = eval_results(facts)
    return ModelCardData(
        library_name="textheads",
        pipeline_tag="text-classification",
        tags=tags,
        base_model=facts.base_model,
        language=facts.language,
        model_name=facts.name if results else None,
        eval_results=results or None,
    )


def eval_results(facts: CardFacts) -> list[EvalResult]:
    """The headline figures of every head on the validation (and test) data, one result
    group per head and split (the head is the dataset's configuration)."""
    summary = facts.training_data or {}
    splits = (
        ("validation", facts.validation, source_name(summary.get("validation", {}).get("source", "")) if summary.get("validation") else "validation data"),
        ("test", facts.test, facts.test_source or "test data"),
    )
    results = []
    for split, metrics, source in splits:
        for head, spec in facts.config.specs.items():
            values: dict[str, Any] = (metrics or {}).get(head) or {}
            for key, metric_type, config, pretty in HEADLINE[spec.kind]:
                if values.get(key) is None:
                    continue
                results.append(
                    EvalResult(
                        task_type="text-classification",
                        task_name=f"{head}: {TASK_NAMES[spec.kind]}",
                        dataset_type=source,
                        dataset_name=f"{source} ({split})",
                        dataset_config=head,
                        dataset_split=split,
                        metric_type=metric_type,
                        metric_config=config,
                        metric_name=f"{head} {pretty} ({split})",
                        metric_value=float(values[key]),
                    )
                )
    return results
