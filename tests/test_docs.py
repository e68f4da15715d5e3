"""The README starts with the quickstart, and every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_first_screen_is_the_quickstart():
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:45])
    assert "## Quickstart" in first_screen
    for needed in (
        "make run",
        "make test",
        "Python 3.11",
        "GB",
        "min",
        ".custseg/exports/powerbi/",
        ".custseg/reports/latest.html",
        "custseg check --config",
    ):
        assert needed in first_screen, needed
    assert len((REPO / "README.md").read_text().splitlines()) < 200


def test_relative_links_in_the_readme_and_docs_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken
