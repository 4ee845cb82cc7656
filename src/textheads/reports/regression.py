"""The plotly figures of a regression head: predicted against true, and the residuals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from textheads.reports.charts import plot_text

_HOVER_CHARS = 120


def predicted_against_true(y_true: np.ndarray, y_pred: np.ndarray, texts: Sequence[str]) -> go.Figure:
    """One point per row (its text in the hover), with the line y = x of a perfect prediction."""
    low, high = _span(y_true, y_pred)
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=y_true, y=y_pred, mode="markers", name="rows", text=[plot_text(t, _HOVER_CHARS) for t in texts],
        marker={"color": "#4c78a8", "size": 6, "opacity": 0.6},
        hovertemplate="true %{x:.4g}, predicted %{y:.4g}<br>%{text}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="y = x", line={"dash": "dash", "color": "#57606a"}, hoverinfo="skip"))
    figure.update_layout(title="Predicted against true", xaxis_title="true", yaxis_title="predicted")
    return figure


def residuals(y_true: np.ndarray, y_pred: np.ndarray, texts: Sequence[str]) -> go.Figure:
    """Residuals (predicted − true) against the true value, and their histogram."""
    residual = y_pred - y_true
    figure = make_subplots(rows=1, cols=2, subplot_titles=("residual against true", "residuals"), column_widths=[0.6, 0.4])
    figure.add_trace(go.Scatter(
        x=y_true, y=residual, mode="markers", name="rows", text=[plot_text(t, _HOVER_CHARS) for t in texts],
        marker={"color": "#4c78a8", "size": 6, "opacity": 0.6},
        hovertemplate="true %{x:.4g}, residual %{y:.4g}<br>%{text}<extra></extra>",
    ), row=1, col=1)
    figure.add_hline(y=0, line={"dash": "dash", "color": "#57606a"}, row=1, col=1)
    figure.add_trace(go.Histogram(x=residual, name="residuals", marker={"color": "#72b7b2"}, nbinsx=30), row=1, col=2)
    figure.update_xaxes(title="true", row=1, col=1)
    figure.update_yaxes(title="predicted − true", row=1, col=1)
    figure.update_xaxes(title="predicted − true", row=1, col=2)
    figure.update_yaxes(title="rows", row=1, col=2)
    figure.update_layout(title="Residuals", showlegend=False)
    return figure


def _span(*values: np.ndarray) -> tuple[float, float]:
    joined = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values])
    return float(joined.min()), float(joined.max())
