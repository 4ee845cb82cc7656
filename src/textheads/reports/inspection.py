"""`textheads inspect --report`: a data inspection as one self-contained HTML page."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from textheads.inspection.figures import DataInspection, HeadInspection, Histogram, LengthInspection
from textheads.reports.page import ReportPage, Section, plot_text

SECTIONS = ("summary", "labels", "cooccurrence", "lengths", "rare-labels", "duplicates")
"""The page's sections (`data-section`), in order."""


def write_inspection_report(figures: DataInspection, path: Path, *, title: str = "Data inspection") -> None:
    """Write the page: rows and problems, a bar chart (or histogram) per head, co-occurrence
    heatmaps, the token-length histogram with `max_length` marked, rare labels, duplicates."""
    page = ReportPage(title, subtitle=f"{sum(s.rows for s in figures.splits)} rows; encoder {figures.lengths.encoder!r}, max_length {figures.lengths.max_length}")
    _summary(page.section("Summary", key="summary"), figures)
    labels = page.section("Labels per head", key="labels")
    for head in figures.heads:
        _head(labels, head, [s.name for s in figures.splits])
    _cooccurrence(page.section("Label co-occurrence", key="cooccurrence"), figures.heads)
    _lengths(page.section("Text length", key="lengths"), figures.lengths)
    _rare_labels(page.section("Labels with too few examples", key="rare-labels"), figures.heads)
    _duplicates(page.section("Duplicate texts", key="duplicates"), figures)
    page.write(path)


def _summary(section: Section, figures: DataInspection) -> None:
    section.table(["split", "rows", "source"], [[s.name, s.rows, s.source] for s in figures.splits], caption="Rows per split")
    if figures.problems:
        section.table(["problem"], [[line] for line in figures.problems], caption="Problems")
    else:
        section.text("No problems found.")


