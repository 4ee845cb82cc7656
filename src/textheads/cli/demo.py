"""`textheads demo`: train, evaluate and predict on the bundled advice example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textheads.cli._common import Quiet, quiet_library_logs
from textheads.errors import ConfigError

DEMO_TEXTS = [
    ("my advice is that you go ahead with your plans to learn Python, because its syntax is easy "
    "for beginners. It's also great for snake lovers like me!"),
    ("Roast the vegetables at a high temperature and salt the pasta water generously; "
    "it makes a huge difference to the flavour."),
    "If you sit at a desk all day, get up every hour, stretch, and see a doctor if the back pain lasts.",
    "Haha, that thread made my day. Thanks for sharing!",
]
DEMO_PURPOSE = "demo"


def example_dir() -> Path:
    """The advice example (config and data), shipped inside the package."""
    path = Path(__file__).resolve().parents[1] / "examples" / "advice"
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"the demo data is missing from the installed package (expected {path}); reinstall textheads")
    return path


def demo(
    output_dir: Annotated[Path, typer.Option(help="Where to write the demo model (a new folder, or one an earlier demo wrote).")] = Path("runs/demo"),
    epochs: Annotated[float | None, typer.Option(min=0.01, help="Override the example's epochs.")] = None,
    quiet: Quiet = False,
) -> int:
    """Train the three-head advice example (multilabel + multiclass + regression) on the bundled default encoder, evaluate it on its test split, and predict a few new texts."""
    quiet_library_logs()
    import yaml

    from textheads.classifier import TextClassifier
    from textheads.cli.evaluate import print_metrics
    from textheads.cli.predict import print_tables
    from textheads.config import load_config
    from textheads.ownership import claim_folder, is_empty, read_marker

    folder = example_dir()
    # The example's own files, whatever the current folder holds (a relative path would be
    # read from there first).
    files = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))["data"]
    data = [f"data.{split}={folder / files[split]}" for split in ("train", "validation", "test")]
    overrides = [*data, f"output_dir={output_dir}"] + ([f"train.epochs={epochs}"] if epochs else [])
    config = load_config(folder / "config.yaml", overrides)
    # The demo starts afresh, but replaces only a folder an earlier demo wrote.
    earlier_demo = (read_marker(output_dir) or {}).get("purpose") == DEMO_PURPOSE
    if not is_empty(output_dir) and not earlier_demo:
        raise ConfigError(f"{output_dir} exists and was not written by `textheads demo`, so it is left as it is: choose another --output-dir")
    claim_folder(output_dir, DEMO_PURPOSE)
    typer.echo(f"Training on {config.data.train} with heads {', '.join(config.heads)} (encoder: {config.model.encoder})")
    clf = TextClassifier.from_config(config).fit(overwrite=earlier_demo, show_progress=not quiet)
    typer.echo(f"\nModel saved to {output_dir}. Evaluating on {config.data.test}:")
    print_metrics(clf.evaluate(config.data.test, show_progress=not quiet), title=f"Test: {config.data.test}", per_label=True)
    typer.echo("\nPredictions for new texts:")
    print_tables(clf.heads_, clf.predict_records(DEMO_TEXTS))
    typer.echo(f"\nTry it yourself:  textheads predict {output_dir} \"your text here\"")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(demo)
