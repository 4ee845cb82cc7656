"""The `textheads` command: a thin layer over the library, one module per verb."""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console

from textheads.errors import TextheadsError

app = typer.Typer(
    name="textheads",
    help="Train, evaluate and use text classifiers with many heads on one shared encoder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from textheads.cli import demo, evaluate, export, predict, serve, train

    for module in (train, evaluate, predict, export, serve, demo):
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (2 for bad input, with a one-paragraph message)."""
    _register()
    _quiet_transformers()
    err = Console(stderr=True)
    try:
        result = app(args=argv, prog_name="textheads", standalone_mode=False)
    except TextheadsError as exc:
        err.print(f"[bold red]Error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        return 2
    except click.exceptions.Abort:
        err.print("Aborted.")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _quiet_transformers() -> None:
    # The CLI prints its own progress; transformers' weight-loading bars are noise here.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
