"""`textheads demo`: train, evaluate and predict on the bundled advice example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textheads.errors import ConfigError

DEMO_TEXTS = [
    ("my advice is that you go ahead with your plans to learn Python, because its syntax is easy "
    "for beginners. It's also great for snake lovers like me!"),
    ("Roast the vegetables at a high temperature and salt the pasta water generously; "
    "it makes a huge difference to the flavour."),
    "If you sit at a desk all day, get up every hour, stretch, and see a doctor if the back pain lasts.",
    "Haha, that thread made my day. Thanks for sharing!",
]


def example_dir() -> Path:
    """The `examples/advice` folder of the source checkout."""
    path = Path(__file__).resolve().parents[3] / "examples" / "advice"
    if not (path / "config.yaml").is_file():
        raise ConfigError(
            f"the demo data is not at {path}: the demo runs from a source checkout installed "
            "with `pip install -c constraints.txt -e .`"
        )
    return path


def demo(
    output_dir: Annotated[Path, typer.Option(help="Where to write the demo model.")] = Path("runs/demo"),
    epochs: Annotated[float | None, typer.Option(help="Override the example's epochs.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> int:
    """Train the three-head advice example (multilabel + multiclass + regression) on the
    bundled default encoder, evaluate it on its test split, and predict a few new texts."""
    import shutil

    from textheads.classifier import TextClassifier
    from textheads.cli.evaluate import print_metrics
    from textheads.cli.predict import print_tables
    from textheads.config import load_config

    folder = example_dir()
    overrides = [f"output_dir={output_dir}"] + ([f"train.epochs={epochs}"] if epochs else [])
    config = load_config(folder / "config.yaml", overrides)
    shutil.rmtree(output_dir, ignore_errors=True)  # the demo always starts afresh
    typer.echo(f"Training on {config.data.train} with heads {', '.join(config.heads)} (encoder: {config.model.encoder})")
    clf = TextClassifier.from_config(config).fit(show_progress=not quiet)
    typer.echo(f"\nModel saved to {output_dir}. Evaluating on {config.data.test}:")
    print_metrics(clf.evaluate(config.data.test), title=f"Test: {config.data.test}", per_label=True)
    typer.echo("\nPredictions for new texts:")
    print_tables(clf.heads_, clf.predict_records(DEMO_TEXTS))
    typer.echo(f"\nTry it yourself:  textheads predict {output_dir} \"your text here\"")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(demo)
