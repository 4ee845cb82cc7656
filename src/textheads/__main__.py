"""`python -m textheads` runs the CLI."""

from textheads.cli import run

run()
