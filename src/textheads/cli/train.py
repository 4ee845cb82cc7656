"""`textheads train CONFIG [--set key=value ...] [--output-dir DIR] [--resume | --overwrite]`.

Data parallel: `accelerate launch --cpu --num_processes 2 -m textheads train CONFIG` or
`torchrun --nproc_per_node 2 -m textheads train CONFIG`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textheads.cli._common import Quiet, quiet_library_logs


def train(
    config: Annotated[Path, typer.Argument(help="YAML run config (see docs/configuration.md).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key, e.g. --set train.epochs=1.")] = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Where to write the model (overrides output_dir in the config; default runs/CONFIG-NAME).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in the output folder from its last checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the textheads run in the output folder (never a folder textheads did not write).")] = False,
    quiet: Quiet = False,
) -> int:
    """Train a model; the best one is saved as the output folder, with its test metrics when the config names a test file."""
    quiet_library_logs()
    from textheads.card import write_model_card
    from textheads.classifier import TextClassifier
    from textheads.config import load_config
    from textheads.io import write_json_atomic
    from textheads.training.distributed import is_main_process

    run_config = load_config(config, set_ or [])
    if output_dir is not None:
        run_config = run_config.model_copy(update={"output_dir": str(output_dir)})
    elif run_config.output_dir is None:
        run_config = run_config.model_copy(update={"output_dir": str(Path("runs") / config.stem)})
    clf = TextClassifier.from_config(run_config).fit(resume=resume, overwrite=overwrite, show_progress=not quiet)
    if not is_main_process():
        return 0  # under accelerate launch / torchrun, the main process reports and writes
    result = clf.train_result_
    assert result is not None
    best = f"{run_config.train.metric} = {result.best_metric:.4f} at step {result.best_step}" if result.best_metric is not None else f"step {result.best_step}"
    typer.echo(f"Model saved to {result.output_dir} (best {best}; {result.global_step} steps)")
    if run_config.data.test is not None:
        from textheads.cli.evaluate import print_metrics

        metrics = clf.evaluate(run_config.data.test, show_progress=not quiet)
        write_json_atomic(Path(result.output_dir) / "test_metrics.json", metrics)
        # The card gets the test figures; a hand-written README.md was reported by `fit` already.
        write_model_card(result.output_dir, echo=lambda _: None)
        print_metrics(metrics, title=f"Test: {run_config.data.test}")
        typer.echo(f"Test metrics written to {Path(result.output_dir) / 'test_metrics.json'}")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(train)
