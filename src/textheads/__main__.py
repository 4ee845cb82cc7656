"""`python -m textheads` runs the CLI."""

from textheads.cli import run

if __name__ == "__main__":  # model processes (spawned) import this module again
    run()
