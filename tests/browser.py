"""Open an HTML file in real headless Chromium (Debian's `chromium`) through Playwright.

Tests that need it use `requires_browser`: they skip, with the reason, only
where no Chromium is installed (CI installs it: see .ci/run).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
requires_browser = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")

# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which
# this machine's closed network refuses; as root it needs --no-sandbox.
_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]

_CHART_STATE = """
() => Array.from(document.querySelectorAll('[data-chart]')).map(el => {
  const box = el.getBoundingClientRect();
  return {name: el.dataset.chart, drawn: el.querySelector('svg.main-svg') !== null,
          width: box.width, height: box.height};
})
"""


@dataclass
class Rendered:
    """What the browser made of a page."""

    errors: list[str] = field(default_factory=list)
    """Uncaught script errors and console errors."""
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for besides itself (a self-contained page asks for none)."""
    sections: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    title: str = ""
    text: str = ""
    """The page's visible text (tables, headings; not scripts)."""
    legends: list[str] = field(default_factory=list)
    ticks: list[str] = field(default_factory=list)
    """The text of every axis tick label, as drawn."""
    """The text of every chart's legend entries, as drawn."""

    def drawn(self, name: str) -> bool:
        """True when the chart `name` is on the page, drawn (an SVG inside) and not empty."""
        return any(c["name"] == name and c["drawn"] and c["width"] > 0 and c["height"] > 0 for c in self.charts)


def render(path: Path, screenshot: Path | None = None) -> Rendered:
    """Load `path` offline in Chromium, let its scripts run, and report errors, sections and charts."""
    from playwright.sync_api import sync_playwright

    rendered = Rendered()
    page_url = path.resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: rendered.errors.append(f"script error: {exc}"))
            page.on("console", lambda msg: rendered.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.on("dialog", lambda dialog: (rendered.errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))

            def refuse_outside(route) -> None:  # the page must not need the network
                if route.request.url != page_url:
                    rendered.requests.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", refuse_outside)
            page.goto(page_url, wait_until="load")
            page.wait_for_timeout(300)  # plotly draws after load; nothing here is timed, only waited for
            rendered.title = page.title()
            rendered.sections = page.eval_on_selector_all("[data-section]", "els => els.map(e => e.dataset.section)")
            rendered.charts = page.evaluate(_CHART_STATE)
            rendered.text = page.inner_text("body")
            rendered.legends = page.eval_on_selector_all("[data-chart] text.legendtext", "els => els.map(e => e.textContent)")
            rendered.ticks = page.eval_on_selector_all("[data-chart] g.xtick text, [data-chart] g.ytick text", "els => els.map(e => e.textContent)")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return rendered


def capture(path: Path, shots: dict[Path, str | None], width: int = 1280, height: int = 900) -> None:
    """Viewport screenshots of `path` offline: each PNG of `shots` shows the page scrolled to
    the element its CSS selector names (None: the top of the page)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route("**/*", lambda route: route.continue_() if route.request.url == path.resolve().as_uri() else route.abort())
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(300)  # plotly draws after load
            for png, selector in shots.items():
                page.evaluate("sel => sel ? document.querySelector(sel).scrollIntoView() : window.scrollTo(0, 0)", selector)
                page.wait_for_timeout(100)
                page.screenshot(path=str(png))
        finally:
            browser.close()


def is_blank(png: Path) -> bool:
    """True when the screenshot is one flat colour (nothing drawn)."""
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=64)
    return colours is not None and len(colours) <= 2
