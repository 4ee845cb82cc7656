"""The README and docs stay true to the repository: every module in the layout, every
link inside the repository, and the licence the package declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "textheads"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _layout() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_the_readme_layout_names_every_module() -> None:
    layout = _layout()
    modules = sorted(p for p in PACKAGE.rglob("*.py") if "examples" not in p.parts and p.name != "__main__.py")
    missing = [str(p.relative_to(PACKAGE)) for p in modules if p.name not in layout]
    assert not missing, f"README layout does not mention {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_stay_inside_the_repository_and_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text and "BASELINES.md" not in text
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name} links to {target}"


def test_the_licence_file_is_the_one_pyproject_declares() -> None:
    # (tomllib is not in Python 3.10, which the package supports)
    declared = re.search(r'^license = \{ text = "([^"]+)" \}', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)
    assert declared is not None and declared.group(1) == "Apache-2.0"
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence

