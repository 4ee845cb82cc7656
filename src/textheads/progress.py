"""Progress bars for long steps (rich, on stderr), off when not wanted.

Bars nest: a step that starts while another bar is shown (validation during
training) adds its own line to the display already on screen, since a
terminal holds one live display at a time, and removes it when done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_active: list[Progress] = []


class _RateColumn(ProgressColumn):
    """Items per second since the task started (e.g. `1,234 rows/s`), for tasks given a `unit`.

    An average since the start, not rich's recent-samples speed: that one needs two
    advances, and a file of one chunk advances once."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit")
        elapsed = task.elapsed
        if not unit or not elapsed:
            return Text("")
        rate = (task.completed - task.fields["resumed_at"]) / elapsed
        return Text(f"{rate:,.0f} {unit}/s", style="progress.data.speed")


def _new_display() -> Progress:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("<"),
        TimeRemainingColumn(),
        _RateColumn(),
        TextColumn("{task.fields[info]}"),
    )
    # stderr: stdout stays clean for what a command outputs (tables, JSON records).
    return Progress(*columns, console=Console(stderr=True), transient=False)


@contextmanager
def progress(
    total: int, description: str, *, enabled: bool = True, unit: str | None = None, completed: int = 0
) -> Iterator[Callable[..., None]]:
    """Context manager yielding `advance(n=1, info=None, total=None)` (`total` re-sizes the
    bar, for a plan that changed); a no-op when disabled.

    With a `unit` the bar also shows the rate (`rows/s`); `completed` starts it part-way
    (a resumed run), without counting those toward the rate."""
    if not enabled:
        yield lambda *args, **kwargs: None
        return
    nested = bool(_active)
    display = _active[-1] if nested else _new_display()
    if not nested:
        display.start()
        _active.append(display)
    task = display.add_task(description, total=total, completed=completed, info="", unit=unit, resumed_at=completed)

    def advance(n: int = 1, info: str | None = None, total: int | None = None) -> None:
        if total is not None:
            display.update(task, total=total)
        if info is None:
            display.advance(task, n)
        else:
            display.update(task, advance=n, info=info)

    try:
        yield advance
    finally:
        if nested:
            display.remove_task(task)
        else:
            _active.pop()
            display.stop()
