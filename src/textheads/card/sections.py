"""The model card's Markdown: heads and labels, thresholds, metrics, training data, the
training config, how to use it, and its limits, each generated from the folder's facts."""

from __future__ import annotations

from typing import Any

from textheads.card.facts import CardFacts
from textheads.data.summary import source_name
from textheads.model_config import max_length_of
from textheads.specs import HeadSpec

FEW_EXAMPLES = 10
"""Labels with fewer training examples than this are named under the limits."""
_HEADLINE_KEYS = ("micro_f1", "macro_f1", "weighted_f1", "subset_accuracy", "hamming_loss", "roc_auc_macro", "accuracy", "mae", "rmse", "r2", "n_rows")


def body(facts: CardFacts) -> str:
    """Everything below the front matter."""
    parts = [
        _intro(facts),
        _heads(facts),
        _thresholds(facts),
        _metrics(facts, "Validation metrics", facts.validation, _validation_note(facts)),
        _metrics(facts, "Test metrics", facts.test, f"Measured by `textheads train` on {facts.test_source or 'the test data'}, after training." + _changed_note(facts, facts.test)),
        _training_data(facts),
        _training_config(facts),
        _usage(facts),
        _limits(facts),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _intro(facts: CardFacts) -> str:
    config = facts.config
    encoder = f"[{facts.base_model}](https://huggingface.co/{facts.base_model})" if facts.base_model else f"a local encoder (`{config.encoder_name}`)"
    what = f"An ONNX export (`{facts.export.get('file', 'model.onnx')}`, {facts.export.get('quantize') or 'fp32'}) of a" if facts.export else "A"
    version = f" with textheads {config.textheads_version}" if config.textheads_version else ""
    return (
        f"# {facts.name}\n\n{what} textheads text classifier: "
        f"{len(config.specs)} head(s) on one shared encoder, {encoder}, trained{version}. "
        "This card was written by textheads from the files in this folder."
    )


def _heads(facts: CardFacts) -> str:
    rows = [
        f"| `{spec.name}` | {spec.kind} | {_labels(spec)} | {spec.loss} | {spec.weight:g} |"
        for spec in facts.config.specs.values()
    ]
    return "## Heads and labels\n\n| head | kind | labels (output order) | loss | weight |\n| --- | --- | --- | --- | --- |\n" + "\n".join(rows)


def _labels(spec: HeadSpec) -> str:
    if spec.kind == "regression":
        return "a number"
    return ", ".join(f"`{label}`" for label in spec.labels or [])


def _thresholds(facts: CardFacts) -> str:
    heads = [spec for spec in facts.config.specs.values() if spec.kind == "multilabel"]
    if not heads:
        return ""
    parts = ["## Thresholds\n\nA multi-label head predicts each label whose probability reaches its threshold."]
    for spec in heads:
        rows = "\n".join(f"| `{label}` | {value:.4g} |" for label, value in spec.thresholds_by_label().items())
        fallback = " With `top1_fallback`, a text always gets at least its most probable label." if spec.top1_fallback else ""
        parts.append(f"`{spec.name}`:{fallback}\n\n| label | threshold |\n| --- | --- |\n{rows}")
    return "\n\n".join(parts)


def _validation_note(facts: CardFacts) -> str:
    validation = (facts.training_data or {}).get("validation")
    where = f" ({source_name(validation['source'])}, {validation['rows']} rows)" if validation else ""
    note = (
        f"Measured on the validation data{where} that chose the best checkpoint; a multi-label head is scored "
        "at thresholds tuned on this same data, so these figures are optimistic: the test metrics (when given) are the fair ones."
    )
    return note + _changed_note(facts, facts.validation)


def _changed_note(facts: CardFacts, metrics: dict[str, Any] | None) -> str:
    changed = _changed_thresholds(facts, metrics)
    if not changed:
        return ""
    return (
        f" The thresholds of {', '.join(changed)} have been changed since (e.g. `set_thresholds`): these figures are for the "
        "thresholds in their per-label table, not the stored ones; `textheads evaluate` gives figures at the stored thresholds."
    )


def _changed_thresholds(facts: CardFacts, metrics: dict[str, Any] | None) -> list[str]:
    """Heads whose stored thresholds differ from those `metrics` were measured at."""
    changed = []
    for name, spec in facts.config.specs.items():
        per_label = ((metrics or {}).get(name) or {}).get("per_label") or {}
        measured = {label: values.get("threshold") for label, values in per_label.items() if isinstance(values, dict)}
        if spec.kind == "multilabel" and measured and any(measured.get(label) is not None and abs(measured[label] - value) > 1e-9 for label, value in spec.thresholds_by_label().items()):
            changed.append(f"`{name}`")
    return changed


def _metrics(facts: CardFacts, title: str, metrics: dict[str, Any] | None, note: str) -> str:
    if not metrics:
        return ""
    parts = [f"## {title}\n\n{note}"]
    for name, spec in facts.config.specs.items():
        values = metrics.get(name)
        if not isinstance(values, dict):
            continue
        headline = [(key, values[key]) for key in _HEADLINE_KEYS if isinstance(values.get(key), (int, float))]
        table = "| metric | value |\n| --- | --- |\n" + "\n".join(f"| {key} | {_number(value)} |" for key, value in headline)
        parts.append(f"### `{name}` ({spec.kind})\n\n{table}")
        at_half = values.get("at_0.5")
        if isinstance(at_half, dict):
            parts.append("At threshold 0.5 for every label: " + ", ".join(f"{key} {_number(value)}" for key, value in at_half.items()) + ".")
        per_label = values.get("per_label")
        if isinstance(per_label, dict) and per_label:
            parts.append(_per_label_table(per_label))
    return "\n\n".join(parts)


def _per_label_table(per_label: dict[str, Any]) -> str:
    columns = [key for key in ("precision", "recall", "f1", "support", "roc_auc", "threshold") if any(key in v for v in per_label.values() if isinstance(v, dict))]
    rows = "\n".join(
        f"| `{label}` | " + " | ".join(_number(values.get(key)) for key in columns) + " |"
        for label, values in per_label.items()
        if isinstance(values, dict)
    )
    return f"| label | {' | '.join(columns)} |\n| --- |{' --- |' * len(columns)}\n{rows}"


def _number(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _training_data(facts: CardFacts) -> str:
    summary = facts.training_data
    if not summary:
        return ""
    splits = [(split, summary[split]) for split in ("train", "validation") if summary.get(split)]
    rows = "\n".join(f"| {split} | {source_name(part['source'])} | {part['rows']} |" for split, part in splits)
    parts = [f"## Training data\n\n| split | source | rows |\n| --- | --- | --- |\n{rows}"]
    for name, spec in facts.config.specs.items():
        heads = [part["heads"].get(name, {}) for _, part in splits]
        if spec.kind == "regression":
            lines = [f"| {split} | {h.get('labelled', 0)} | {_number(h.get('mean'))} | {_number(h.get('std'))} | {_number(h.get('min'))} | {_number(h.get('max'))} |" for (split, _), h in zip(splits, heads, strict=True)]
            parts.append(f"`{name}` (regression):\n\n| split | labelled rows | mean | std | min | max |\n| --- | --- | --- | --- | --- | --- |\n" + "\n".join(lines))
            continue
        header = " | ".join(f"{split} rows" for split, _ in splits)
        lines = [f"| `{label}` | " + " | ".join(str(h.get("label_counts", {}).get(label, 0)) for h in heads) + " |" for label in spec.labels or []]
        labelled = "; ".join(f"{h.get('labelled', 0)} {split} rows labelled" for (split, _), h in zip(splits, heads, strict=True))
        parts.append(f"`{name}` ({spec.kind}; {labelled}):\n\n| label | {header} |\n| --- |{' --- |' * len(splits)}\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _training_config(facts: CardFacts) -> str:
    if not facts.training_config:
        return ""
    return f"## Training configuration\n\nAs `training_config.yaml` holds it:\n\n```yaml\n{facts.training_config.rstrip()}\n```"


def _usage(facts: CardFacts) -> str:
    first = next(iter(facts.config.specs))
    return (
        "## How to use\n\n"
        f"Install textheads{_version(facts)} (with its `onnx` extra for an ONNX export), then, with `MODEL` this folder "
        "or, once pushed, its Hugging Face Hub id (`org/name`; add `revision=` or `--revision` for a branch, tag or commit):\n\n"
        "```python\nfrom textheads import TextClassifier\n\n"
        'clf = TextClassifier.load("MODEL")\n'
        'clf.predict(["a text to classify"])        # per text: each head\'s labels, class or value\n'
        f'clf.predict_proba(["a text to classify"])  # per head: probabilities or values, e.g. ["{first}"]\n```\n\n'
        "From the command line (one JSON object per text):\n\n"
        '```bash\ntextheads predict MODEL "a text to classify"\n'
        "textheads predict MODEL --input texts.jsonl --output predictions.jsonl\n```"
    )


def _version(facts: CardFacts) -> str:
    return f" {facts.config.textheads_version} or later" if facts.config.textheads_version else ""


def _limits(facts: CardFacts) -> str:
    config = facts.config
    length = max_length_of(config)
    reading = {
        "truncate": f"reads the first {length} tokens of a text and ignores the rest",
        "head_tail": f"reads {length} tokens of a text: its beginning and its end, skipping the middle of a longer one",
        "windows": f"reads a longer text in windows of {length} tokens (overlapping by {config.window_stride}, at most {config.max_windows}; beyond them the rest is ignored) and combines them ({config.window_pooling})",
    }.get(config.long_text, f"reads {length} tokens of a text")
    items = [
        "Intended use: the tasks of its heads, on texts like the training data; it knows only the labels listed above.",
        f"Length: it {reading}.",
    ]
    few = _few_examples(facts)
    if few:
        items.append(f"Labels with fewer than {FEW_EXAMPLES} training examples, whose figures rest on little data: {', '.join(few)}.")
    if facts.language == "en":
        items.append("Language: the encoder was trained on English text; other languages are not supported.")
    elif facts.language is None:
        items.append("Language: not recorded; it is the language(s) of the training data and of the encoder.")
    if not facts.test:
        items.append("No test metrics were recorded: the validation figures above chose the model and are optimistic.")
    return "## Intended use and limits\n\n" + "\n".join(f"- {item}" for item in items)


def _few_examples(facts: CardFacts) -> list[str]:
    train = (facts.training_data or {}).get("train") or {}
    few = []
    for name, head in (train.get("heads") or {}).items():
        for label, count in (head.get("label_counts") or {}).items():
            if count < FEW_EXAMPLES:
                few.append(f"`{name}: {label}` ({count})")
    return few
