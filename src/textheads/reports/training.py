"""Training curves from a model directory's `train_log.jsonl` (see
`textheads.training.run_log`): the loss of each head per logged step, and each
validation metric per evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from textheads.reports.charts import colour, plot_text

TRAIN_LOG = "train_log.jsonl"


def read_train_log(model_dir: Path | None) -> list[dict[str, Any]] | None:
    """The log's records, or None when the model directory has none (an ONNX export, a
    model saved by `clf.save`). Lines that are not JSON objects (a run killed mid-write)
    are skipped."""
    path = Path(model_dir) / TRAIN_LOG if model_dir is not None else None
    if path is None or not path.is_file():
        return None
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def loss_curves(records: list[dict[str, Any]]) -> go.Figure | None:
    """`loss` and `loss.HEAD` of every training-steps record against the step (None without any)."""
    steps = [r for r in records if "event" not in r and _number(r.get("step"))]
    names = sorted({key for r in steps for key in r if key == "loss" or key.startswith("loss.")})
    return _lines(steps, names, title="Training loss (total and per head)", y_title="loss") if names else None


def validation_curves(records: list[dict[str, Any]]) -> go.Figure | None:
    """Each validation metric of every evaluation record against the step (None without any)."""
    rows = [_validation(r) for r in records if r.get("event") == "evaluation" and isinstance(r.get("validation"), dict) and _number(r.get("step"))]
    names = sorted({key for r in rows for key in r if key != "step"})
    if not names:
        return None
    figure = _lines(rows, names, title="Validation metrics per evaluation (click the legend to hide one)", y_title="value", markers=True)
    return figure


def _validation(record: dict[str, Any]) -> dict[str, Any]:
    """The record's validation figures, with the metric that picks the best model (`mean_macro_f1`
    is in no head's figures)."""
    values = {"step": record["step"], **record["validation"]}
    if isinstance(record.get("metric"), str):
        values.setdefault(record["metric"], record.get("value"))
    return values


def _lines(records: list[dict[str, Any]], names: list[str], *, title: str, y_title: str, markers: bool = False) -> go.Figure:
    figure = go.Figure()
    for index, name in enumerate(names):
        points = [(r["step"], r[name]) for r in records if _number(r.get(name))]
        figure.add_trace(go.Scatter(
            x=[step for step, _ in points], y=[value for _, value in points], name=plot_text(name),
            mode="lines+markers" if markers else "lines", line={"color": colour(index)},
            hovertemplate="%{fullData.name}<br>step %{x}: %{y:.4g}<extra></extra>",
        ))
    figure.update_layout(title=title, xaxis_title="step", yaxis_title=y_title)
    return figure


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
