"""`textheads train CONFIG [--set key=value ...] [--resume]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    config: Annotated[Path, typer.Argument(help="YAML run config (see docs/configuration.md).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key, e.g. --set train.epochs=1.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in output_dir.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> int:
    """Train a model; the best one is saved as output_dir."""
    from textheads.classifier import TextClassifier
    from textheads.config import load_config

    run_config = load_config(config, set_ or [])
    if run_config.output_dir is None:
        run_config = run_config.model_copy(update={"output_dir": str(Path("runs") / config.stem)})
    clf = TextClassifier.from_config(run_config).fit(resume=resume, show_progress=not quiet)
    result = clf.train_result_
    assert result is not None
    best = f"{run_config.train.metric} = {result.best_metric:.4f} at step {result.best_step}" if result.best_metric is not None else f"step {result.best_step}"
    typer.echo(f"Model saved to {result.output_dir} (best {best}; {result.global_step} steps)")
    if run_config.data.test is not None:
        from textheads.cli.evaluate import print_metrics

        print_metrics(clf.evaluate(run_config.data.test), title=f"Test: {run_config.data.test}")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(train)
