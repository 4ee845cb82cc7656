"""Where an ONNX export may be written, and how it replaces an earlier export.

textheads replaces a folder only when it wrote it. The output folder must not
exist yet, be empty, or be an earlier textheads export (a valid manifest) that
holds nothing but the files that export wrote. The new export is built in a
hidden folder beside the target and moved into place by renames; the earlier
export's own files are then removed one by one, so that a file put there by
someone else in the meantime survives.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from textheads.errors import ConfigError, ModelLoadError
from textheads.export.manifest import MANIFEST, read_manifest
from textheads.io import fsync_dir, fsync_tree
from textheads.ownership import UNLISTED_EXPORT_FILES
from textheads.training.checkpoint import checkpoint_dir


def check_export_target(target: Path, model_dir: Path) -> None:
    """Refuse an output folder that textheads may not replace (see the module docstring)."""
    target, model_dir = target.resolve(), model_dir.resolve()
    if target == model_dir or target in model_dir.parents:
        raise ConfigError(f"the output folder {target} is or contains the model directory {model_dir}; choose another folder with --output")
    if target.is_relative_to(checkpoint_dir(model_dir)):
        raise ConfigError(f"the output folder {target} lies inside the model's checkpoints, which training rewrites; choose another folder with --output")
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(f"the output folder {target} is a file; choose another folder with --output")
    is_export = (target / MANIFEST).exists()
    foreign = foreign_entries(target) if is_export else sorted(entry.name for entry in target.iterdir())
    if not foreign:
        return
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    what = "is a textheads export that also holds files it did not write" if is_export and foreign != _names(target) else "is not a textheads export"
    raise ConfigError(
        f"the output folder {target} already exists and {what} ({shown}); textheads only replaces an export it wrote. "
        "Choose another folder with --output, or empty this one yourself."
    )


def _names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def foreign_entries(folder: Path) -> list[str]:
    """Names in an export folder that the export did not write (all of them if its manifest is not valid)."""
    names = _names(folder)
    try:
        manifest = read_manifest(folder)
    except ModelLoadError:
        return names
    owned = set(manifest.get("files") or UNLISTED_EXPORT_FILES) | {MANIFEST}
    return [name for name in names if name not in owned or not (folder / name).is_file() or (folder / name).is_symlink()]


def publish_export(staging: Path, target: Path) -> list[str]:
    """Move the finished export in `staging` to `target` (checked by `check_export_target`).

    Returns the names of anything that appeared in an earlier export at
    `target` meanwhile and so was kept, in a hidden folder beside it.
    """
    fsync_tree(staging)
    if not target.exists() or not any(target.iterdir()):
        # rename(2) replaces an empty folder, and fails if something was written into it meanwhile.
        _rename_into_place(staging, target)
        return []
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".old-{target.name}-"))
    os.replace(target, old)
    try:
        _rename_into_place(staging, target)
    except ConfigError:
        with contextlib.suppress(OSError):  # something took its place meanwhile; else the earlier export stays in `old`
            os.replace(old, target)
        raise
    kept = foreign_entries(old)
    for name in {entry.name for entry in old.iterdir()} - set(kept):
        (old / name).unlink()
    if not kept:
        old.rmdir()
    return [str(old / name) for name in kept]


def _rename_into_place(staging: Path, target: Path) -> None:
    try:
        os.replace(staging, target)
    except OSError as exc:
        raise ConfigError(f"cannot move the export into {target}: {exc.strerror or exc} (did something else write there meanwhile?)") from None
    fsync_dir(target.parent)
