"""Push a model directory or ONNX export to the Hugging Face Hub: textheads' own files only.

What goes up is what the folder's marker (`.textheads.json`) or export manifest
(`textheads_onnx.json`) lists as written by textheads, with the run's own files
(training config, metrics, training log) and the model card (`README.md`), each
a plain file at the top of the folder and of a kind that
`textheads.hub.download` fetches back. Never checkpoints, tracker logs, locks,
the marker, partial saves, links, or files that textheads did not write.

`sample_texts.jsonl` holds up to 512 of the user's own validation texts (kept to
check an int8 export against): it goes up only when asked for
(`with_sample_texts`), since a public repo would publish them.
"""

from __future__ import annotations

from pathlib import Path

from textheads.errors import ConfigError, ModelLoadError, UploadError
from textheads.export.manifest import MANIFEST, is_onnx_dir, read_manifest
from textheads.export.samples import SAMPLE_FILE
from textheads.hub.download import CARD, MODEL_PATTERNS, NOT_MODEL_PATTERNS, is_repo_id
from textheads.ownership import (
    LOCK,
    MARKER,
    MODEL_FILES,
    RUN_FILES,
    TOKENIZER_FILES,
    UNLISTED_EXPORT_FILES,
    holds_model,
    is_textheads_folder,
    read_marker,
)


def upload_files(folder: str | Path, *, with_sample_texts: bool = False) -> list[Path]:
    """The files a push of `folder` sends, by name; `ConfigError` for a folder that is not a
    textheads model directory or ONNX export (see the module docstring)."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: give a textheads model directory or ONNX export to push")
    owned, required = _owned_names(folder)
    candidates = {name for name in owned | {CARD} if _plain_file(folder, name)}
    if CARD in candidates and CARD not in owned and not _is_textheads_card(folder / CARD):
        candidates.discard(CARD)  # someone else's README.md
    if not with_sample_texts:
        candidates.discard(SAMPLE_FILE)
    names = sorted(filter_repo_objects(candidates, allow_patterns=MODEL_PATTERNS, ignore_patterns=NOT_MODEL_PATTERNS))
    missing = sorted(required - set(names))
    if missing:
        raise ConfigError(f"{folder} lacks {', '.join(missing)} (or they are not textheads' own files): it cannot be pushed as a model")
    return [folder / name for name in names]


def _owned_names(folder: Path) -> tuple[set[str], set[str]]:
    """(the names textheads wrote in `folder`, the names a push needs), or a `ConfigError`."""
    if is_onnx_dir(folder):
        try:
            manifest = read_manifest(folder)
        except ModelLoadError as exc:
            raise ConfigError(f"{folder} is not an ONNX export that textheads can push: {exc}") from None
        return set(manifest.get("files") or UNLISTED_EXPORT_FILES) | {MANIFEST}, {MANIFEST, manifest["file"], "config.json"}
    if is_textheads_folder(folder) and holds_model(folder):
        marker = read_marker(folder)
        # A model directory from before markers: the files `save_model_dir` writes.
        listed = set(marker.get("files", [])) if marker else {*MODEL_FILES, *TOKENIZER_FILES}
        return listed | set(RUN_FILES), {"config.json"}
    raise ConfigError(
        f"{folder} is not a textheads model directory (config.json and model.safetensors written by textheads) "
        f"nor an ONNX export ({MANIFEST}): textheads pushes only models it wrote"
    )


def _plain_file(folder: Path, name: str) -> bool:
    path = folder / name
    return Path(name).name == name and name not in (MARKER, LOCK) and path.is_file() and not path.is_symlink()


def _is_textheads_card(path: Path) -> bool:
    """True for a README.md whose front matter says `library_name: textheads` (a card textheads wrote)."""
    from huggingface_hub import metadata_load

    try:
        metadata = metadata_load(path)
    except (OSError, ValueError):
        return False
    return isinstance(metadata, dict) and metadata.get("library_name") == "textheads"


def check_repo_id(repo_id: str) -> None:
    """A `ConfigError` unless `repo_id` is a valid Hub repo id."""
    if not is_repo_id(repo_id):
        raise ConfigError(f"{repo_id!r} is not a Hugging Face Hub repo id: expected `name` or `org/name` (letters, digits, '-', '_', '.')")


def repo_url(repo_id: str, revision: str | None = None) -> str:
    """The repo's page on the Hub this process talks to (HF_ENDPOINT)."""
    from huggingface_hub import constants

    return f"{constants.ENDPOINT}/{repo_id}" + (f"/tree/{revision}" if revision else "")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    with_sample_texts: bool = False,
) -> str:
    """Upload `upload_files(folder, with_sample_texts=…)` to the model repo `repo_id` in one commit, creating the
    repo (private when `private`; an existing repo keeps its visibility) and the branch
    `revision` when missing; returns the repo's URL. `token` defaults to HF_TOKEN or the
    stored login. Failures are one-line `UploadError`s."""
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    from textheads import __version__
    from textheads.hub.failures import TOKEN_HINT, describe, transport_errors

    check_repo_id(repo_id)
    files = upload_files(folder, with_sample_texts=with_sample_texts)
    token = token or get_token()
    if not token:
        raise UploadError(f"no Hugging Face token to push {repo_id} with: {TOKEN_HINT} and write to it")
    api = HfApi(token=token)
    operations = [CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=path) for path in files]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        api.create_commit(repo_id, operations=operations, commit_message=commit_message or f"Upload {Path(folder).name} with textheads {__version__}", revision=revision)
    except (OSError, ValueError, *transport_errors()) as exc:
        line = describe(exc, repo_id, revision)
        if line is None:
            raise
        raise UploadError(f"cannot push {folder} to {repo_id}: {line}") from None
    return repo_url(repo_id, revision)
