"""The plotly figures of the evaluation report: curves of classification heads.

Every string that reaches a figure (label names, texts in hover) goes through
`plot_text`: plotly reads a small set of HTML tags in its strings (`<b>`,
`<br>`), so a label named `<b>x</b>` would otherwise be drawn bold instead of
shown as written. Hover templates name a trace by `%{fullData.name}`, never
by pasting the name in: a name holding `%{x}` must not read as a template.
Curves are thinned to at most `MAX_POINTS` points each, so a
head with many labels keeps the page small.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from sklearn.metrics import precision_recall_curve

from textheads.calibration import Reliability
from textheads.reports.page import plot_text

MAX_POINTS = 200
_PALETTE = qualitative.Dark24 + qualitative.Light24


def colour(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def thin(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """At most `limit` evenly spread indices of `n` points, always the first and the last."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def operating_point(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of one label at `threshold` (p >= threshold; 0 where undefined)."""
    chosen = y_prob >= np.asarray(threshold, dtype=y_prob.dtype)
    tp = float((chosen & (y_true == 1)).sum())
    precision = tp / chosen.sum() if chosen.any() else 0.0
    recall = tp / (y_true == 1).sum()
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def precision_recall_curves(y_true: np.ndarray, y_prob: np.ndarray, labels: Sequence[str], thresholds: Sequence[float]) -> go.Figure:
    """One precision–recall curve per label with positives (legend toggles a label), each with
    its stored threshold marked."""
    figure = go.Figure()
    for j, label in _labels_with_positives(y_true, labels):
        precision, recall, cuts = precision_recall_curve(y_true[:, j], y_prob[:, j])
        keep = thin(len(precision))
        at = np.append(cuts, np.nan)[keep]  # the curve's last point (recall 0) has no threshold
        name, group = plot_text(label), f"label{j}"
        figure.add_trace(go.Scatter(
            x=recall[keep], y=precision[keep], customdata=at, mode="lines", name=name, legendgroup=group,
            line={"color": colour(j), "width": 1.5},
            hovertemplate="%{fullData.name}<br>threshold %{customdata:.3f}<br>precision %{y:.3f}<br>recall %{x:.3f}<extra></extra>",
        ))
        p, r, _ = operating_point(y_true[:, j], y_prob[:, j], thresholds[j])
        figure.add_trace(_marker(r, p, thresholds[j], name, group, colour(j), f"precision {p:.3f}<br>recall {r:.3f}"))
    figure.update_layout(title="Precision–recall per label (◆ the stored threshold)", xaxis_title="recall", yaxis_title="precision")
    figure.update_xaxes(range=[0, 1.02])
    figure.update_yaxes(range=[0, 1.02])
    return figure


def f1_against_threshold(y_true: np.ndarray, y_prob: np.ndarray, labels: Sequence[str], thresholds: Sequence[float]) -> go.Figure:
    """F1 of each label at every threshold, with the stored threshold marked."""
    figure = go.Figure()
    for j, label in _labels_with_positives(y_true, labels):
        precision, recall, cuts = precision_recall_curve(y_true[:, j], y_prob[:, j])
        precision, recall = precision[:-1], recall[:-1]
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
        keep = thin(len(cuts))
        name, group = plot_text(label), f"label{j}"
        figure.add_trace(go.Scatter(
            x=cuts[keep], y=f1[keep], mode="lines", name=name, legendgroup=group, line={"color": colour(j), "width": 1.5},
            hovertemplate="%{fullData.name}<br>threshold %{x:.3f}<br>F1 %{y:.3f}<extra></extra>",
        ))
        _, _, best = operating_point(y_true[:, j], y_prob[:, j], thresholds[j])
        figure.add_trace(_marker(thresholds[j], best, thresholds[j], name, group, colour(j), f"F1 {best:.3f}"))
    figure.update_layout(title="F1 against the threshold per label (◆ the stored threshold)", xaxis_title="threshold", yaxis_title="F1")
    figure.update_xaxes(range=[0, 1])
    figure.update_yaxes(range=[0, 1.02])
    return figure


