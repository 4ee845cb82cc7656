"""The self-contained HTML page the reports are drawn on, opened in real Chromium."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest

from browser import is_blank, render, requires_browser
from textheads.errors import ConfigError
from textheads.ownership import check_output_file
from textheads.reports.page import ReportPage, is_report


def _page() -> ReportPage:
    page = ReportPage("A page", subtitle="with <b>escaped</b> text")
    summary = page.section("Summary")
    summary.table(["metric", "value", "n"], [["micro_f1", 0.91234, 10], ["label <x>", None, 3]], caption="Figures")
    charts = page.section("Charts")
    charts.chart(go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2], name="line")), name="line")
    charts.chart(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])), name="heat")
    return page


def test_the_page_holds_everything_inline_and_escapes_text(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    _page().write(path)
    text = path.read_text(encoding="utf-8")
    assert "<b>escaped</b>" not in text and "&lt;b&gt;escaped&lt;/b&gt;" in text
    assert "label &lt;x&gt;" in text and "0.912" in text
    assert "<script src" not in text and "<link" not in text  # no external script or style (Chromium checks requests)
    assert text.count("<script type=\"text/javascript\">") == 1  # plotly.js once, however many charts
    assert is_report(path)


@requires_browser
def test_the_page_draws_every_chart_in_chromium_without_errors_or_network(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    _page().write(path)
    shot = tmp_path / "page.png"
    rendered = render(path, screenshot=shot)
    assert rendered.errors == []
    assert rendered.requests == []
    assert rendered.sections == ["summary", "charts"]
    assert rendered.drawn("line") and rendered.drawn("heat")
    assert not is_blank(shot)


def test_a_report_replaces_only_a_report(tmp_path: Path) -> None:
    ours = tmp_path / "report.html"
    _page().write(ours)
    check_output_file(ours, kind="report")  # an earlier report may be replaced
    theirs = tmp_path / "notes.html"
    theirs.write_text("<html><body>my notes</body></html>", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a textheads report file"):
        check_output_file(theirs, kind="report", option="--report")
