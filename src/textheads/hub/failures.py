"""huggingface_hub's errors as one line that says what to do.

What differs between huggingface_hub versions (its HTTP client: httpx2 from 2.0,
httpx before; the incomplete-snapshot check) is known here only.
"""

from __future__ import annotations

import importlib

from huggingface_hub import constants
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalTokenNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

TOKEN_HINT = "set HF_TOKEN (or run `hf auth login`) with a token that may read it"


def transport_errors() -> tuple[type[Exception], ...]:
    """The network errors (connection refused, timeout) of the HTTP client huggingface_hub uses."""
    found = []
    for module in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def incomplete_snapshot(exc: BaseException) -> bool:
    """True when `exc` says a cached snapshot misses files (a check huggingface_hub 2 added)."""
    try:
        from huggingface_hub.errors import IncompleteSnapshotError
    except ImportError:
        return False
    return isinstance(exc, IncompleteSnapshotError)


def unreachable(exc: BaseException) -> bool:
    """True when `exc`, or the error it was raised from, is a network failure."""
    errors = transport_errors()
    return any(isinstance(e, errors) for e in (exc, exc.__cause__, exc.__context__) if e is not None)


def describe(exc: BaseException, repo_id: str, revision: str | None) -> str | None:
    """One line for an error huggingface_hub raised about `repo_id`, or None for one it did not."""
    at = f" at revision {revision!r}" if revision else ""
    if isinstance(exc, OfflineModeIsEnabled):
        return f"HF_HUB_OFFLINE=1 is set, so the Hugging Face Hub is not contacted for {repo_id}: unset it to go online"
    if isinstance(exc, GatedRepoError):
        return f"{repo_id} is a gated model on the Hugging Face Hub: accept its conditions on its page, then {TOKEN_HINT}"
    if isinstance(exc, RepositoryNotFoundError):
        return f"the Hugging Face Hub has no model {repo_id} that this token may read (it may not exist, or be private or gated): check the id, or {TOKEN_HINT}"
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo_id} has no branch, tag or commit {revision!r} on the Hugging Face Hub"
    if isinstance(exc, LocalTokenNotFoundError):
        return f"no Hugging Face token for {repo_id}: {TOKEN_HINT}"
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return f"the Hugging Face Hub refused access to {repo_id}{at} (HTTP {status}): {TOKEN_HINT}, and with write access to push"
        return f"the Hugging Face Hub answered HTTP {status} for {repo_id}{at}: {first_line(exc)}"
    if unreachable(exc):
        return f"cannot reach the Hugging Face Hub at {constants.ENDPOINT} for {repo_id} ({first_line(exc)}): check the connection (or HF_ENDPOINT)"
    return None


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error's message (huggingface_hub's run over several)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
