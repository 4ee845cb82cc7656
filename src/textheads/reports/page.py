"""One self-contained HTML page of sections, tables and charts.

Everything is inline (styles, the plotly.js bundle once, each chart's data), so
the file opens offline and can be mailed. Charts are plotly figures: interactive
(hover reads a label's precision and recall at each threshold, the legend hides
and shows labels), drawn in the browser from a well-kept library, and one chart
is one `<div data-chart="NAME">` that a test can find.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textheads import __version__
from textheads.io import write_text_atomic

GENERATOR = "textheads"
"""The page's `<meta name="generator">`: how textheads recognises a report it may replace."""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #fff; }
header { padding: 1.2rem 2rem; background: #0d3b66; color: #fff; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.5rem; }
header p { margin: 0; opacity: .85; }
nav { padding: .6rem 2rem; background: #f3f5f7; border-bottom: 1px solid #d0d7de; font-size: .9rem; }
nav a { margin-right: 1rem; color: #0d3b66; text-decoration: none; }
main { padding: 0 2rem 2rem 2rem; max-width: 1200px; }
section { margin-top: 1.6rem; }
h2 { border-bottom: 2px solid #0d3b66; padding-bottom: .2rem; }
h3 { margin-bottom: .3rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem 0; font-size: .88rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; }
th { background: #f3f5f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
.chart { margin: .5rem 0 1rem 0; }
.note { color: #57606a; font-size: .9rem; }
.scroll { max-height: 32rem; overflow-y: auto; display: inline-block; vertical-align: top; margin-right: 1.2rem; }
"""


@dataclass
class Section:
    """A titled part of the page; parts are added in order."""

    title: str
    key: str
    parts: list[str] = field(default_factory=list)
    _page: ReportPage | None = field(default=None, repr=False)

    def heading(self, text: str) -> None:
        """A sub-heading inside the section."""
        self.parts.append(f"<h3>{html.escape(text)}</h3>")

    def text(self, text: str, *, note: bool = False) -> None:
        """A paragraph of plain text (escaped)."""
        css = ' class="note"' if note else ""
        self.parts.append(f"<p{css}>{html.escape(text)}</p>")

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str | None = None, digits: int = 3) -> None:
        """A table; floats are shown with `digits` decimals and right-aligned, None as empty."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(_cell(value, digits) for value in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')

    def chart(self, figure: Any, *, name: str, height: int | None = None) -> None:
        """A plotly figure, drawn in the browser from the page's one copy of plotly.js."""
        import plotly.io

        if height is not None:
            figure.update_layout(height=height)
        elif figure.layout.height is None:
            figure.update_layout(height=420)
        figure.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 50, "b": 50})
        assert self._page is not None
        div_id = f"chart-{self._page.next_chart_number()}"
        drawn = plotly.io.to_html(
            figure, full_html=False, include_plotlyjs=False, div_id=div_id,
            config={"displaylogo": False, "responsive": True},
        )
        self.parts.append(f'<div class="chart" data-chart="{html.escape(name, quote=True)}">{drawn}</div>')


def plot_text(value: object, limit: int | None = None) -> str:
    """`value` as text plotly shows literally (escaped), cut to `limit` characters.

    Plotly reads a few HTML tags in its strings (`<b>`, `<br>`), so every user string that
    reaches a figure (a label, a head's name, a text in hover) goes through this.
    """
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, float):
        return f'<td class="num">{value:.{digits}f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


class ReportPage:
    """A page of sections: `page.section("Summary").table(...)`, then `page.write(path)`."""

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []
        self._charts = 0

    def next_chart_number(self) -> int:
        self._charts += 1
        return self._charts

    def section(self, title: str, *, key: str | None = None) -> Section:
        """Add a section (in page order); `key` is its `data-section` name (default: from the title)."""
        key = key or "-".join(title.lower().split())
        section = Section(title=title, key=key, _page=self)
        self.sections.append(section)
        return section

    def render(self) -> str:
        """The whole page as one HTML string."""
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs() if self._charts else ""
        nav = "".join(f'<a href="#{html.escape(s.key, quote=True)}">{html.escape(s.title)}</a>' for s in self.sections)
        body = "".join(
            f'<section id="{html.escape(s.key, quote=True)}" data-section="{html.escape(s.key, quote=True)}">'
            f"<h2>{html.escape(s.title)}</h2>{''.join(s.parts)}</section>"
            for s in self.sections
        )
        subtitle = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="generator" content="{GENERATOR} {__version__}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>"
            f'<script type="text/javascript">{plotly_js}</script></head>'
            f"<body><header><h1>{html.escape(self.title)}</h1>{subtitle}</header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
        )

    def write(self, path: Path) -> None:
        """Write the page atomically (a reader never sees half a page)."""
        write_text_atomic(Path(path), self.render())


def is_report(path: Path) -> bool:
    """True when `path` is an HTML page textheads wrote (its generator tag says so)."""
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as handle:
            start = handle.read(4096)
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR} ' in start
