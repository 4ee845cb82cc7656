"""Atomic writes keep the permissions a plain write would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from textheads.io import write_json_atomic, write_text_atomic


def test_a_new_file_gets_the_umask_permissions_not_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "report.html", "<html></html>")
        write_json_atomic(tmp_path / "metrics.json", {"a": {"b": 1}})
    finally:
        os.umask(old)
    for name in ("report.html", "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("{}")
    path.chmod(0o600)
    write_json_atomic(path, {"a": {"b": 1}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("{")
