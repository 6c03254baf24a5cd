"""docs/notifications.md's "Sample subjects" table lists every notice, and its subjects are what
the templates render (so the table cannot drift from the emails); the spec's main table names
every notice."""

from __future__ import annotations

import copy
from pathlib import Path

from receiver.config import Config
from receiver.delivery.emails import EMAIL_TEMPLATES, NOTICES, EmailRenderer
from receiver.delivery.samples import SAMPLE_CONTEXTS

ROOT = Path(__file__).resolve().parents[1]


def subject_rows() -> dict[str, list[str]]:
    """The rows of the "Sample subjects" table, by notice id."""
    text = (ROOT / "docs" / "notifications.md").read_text()
    section = text.split("## Sample subjects", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_the_subjects_table_has_one_row_per_notice_with_its_rendered_subject() -> None:
    rows = subject_rows()
    assert sorted(rows) == sorted(NOTICES)
    renderer = EmailRenderer(
        EMAIL_TEMPLATES, brand_name=Config.BRAND_NAME, support_email=Config.SUPPORT_EMAIL
    )
    for notice, cells in rows.items():
        assert len(cells) == 2, notice  # notice, subject
        subject = renderer.render(notice, copy.deepcopy(SAMPLE_CONTEXTS[notice])).subject
        assert cells[-1] == subject, notice


def test_the_notification_spec_names_every_notice() -> None:
    spec = (ROOT / "docs" / "notifications.md").read_text()
    for notice in NOTICES:
        assert f"| `{notice}`" in spec, notice
