"""The `textheads` command: a thin layer over the library, one module per verb.

Nothing heavy is imported before the command line is parsed, so `--help`,
`--version` and usage errors answer at once; each command imports the library
(torch, transformers) in its body.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from textheads import __version__
from textheads.errors import TextheadsError

app = typer.Typer(
    name="textheads",
    help="Train, evaluate and use text classifiers with many heads on one shared encoder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"textheads {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Train, evaluate and use text classifiers with many heads on one shared encoder."""


def _register() -> None:
    from textheads.cli import demo, evaluate, export, inspect, predict, push, serve, train

    for module in (train, inspect, evaluate, predict, export, serve, push, demo):
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code.

    0 on success; 2 for a usage error (the usage and one line, printed by the
    command-line parser itself, so this holds whatever typer and click versions
    are installed) and for any error textheads raises on purpose (one message naming
    what is wrong and where; a save that fails on a full disk is one); 1 when the
    system refuses elsewhere (a file where a folder should be); 130 when interrupted.
    Never a traceback for any of these.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:  # the help, as a usage error (click before 8.2 would exit 0)
        _exit_code_of(["--help"])
        return 2
    return _exit_code_of(args)


def _exit_code_of(args: list[str]) -> int:
    try:
        # Standalone mode: the parser reports its own usage errors and exits with their code.
        app(args=args, prog_name="textheads", standalone_mode=True)
    except SystemExit as exc:
        return _exit_code(exc.code)
    except TextheadsError as exc:
        _print_error(str(exc))
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("Interrupted.")
        return 130
    except OSError as exc:  # the machine's answer (a file in the way, no permission), not a bug of ours
        _print_error(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        return 1
    return 0


def _print_error(message: str) -> None:
    # Escaped: a message is text, and `textheads[mlflow]` in it would read as a markup tag.
    Console(stderr=True).print(f"[bold red]Error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") convention
    return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
