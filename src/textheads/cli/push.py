"""`textheads push MODEL_DIR REPO_ID [--revision BRANCH] [--private] [--commit-message M] [--dry-run] [--with-sample-texts]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def push(
    model_dir: Annotated[Path, typer.Argument(help="A textheads model directory or ONNX export on this machine.", show_default=False)],
    repo_id: Annotated[str, typer.Argument(help="The Hugging Face Hub model repo to upload to: org/name (created when missing).", show_default=False)],
    revision: Annotated[str | None, typer.Option("--revision", help="The branch to commit to, created when missing (default: main).")] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private (an existing repo keeps its visibility).")] = False,
    commit_message: Annotated[str | None, typer.Option("--commit-message", "-m", help="The commit's message.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files (and sizes) that would be uploaded; upload nothing.")] = False,
    with_sample_texts: Annotated[bool, typer.Option("--with-sample-texts", help="Also upload sample_texts.jsonl: up to 512 of your validation texts, kept to check int8 exports (left out by default: a public repo would publish them).")] = False,
) -> int:
    """Upload a model directory or ONNX export (textheads' own files, with the model card) to the Hugging Face Hub.

    The token is $HF_TOKEN or the stored login (`hf auth login`); it needs write access.
    """
    from rich.console import Console
    from rich.filesize import decimal
    from rich.markup import escape

    from textheads.hub.upload import check_repo_id, push_folder, repo_url, upload_files

    check_repo_id(repo_id)
    files = upload_files(model_dir, with_sample_texts=with_sample_texts)
    if dry_run:
        console = Console(highlight=False, soft_wrap=True)
        for path in files:
            console.print(f"  {escape(path.name)}  {decimal(path.stat().st_size)}")
        total = decimal(sum(path.stat().st_size for path in files))
        console.print(f"Would upload {len(files)} files ({total}) to {repo_url(repo_id, revision)}; nothing was uploaded (--dry-run).")
        return 0
    url = push_folder(model_dir, repo_id, revision=revision, private=private, commit_message=commit_message, with_sample_texts=with_sample_texts)
    typer.echo(f"Pushed {len(files)} files to {url}")
    return 0


def register(app: typer.Typer) -> None:
    app.command()(push)