def _head(section: Section, head: HeadInspection, splits: list[str]) -> None:
    import plotly.graph_objects as go

    section.heading(f"{head.name} ({head.kind}, column {head.column!r})")
    section.table(
        ["split", "rows with a label", "rows without one"],
        [[split, head.labelled[split], f"{head.missing_share[split]:.1%}"] for split in splits],
    )
    if head.kind == "regression":
        if head.histogram is not None:
            section.chart(_histogram_figure(head.histogram, f"{plot_text(head.name)}: training values", "value"), name=f"head-{head.name}")
        stats = ("min", "p5", "p25", "median", "p75", "p95", "max", "mean", "std")
        section.table(["split", "rows", *stats], [[split, d.count, *(getattr(d, s) for s in stats)] for split, d in head.distribution.items()])
        return
    figure = go.Figure()
    names = [plot_text(label.label) for label in reversed(head.labels)]  # most frequent on top
    for split in splits:
        figure.add_bar(y=names, x=[label.counts[split] for label in reversed(head.labels)], orientation="h", name=split)
    figure.update_layout(title=f"{plot_text(head.name)}: rows per label", barmode="group", xaxis_title="rows", legend_traceorder="normal")
    section.chart(figure, name=f"head-{head.name}", height=140 + len(names) * 14 * max(1, len(splits) // 2 + 1))


def _cooccurrence(section: Section, heads: list[HeadInspection]) -> None:
    import plotly.graph_objects as go

    multilabel = [head for head in heads if head.kind == "multilabel"]
    if not multilabel:
        section.text("No multilabel head.", note=True)
    for head in multilabel:
        section.heading(head.name)
        labels = [plot_text(label) for label in head.label_order]
        # The diagonal (each label's own rows) is left blank: it would set the colour scale, and hide the pairs.
        pairs = [[None if i == j else n for j, n in enumerate(row)] for i, row in enumerate(head.cooccurrence)]
        figure = go.Figure(go.Heatmap(z=pairs, x=labels, y=labels, colorscale="Blues", hoverongaps=False, hovertemplate="%{y} and %{x}: %{z} rows<extra></extra>"))
        figure.update_layout(title=f"{plot_text(head.name)}: training rows carrying both labels", yaxis_autorange="reversed", xaxis_dtick=1, yaxis_dtick=1)
        section.chart(figure, name=f"cooccurrence-{head.name}", height=max(420, 160 + 16 * len(labels)))
        if head.pairs:
            section.table(["label", "with", "rows"], [[p.first, p.second, p.rows] for p in head.pairs], caption="Most frequent pairs")
        if head.always_with:
            rows = [[a.label, "always together with" if a.mutual else "never without", a.with_label, a.rows] for a in head.always_with]
            section.table(["label", "", "label", "rows"], rows, caption="Labels that always co-occur")
        per_row = ", ".join(f"{n}: {rows}" for n, rows in head.labels_per_row.items())
        section.text(f"Training rows by number of labels: {per_row}", note=True)


def _lengths(section: Section, lengths: LengthInspection) -> None:
    if lengths.histogram is not None:
        figure = _histogram_figure(lengths.histogram, f"Tokens per text ({lengths.encoder}, special tokens included)", "tokens")
        figure.add_vline(x=lengths.max_length, line_dash="dash", line_color="#d62728", annotation_text=f"max_length {lengths.max_length}")
        section.chart(figure, name="lengths")
    columns = ["texts", *lengths.percentiles, "max_length", f"cut ({lengths.long_text})"]
    section.table(columns, [[lengths.texts, *lengths.percentiles.values(), lengths.max_length, lengths.cut]])
    if lengths.cut:
        lost = lengths.tokens_not_read
        section.text(f"Cut texts: {lost['mean']:.0f} tokens not read on average (median {lost['median']:.0f}, at most {lost['max']:.0f}), {lost['mean_share']:.0%} of such a text.")
        section.table(["split", "texts cut"], [[split, n] for split, n in lengths.cut_by_split.items()])
    if lengths.max_windows is not None and lengths.windows:
        section.text(f"Windows read per text: {lengths.windows['mean']:.2f} on average, at most {lengths.windows['max']:.0f} (max_windows {lengths.max_windows}).")


def _rare_labels(section: Section, heads: list[HeadInspection]) -> None:
    rows = []
    for head in heads:
        rows += [[head.name, label, "fewer than 2 training examples: not in both parts of the stratified split"] for label in head.too_few_to_split]
        rows += [[head.name, label, "too few validation positives to tune its own threshold"] for label in head.too_few_to_tune]
        rows += [[head.name, label, "never in the training rows"] for label in head.never_in_train]
        rows += [[head.name, label, "only in validation or test rows"] for label in head.only_in_evaluation]
    if rows:
        section.table(["head", "label", "problem"], rows)
    else:
        section.text("Every label has enough examples.")


def _duplicates(section: Section, figures: DataInspection) -> None:
    duplicates = figures.duplicates
    section.table(
        ["split", "rows repeating an earlier text of the split", "rows repeating a training text"],
        [[split, n, duplicates.leaked.get(split)] for split, n in duplicates.repeated.items()],
    )
    section.text(f"Texts whose copies have conflicting labels: {duplicates.conflicting}")
    if duplicates.conflict_examples:
        rows = [[g.text, ", ".join(g.heads), "; ".join(f"{r.split}: {r.source} line {r.line}" for r in g.rows)] for g in duplicates.conflict_examples]
        section.table(["text", "heads in conflict", "rows"], rows, caption="Conflicting labels (first examples)")
    if duplicates.leak_examples:
        rows = [[g.text, "; ".join(f"{r.split}: {r.source} line {r.line}" for r in g.rows)] for g in duplicates.leak_examples]
        section.table(["text", "rows"], rows, caption="In training and evaluation rows (first examples)")


def _histogram_figure(histogram: Histogram, title: str, axis: str) -> Any:  # a plotly Figure
    import plotly.graph_objects as go

    edges = histogram.edges
    centres = [(a + b) / 2 for a, b in pairwise(edges)]
    widths = [b - a for a, b in pairwise(edges)]
    figure = go.Figure(go.Bar(x=centres, y=histogram.counts, width=widths, marker_line_width=0))
    figure.update_layout(title=title, xaxis_title=axis, yaxis_title="rows", bargap=0.02)
    return figure