def _marker(x: float, y: float, threshold: float, name: str, group: str, color: str, what: str) -> go.Scatter:
    return go.Scatter(
        x=[x], y=[y], mode="markers", name=name, legendgroup=group, showlegend=False,
        marker={"symbol": "diamond", "size": 10, "color": color, "line": {"color": "#1f2328", "width": 1}},
        hovertemplate=f"%{{fullData.name}}: stored threshold {threshold:.3f}<br>{what}<extra></extra>",
    )


def _labels_with_positives(y_true: np.ndarray, labels: Sequence[str]) -> list[tuple[int, str]]:
    return [(j, label) for j, label in enumerate(labels) if y_true[:, j].any()]


def cooccurrence(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> go.Figure:
    """Rows holding both of two labels, true (left) and predicted (right). The diagonal (each
    label's own count, in the per-label table) is left out: a frequent label would set the
    colour scale and wash out every pair."""
    names = [plot_text(label, 40) for label in labels]
    pairs = []
    for matrix in (y_true, y_pred):
        counts = (matrix.T.astype(int) @ matrix.astype(int)).astype(float)
        np.fill_diagonal(counts, np.nan)
        pairs.append(counts)
    top = max(float(np.nanmax(counts, initial=0)) for counts in pairs) or 1.0
    figure = make_subplots(rows=1, cols=2, subplot_titles=("true labels", "predicted labels"), horizontal_spacing=0.12)
    for col, (counts, which) in enumerate(zip(pairs, ("true", "predicted")), start=1):
        figure.add_trace(go.Heatmap(
            z=counts, x=names, y=names, zmin=0, zmax=top, colorscale="Blues", showscale=col == 2,
            hovertemplate=f"{which}: %{{y}} and %{{x}} in %{{z}} rows<extra></extra>",
        ), row=1, col=col)
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(title="Label co-occurrence: rows with both labels (diagonal left out)", height=max(420, 200 + 16 * len(labels)))
    return figure


def confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, normalise: bool) -> go.Figure:
    """The confusion matrix as a heatmap (rows true, columns predicted): counts, or each row's share."""
    counts = np.asarray(matrix, dtype=float)
    names = [plot_text(label, 40) for label in labels]
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        z = np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0)
        text, title, hover = "%{z:.2f}", "Confusion matrix, each true class's row as shares", "true %{y}, predicted %{x}: %{z:.3f} of the row"
    else:
        z, text, title, hover = counts, "%{z:.0f}", "Confusion matrix (counts)", "true %{y}, predicted %{x}: %{z:.0f} rows"
    figure = go.Figure(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", texttemplate=text, hovertemplate=hover + "<extra></extra>"))
    figure.update_yaxes(autorange="reversed", title="true")
    figure.update_xaxes(title="predicted")
    figure.update_layout(title=title, height=max(420, 200 + 24 * len(labels)))
    return figure


def reliability_diagram(table: Reliability, *, what: str) -> go.Figure:
    """How often the event happened per probability bin, against the diagonal of perfect calibration."""
    centres = (table.edges[:-1] + table.edges[1:]) / 2
    used = table.counts > 0
    figure = go.Figure()
    figure.add_trace(go.Bar(
        x=centres[used], y=table.frequency[used], width=np.diff(table.edges)[used] * 0.9, name="observed frequency",
        customdata=np.stack([table.counts[used], table.mean_probability[used]], axis=1), marker={"color": "#4c78a8"},
        hovertemplate="bin %{x:.2f}: %{customdata[0]} predictions<br>mean probability %{customdata[1]:.3f}<br>observed %{y:.3f}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(
        x=centres[used], y=table.mean_probability[used], mode="markers", name="mean probability",
        marker={"color": "#e45756", "size": 9}, hoverinfo="skip",
    ))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line={"dash": "dash", "color": "#57606a"}, hoverinfo="skip"))
    figure.update_layout(title=f"Reliability ({what}): ECE = {table.ece:.4f}", xaxis_title="predicted probability (10 equal-width bins)", yaxis_title="observed frequency")
    figure.update_xaxes(range=[0, 1])
    figure.update_yaxes(range=[0, 1.02])
    return figure
