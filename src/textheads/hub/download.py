"""A model reference, a local folder or a Hugging Face Hub id, as a local folder.

A path that exists is used as it is: a local folder always wins over a Hub id of
the same name. Any other reference that is a valid Hub repo id (`name` or
`org/name`) is fetched with `huggingface_hub.snapshot_download` into its usual
cache (HF_HOME, HF_HUB_CACHE), with the token of HF_TOKEN or the stored login
unless one is given, and from the cache alone under HF_HUB_OFFLINE=1. Only the
files textheads reads are fetched: never checkpoints or anything in a subfolder.
"""

from __future__ import annotations

from pathlib import Path

from textheads.errors import ConfigError, ModelLoadError

CARD = "README.md"
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.onnx", "*.txt", "*.model", "*.spm", "*.jinja", "*.jsonl", "*.yaml", CARD]
"""The kinds of file a model directory or ONNX export holds: weights, graph, config, manifest,
tokenizer, training config, metrics, training log, sample texts and card (fnmatch patterns)."""
NOT_MODEL_PATTERNS = ["*/*", ".*"]
"""Never a subfolder (fnmatch's `*` crosses `/`: this keeps `checkpoints/` out), nor a hidden file."""


def is_repo_id(reference: str) -> bool:
    """True when `reference` is a valid Hub repo id, by huggingface_hub's own rules."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(reference)
    except HFValidationError:
        return False
    return True


def resolve_model(reference: str | Path, *, revision: str | None = None, token: str | bool | None = None) -> Path:
    """The local folder of a model reference: an existing path as it is, else a Hub id's
    snapshot in the Hugging Face cache (downloaded when missing; see the module docstring).

    `revision` (a branch, tag or commit hash; default `main`) applies to Hub ids only.
    Raises `ModelLoadError` (one line: not found, gated, offline and not cached) or
    `ConfigError` (a revision for a local path).

    Example:
        >>> resolve_model("my-org/support-tickets", revision="v2")  # doctest: +SKIP
        PosixPath('/home/me/.cache/huggingface/hub/models--my-org--support-tickets/snapshots/3f1c…')
    """
    path = Path(reference)
    if path.exists():
        if revision is not None:
            raise ConfigError(f"revision {revision!r} picks a version of a model on the Hugging Face Hub; {reference} is a local path, used as it is: drop the revision")
        return path
    repo_id = reference if isinstance(reference, str) else path.as_posix()
    if not is_repo_id(repo_id):
        raise ModelLoadError(f"{reference} is neither a folder nor a Hub id (`name` or `org/name`): no such folder here, and not a valid Hugging Face repo id")
    return download(repo_id, revision=revision, token=token)


def download(repo_id: str, *, revision: str | None = None, token: str | bool | None = None) -> Path:
    """The snapshot folder of `repo_id` at `revision`, fetched into the Hugging Face cache when needed."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from textheads.hub.failures import describe, transport_errors, unreachable

    try:
        folder = snapshot_download(repo_id, revision=revision, token=token, allow_patterns=MODEL_PATTERNS, ignore_patterns=NOT_MODEL_PATTERNS)
    except LocalEntryNotFoundError as exc:
        raise ModelLoadError(_not_cached(repo_id, revision, exc, offline=constants.is_offline_mode(), unreachable=unreachable(exc))) from None
    except (OSError, ValueError, *transport_errors()) as exc:  # huggingface_hub's HTTP errors are OSErrors
        line = describe(exc, repo_id, revision)
        if line is None:
            raise
        raise ModelLoadError(f"{repo_id} is not a folder here, and {line}") from None
    return Path(folder)


def _not_cached(repo_id: str, revision: str | None, exc: BaseException, *, offline: bool, unreachable: bool) -> str:
    from huggingface_hub import constants

    from textheads.hub.failures import first_line, incomplete_snapshot

    what = f"{repo_id} is not a folder here, and as a Hugging Face Hub id (revision {revision or 'main'})"
    if incomplete_snapshot(exc):
        return f"{what} its snapshot in the cache {constants.HF_HUB_CACHE} is incomplete and cannot be completed now: download it again online"
    if offline:
        return f"{what} it is not in the cache {constants.HF_HUB_CACHE}, and HF_HUB_OFFLINE=1 stops downloads: check the id and revision, or unset HF_HUB_OFFLINE to download it"
    if unreachable:
        return f"{what} it is not in the cache {constants.HF_HUB_CACHE}, and the Hub at {constants.ENDPOINT} cannot be reached: check the connection (or HF_ENDPOINT)"
    return f"{what} it is not in the cache {constants.HF_HUB_CACHE} and could not be fetched: {first_line(exc)}"
