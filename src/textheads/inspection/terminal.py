"""A data inspection printed in the terminal (rich tables, label counts as bars)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from textheads.inspection.figures import DataInspection, HeadInspection, LengthInspection
from textheads.inspection.problems import short, where_rows

BAR_WIDTH = 32
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(count: int, largest: int, width: int = BAR_WIDTH) -> str:
    """`count` as a bar of at most `width` characters (in eighths of a character)."""
    if largest <= 0 or count <= 0:
        return ""
    eighths = max(1, round(count / largest * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def print_inspection(figures: DataInspection, console: Console | None = None) -> None:
    """Every figure of the inspection, problems last (where the eye ends)."""
    console = console or Console()
    rows = Table(title="Rows per split", title_justify="left")
    for column in ("split", "rows", "source"):
        rows.add_column(column, justify="right" if column == "rows" else "left")
    for split in figures.splits:
        rows.add_row(split.name, str(split.rows), split.source)
    console.print(rows)
    for head in figures.heads:
        _print_head(console, head, [split.name for split in figures.splits])
    _print_lengths(console, figures.lengths)
    _print_duplicates(console, figures)
    if figures.problems:
        console.print("[bold]Problems[/]")
        for line in figures.problems:
            console.print(Text(f"- {line}"), soft_wrap=False)
    else:
        console.print("No problems found.")


def _print_head(console: Console, head: HeadInspection, splits: list[str]) -> None:
    missing = ", ".join(f"{split} {head.missing_share[split]:.1%}" for split in splits)
    # On a line of its own: as a table title it would wrap to the table's width.
    console.print(Text(f"{head.name} ({head.kind}, column {head.column!r}); rows without a label: {missing}", style="bold"))
    if head.kind == "regression":
        _print_values(console, head)
        return
    names = max((len(label.label) for label in head.labels), default=5)
    # The bar gets what the label, count and split columns leave of the terminal's width.
    width = max(10, min(BAR_WIDTH, console.width - names - 16 - sum(max(len(s), 6) + 3 for s in splits)))
    table = Table()
    table.add_column("label", no_wrap=True, min_width=min(names, 40))
    table.add_column("train", justify="right", no_wrap=True)
    table.add_column("", min_width=width, no_wrap=True, style="cyan")
    table.add_column("share", justify="right", no_wrap=True)
    for split in splits[1:]:
        table.add_column(split, justify="right", no_wrap=True, min_width=len(split))
    largest = max((label.counts["train"] for label in head.labels), default=0)
    labelled = max(head.labelled["train"], 1)
    for label in head.labels:
        train = label.counts["train"]
        table.add_row(Text(label.label), str(train), bar(train, largest, width), f"{train / labelled:.1%}", *(str(label.counts[s]) for s in splits[1:]))
    console.print(table)
    if head.kind == "multilabel":
        _print_pairs(console, head)


def _print_pairs(console: Console, head: HeadInspection) -> None:
    per_row = ", ".join(f"{n} label{'s' if n != 1 else ''}: {rows}" for n, rows in head.labels_per_row.items())
    console.print(Text(f"{head.name}: training rows by labels carried: {per_row}"))
    if head.pairs:
        pairs = Table(title=f"{head.name}: most frequent label pairs (training rows)", title_justify="left")
        for column in ("label", "with", "rows"):
            pairs.add_column(column, justify="right" if column == "rows" else "left")
        for pair in head.pairs:
            pairs.add_row(Text(pair.first), Text(pair.second), str(pair.rows))
        console.print(pairs)
    for link in head.always_with:
        both = "always together" if link.mutual else "never without"
        console.print(Text(f"{head.name}: {link.label} is {both} {link.with_label} ({link.rows} rows)"))


def _print_values(console: Console, head: HeadInspection) -> None:
    table = Table()
    # One column per split, one row per statistic: legible in 80 columns.
    table.add_column("")
    for split in head.distribution:
        table.add_column(split, justify="right", no_wrap=True)
    table.add_row("rows", *(str(d.count) for d in head.distribution.values()))
    for stat in ("min", "p5", "p25", "median", "p75", "p95", "max", "mean", "std"):
        table.add_row(stat, *(f"{getattr(d, stat):.4g}" for d in head.distribution.values()))
    console.print(table)
    if head.histogram is not None:
        largest = max(head.histogram.counts, default=0)
        edges = head.histogram.edges
        for i, count in enumerate(head.histogram.counts):
            console.print(Text(f"  {edges[i]:>9.4g} – {edges[i + 1]:<9.4g} {count:>6} {bar(count, largest)}"))


def _print_lengths(console: Console, lengths: LengthInspection) -> None:
    table = Table(title=f"Text length in tokens of encoder {lengths.encoder!r} (special tokens included)", title_justify="left")
    table.add_column("texts", justify="right")
    for name in lengths.percentiles:
        table.add_column(name, justify="right")
    table.add_column("max_length", justify="right")
    table.add_column(f"cut ({lengths.long_text})", justify="right")
    share = f"{lengths.cut / lengths.texts:.1%}" if lengths.texts else "0"
    table.add_row(str(lengths.texts), *map(str, lengths.percentiles.values()), str(lengths.max_length), f"{lengths.cut} ({share})")
    console.print(table)
    if lengths.cut:
        lost = lengths.tokens_not_read
        by_split = ", ".join(f"{split} {n}" for split, n in lengths.cut_by_split.items())
        console.print(
            f"Cut texts ({by_split}): {lost['mean']:.0f} tokens not read on average (median {lost['median']:.0f}, "
            f"at most {lost['max']:.0f}), {lost['mean_share']:.0%} of such a text"
        )
    if lengths.max_windows is not None and lengths.windows:
        console.print(f"Windows read per text: {lengths.windows['mean']:.2f} on average, at most {lengths.windows['max']:.0f} (max_windows {lengths.max_windows})")


def _print_duplicates(console: Console, figures: DataInspection) -> None:
    duplicates = figures.duplicates
    repeated = ", ".join(f"{split} {n}" for split, n in duplicates.repeated.items())
    leaked = ", ".join(f"{split} {n}" for split, n in duplicates.leaked.items()) or "no validation or test rows"
    console.print(f"Duplicate texts: rows repeating an earlier text of their split: {repeated}; texts with conflicting labels: {duplicates.conflicting}; rows repeating a training text: {leaked}")
    for group in duplicates.conflict_examples:
        console.print(Text(f"  conflicting on {', '.join(group.heads)}: {short(group.text)!r} at {where_rows(group.rows)}"))
    for group in duplicates.leak_examples:
        console.print(Text(f"  in train and evaluation: {short(group.text)!r} at {where_rows(group.rows)}"))
