"""The evaluation report: one HTML page of a model's metrics, curves and worst errors on
labelled data (`textheads evaluate MODEL DATA --report report.html`, or
`clf.evaluate(data, report="report.html")`).

The tables show the very metrics dict that `evaluate` returns (and `--json`
prints); the charts are drawn from the same outputs those metrics were computed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from textheads import __version__
from textheads.calibration import N_BINS, multiclass_reliability, multilabel_reliability
from textheads.data.dataset import LabelledData
from textheads.decisions import head_decisions
from textheads.reports import charts, regression, training, worst
from textheads.reports.page import ReportPage, Section
from textheads.specs import HeadSpec

_THRESHOLD_FREE = ("roc_auc_macro", "ece", "n_rows")
"""Multilabel metrics that do not depend on the thresholds (the same at 0.5)."""
_ECE_NOTE = (
    f"ECE (expected calibration error): predictions are put into {N_BINS} equal-width probability bins; "
    "ECE is the mean over bins, weighted by their share of predictions, of |observed frequency − mean probability|. "
    "Multilabel heads: every (text, label) probability is one binary prediction (observed: the label is true). "
    "Multiclass heads: each text's top-class probability (observed: the top class is right). 0 is perfect."
)


@dataclass(frozen=True)
class Evaluated:
    """What one evaluation saw and found: the heads, their outputs on every row of `data`
    (probabilities, or values in the target's units), and the metrics computed from them."""

    specs: dict[str, HeadSpec]
    outputs: dict[str, np.ndarray]
    data: LabelledData
    metrics: dict[str, dict[str, Any]]


def write_evaluation_report(path: Path, evaluated: Evaluated, *, model: str, data_name: str, model_dir: Path | None) -> None:
    """Write the report page atomically; training curves come from `model_dir/train_log.jsonl`."""
    evaluation_page(evaluated, model=model, data_name=data_name, model_dir=model_dir).write(path)


def evaluation_page(evaluated: Evaluated, *, model: str, data_name: str, model_dir: Path | None, when: datetime | None = None) -> ReportPage:
    """The report page: overview, summary, one section per head, training curves."""
    page = ReportPage("textheads evaluation report", subtitle=f"{model} on {data_name}")
    _overview(page.section("Overview", key="overview"), evaluated, model, data_name, when or datetime.now(timezone.utc))
    _summary(page.section("Summary", key="summary"), evaluated)
    for name, spec in evaluated.specs.items():
        _head(page.section(f"Head {name} ({spec.kind})", key=f"head-{name}"), spec, evaluated)
    _training(page.section("Training", key="training"), model_dir)
    return page


def _overview(section: Section, evaluated: Evaluated, model: str, data_name: str, when: datetime) -> None:
    section.table(["", "value"], [
        ["model", model], ["data", data_name], ["rows", len(evaluated.data)],
        ["date", when.strftime("%Y-%m-%d %H:%M %Z")], ["textheads", __version__],
    ])
    section.table(["head", "kind", "labels", "labelled rows"], [
        [name, spec.kind, ", ".join(spec.labels or []) or "—", int(evaluated.data.targets[name].mask.sum())]
        for name, spec in evaluated.specs.items()
    ], caption="Heads")


def _summary(section: Section, evaluated: Evaluated) -> None:
    for name, spec in evaluated.specs.items():
        metrics = evaluated.metrics[name]
        scalars = [key for key, value in metrics.items() if value is None or isinstance(value, (int, float))]
        if spec.kind != "multilabel":
            section.table(["metric", "value"], [[key, metrics[key]] for key in scalars], caption=f"{name} ({spec.kind})", digits=4)
            continue
        at_half = metrics.get("at_0.5", metrics)  # absent: every threshold is 0.5 already
        rows = [[key, metrics[key], metrics[key] if key in _THRESHOLD_FREE else at_half.get(key)] for key in scalars]
        section.table(["metric", "at the stored thresholds", "at 0.5"], rows, caption=f"{name} (multilabel)", digits=4)
    section.text(_ECE_NOTE, note=True)


def _head(section: Section, spec: HeadSpec, evaluated: Evaluated) -> None:
    target = evaluated.data.targets[spec.name]
    rows = target.mask
    if not rows.any():
        section.text("No row of the data has a label for this head: nothing to score or draw.", note=True)
        return
    indices = np.flatnonzero(rows)
    lines = [evaluated.data.lines[i] if evaluated.data.lines else i + 1 for i in indices]
    head_rows = worst.Rows(texts=[evaluated.data.texts[i] for i in indices], lines=lines)
    output = np.asarray(evaluated.outputs[spec.name])[rows]
    metrics = evaluated.metrics[spec.name]
    if spec.kind == "multilabel":
        tables = _multilabel(section, spec, target.values[rows].astype(np.int64), output, metrics, head_rows)
    elif spec.kind == "multiclass":
        tables = _multiclass(section, spec, target.values[rows].astype(np.int64), output, metrics, head_rows)
    else:
        tables = _regression(section, spec, target.values[rows].astype(float), output.astype(float), head_rows)
    section.heading("Worst errors")
    for table in tables:
        if table.rows:
            section.table(table.columns, table.rows, caption=table.title)
        else:
            section.text(f"{table.title}: none.", note=True)


def _multilabel(section: Section, spec: HeadSpec, y_true: np.ndarray, y_prob: np.ndarray, metrics: dict[str, Any], rows: worst.Rows) -> list[worst.Table]:
    labels, thresholds = spec.labels or [], spec.thresholds()
    per_label = sorted(metrics["per_label"].items(), key=lambda item: -item[1]["support"])
    section.table(
        ["label", "support", "precision", "recall", "F1", "ROC-AUC", "threshold"],
        [[label, m["support"], m["precision"], m["recall"], m["f1"], m.get("roc_auc"), m["threshold"]] for label, m in per_label],
        caption="Per label, at the stored thresholds (most frequent first)",
    )
    absent = [label for j, label in enumerate(labels) if not y_true[:, j].any()]
    if absent:
        section.text(f"No positive row in the data (no curve): {', '.join(absent)}.", note=True)
    if spec.top1_fallback:
        section.text("top1_fallback is on: the table counts each row's fallback label; the marked points on the curves do not.", note=True)
    section.text("Click a label in a legend to hide it, double-click to show it alone; hover reads the values.", note=True)
    section.chart(charts.precision_recall_curves(y_true, y_prob, labels, thresholds), name=f"{spec.name}.precision_recall", height=520)
    section.chart(charts.f1_against_threshold(y_true, y_prob, labels, thresholds), name=f"{spec.name}.f1_threshold", height=520)
    y_pred = head_decisions(spec, y_prob).astype(np.int64)
    section.chart(charts.cooccurrence(y_true, y_pred, labels), name=f"{spec.name}.cooccurrence")
    section.chart(charts.reliability_diagram(multilabel_reliability(y_true, y_prob), what="every (text, label) probability"), name=f"{spec.name}.reliability")
    return worst.multilabel_errors(rows, y_true, y_prob, y_pred, labels, thresholds)


def _multiclass(section: Section, spec: HeadSpec, y_true: np.ndarray, y_prob: np.ndarray, metrics: dict[str, Any], rows: worst.Rows) -> list[worst.Table]:
    labels = spec.labels or []
    per_class = sorted(metrics["per_label"].items(), key=lambda item: -item[1]["support"])
    section.table(
        ["class", "support", "precision", "recall", "F1"],
        [[label, m["support"], m["precision"], m["recall"], m["f1"]] for label, m in per_class],
        caption="Per class (most frequent first)",
    )
    matrix = metrics["confusion_matrix"]
    section.chart(charts.confusion(matrix["matrix"], matrix["labels"], normalise=False), name=f"{spec.name}.confusion")
    section.chart(charts.confusion(matrix["matrix"], matrix["labels"], normalise=True), name=f"{spec.name}.confusion_share")
    section.chart(charts.reliability_diagram(multiclass_reliability(y_true, y_prob), what="top-class probability"), name=f"{spec.name}.reliability")
    return worst.multiclass_errors(rows, y_true, y_prob, head_decisions(spec, y_prob), labels)


def _regression(section: Section, spec: HeadSpec, y_true: np.ndarray, y_pred: np.ndarray, rows: worst.Rows) -> list[worst.Table]:
    section.chart(regression.predicted_against_true(y_true, y_pred, rows.texts), name=f"{spec.name}.predicted_true")
    section.chart(regression.residuals(y_true, y_pred, rows.texts), name=f"{spec.name}.residuals")
    return worst.regression_errors(rows, y_true, y_pred)


def _training(section: Section, model_dir: Path | None) -> None:
    records = training.read_train_log(model_dir)
    if records is None:
        section.text(
            f"No {training.TRAIN_LOG} beside this model (an ONNX export, or a model saved by clf.save), "
            "so there are no training curves.", note=True,
        )
        return
    losses, validation = training.loss_curves(records), training.validation_curves(records)
    if losses is not None:
        section.chart(losses, name="training.loss")
    if validation is not None:
        section.chart(validation, name="training.validation")
    if losses is None and validation is None:
        section.text(f"{training.TRAIN_LOG} holds no loss or validation records yet.", note=True)
