"""The handbook stays true to the code and to itself: docs/configuration.md has one row per
setting of receiver/config.py (both ways), every relative link in README.md and docs/ reaches a
file and a heading that exist, and MkDocs builds the site with --strict (mkdocs.yml)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from dataclasses import fields
from pathlib import Path

import pytest

from receiver.config import Config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The page without fenced code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def settings_in_table(text: str) -> list[str]:
    """The setting names of the configuration table's rows, in order (a row may name two)."""
    names = []
    for line in table_rows(text):
        first = line.strip().strip("|").split("|")[0]
        names += re.findall(r"`([A-Z][A-Z0-9_]+)`", first)
    return names


def table_rows(text: str) -> list[str]:
    """The rows of the page's first table (header and rule left out)."""
    rows, started = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            started = True
            if not line.startswith("|---") and "`" in line.split("|")[1]:
                rows.append(line)
        elif started:
            break
    return rows


def test_the_configuration_table_has_one_row_per_setting_and_no_other() -> None:
    names = settings_in_table((ROOT / "docs" / "configuration.md").read_text())
    assert len(names) == len(set(names)), "a setting listed twice"
    settings = {f.name for f in fields(Config)}
    assert sorted(settings - set(names)) == [], "settings of receiver/config.py without a row"
    assert sorted(set(names) - settings) == [], "rows naming no setting of receiver/config.py"


def slugs(text: str) -> set[str]:
    """The anchors of a page's headings, as both MkDocs (Python-Markdown's toc) and GitHub
    make them; a link must work in both, so only anchors they agree on count."""
    mkdocs, github = set(), set()
    for line in FENCE.sub("", text).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        title = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))
        norm = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        mkdocs.add(re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", norm).strip().lower()))
        github.add(re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-"))
    return mkdocs & github


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text())) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in slugs(dest.read_text()):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_the_link_check_sees_links_and_anchors() -> None:
    """The checks above cannot pass by finding nothing."""
    assert "docs/configuration.md" in links(ROOT / "README.md")
    assert "processing-and-delivery" in slugs("## Processing and delivery\n")
    assert "the-operators-console" in slugs("## The operator's console\n")
    assert "not-a-link" not in slugs("```\n# not a link\n```\n")
    table = "| variable | default |\n|---|---|\n| `A_B`, `C_D` | 1 |\n\n| `D` | 2 |\n"
    assert settings_in_table(table) == ["A_B", "C_D"]


def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    """Every page in the nav, every link and anchor resolved (mkdocs.yml's validation)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice about its successor
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "configuration" / "index.html").exists()
