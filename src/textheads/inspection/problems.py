"""One sentence per thing in the data worth fixing (or knowing) before training."""

from __future__ import annotations

from pathlib import Path

from textheads.inspection.figures import DataInspection, HeadInspection, LengthInspection, RowRef
from textheads.thresholds import MIN_POSITIVES

_SHOWN = 8


def list_problems(figures: DataInspection) -> list[str]:
    """The problems of a data inspection, heads first, then lengths and duplicates."""
    problems = [line for head in figures.heads for line in _head_problems(head)]
    problems += _length_problems(figures.lengths)
    duplicates = figures.duplicates
    if duplicates.conflicting:
        first = duplicates.conflict_examples[0]
        problems.append(
            f"{duplicates.conflicting} text(s) appear more than once with different labels, e.g. {short(first.text)!r} "
            f"({where_rows(first.rows)}: {', '.join(first.heads)})"
        )
    leaked = {name: n for name, n in duplicates.leaked.items() if n}
    if leaked:
        rows = " and ".join(f"{n} {name} row(s)" for name, n in leaked.items())
        problems.append(f"{rows} repeat a training text exactly (leakage: their scores overstate the model)")
    for name, n in duplicates.repeated.items():
        if n:
            problems.append(f"{n} {name} row(s) repeat an earlier {name} text exactly")
    return problems


def _head_problems(head: HeadInspection) -> list[str]:
    lines = []
    if head.too_few_to_split:
        lines.append(f"{head.name}: {_labels(head.too_few_to_split)} fewer than 2 training examples: the stratified split cannot put them in both train and validation")
    if head.too_few_to_tune:
        lines.append(
            f"{head.name}: {_labels(head.too_few_to_tune)} fewer than {MIN_POSITIVES} validation positives, too few to tune a "
            "threshold of their own (they get the head's global threshold)"
        )
    only_evaluated = set(head.only_in_evaluation)
    unseen = [label for label in head.never_in_train if label not in only_evaluated]
    if unseen:
        lines.append(f"{head.name}: {_labels(unseen)} no training example: the head cannot learn them")
    if head.only_in_evaluation:
        lines.append(f"{head.name}: {_labels(head.only_in_evaluation)} examples only in validation or test rows, none in training")
    return lines


def _length_problems(lengths: LengthInspection) -> list[str]:
    if not lengths.cut:
        return []
    lost = lengths.tokens_not_read
    how = {"truncate": "their end is cut", "head_tail": "their middle is dropped", "windows": "their end is cut"}[lengths.long_text]
    if lengths.max_windows is not None:
        limit = f"the {lengths.max_windows} windows of {lengths.max_length} tokens the model reads"
    else:
        limit = f"max_length, {lengths.max_length} tokens"
    line = (
        f"{lengths.cut} of {lengths.texts} texts are longer than {limit}, so {how}: on average {lost['mean']:.0f} "
        f"of such a text's tokens ({lost['mean_share']:.0%}) are not read, at most {lost['max']:.0f}"
    )
    return [line]


def where_rows(rows: list[RowRef], limit: int = 6) -> str:
    """Rows by split, e.g. `train.jsonl lines 3, 9; test.jsonl line 2` (the first `limit`)."""
    by_file: dict[str, list[int]] = {}
    for ref in rows[:limit]:
        by_file.setdefault(Path(ref.source).name, []).append(ref.line)
    shown = "; ".join(f"{name} line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}" for name, lines in by_file.items())
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def short(text: str, limit: int = 60) -> str:
    """A text cut to `limit` characters for a line of output."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _labels(labels: list[str]) -> str:
    shown = ", ".join(labels[:_SHOWN]) + (f" and {len(labels) - _SHOWN} more" if len(labels) > _SHOWN else "")
    return f"label {labels[0]} has" if len(labels) == 1 else f"{len(labels)} labels ({shown}) have"
