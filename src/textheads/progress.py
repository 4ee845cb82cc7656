"""Progress bars for long steps (rich), off when not wanted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress(total: int, description: str, *, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Context manager yielding `advance(n=1, **fields)`; a no-op when disabled."""
    if not enabled:
        yield lambda *args, **kwargs: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("<"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, info=info)

        yield advance
