"""Atomic writes: a reader (or a resumed run) never sees half a file or half a checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush every file under `path` to disk."""
    for file in path.rglob("*"):
        if file.is_file():
            with file.open("rb+") as handle:
                os.fsync(handle.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file via a temporary file and a rename.

    The file gets the permissions a plain `open` would give it (the umask's), or keeps those
    of the file it replaces: not the owner-only mode of a temporary file, so a report or
    metrics file can be shared as any other file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)  # reading the umask means setting it: put it back at once
        os.umask(umask)
        return 0o666 & ~umask


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def staging_directory(target: Path) -> Iterator[Path]:
    """A hidden temporary folder beside `target` (`.tmp-NAME-XXXXXXXX`) to build it in; removed
    on the way out unless it was moved into place meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes `target` (replacing it) only on success."""
    with staging_directory(target) as tmp:
        yield tmp
        fsync_tree(tmp)
        if target.exists():
            old = target.with_name(f".old-{target.name}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        fsync_dir(target.parent)


def publish_files(source: Path, target: Path) -> list[str]:
    """Move every file of `source` into `target`, each by an atomic rename.

    Used for the model directory, which also holds `checkpoints/` and logs and
    so cannot be swapped as a whole. Each file is whole at every moment; the
    weights go last, and a config and weights from two saves of one run
    describe the same architecture, so the pair always loads. Returns the names moved.
    """
    target.mkdir(parents=True, exist_ok=True)
    fsync_tree(source)
    files = sorted(source.iterdir(), key=lambda f: f.suffix == ".safetensors")
    for file in files:
        os.replace(file, target / file.name)
    fsync_dir(target)
    shutil.rmtree(source, ignore_errors=True)
    return [file.name for file in files]
