"""`flask --app receiver preview NOTICE` writes a readable email, with no services configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from receiver.delivery.emails import NOTICES

FLASK = str(Path(sys.executable).parent / "flask")


@pytest.mark.parametrize("notice", NOTICES)
def test_preview_writes_html_and_text(tmp_path, notice):
    env = {"PATH": "/usr/bin:/bin", "BRAND_NAME": "Gigly"}
    proc = subprocess.run(
        [FLASK, "--app", "receiver", "preview", notice, "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / f"{notice}.html").read_text()
    text = (tmp_path / f"{notice}.txt").read_text()
    assert "Gigly" in html and "Gigly" in text
    # the notices about an address, a missing coverage and a creator's profile, not money
    if notice not in (
        "address_suppressed_rep",
        "coverage_missing_rep",
        "creatoriq_sync_blocked_rep",
        "creatoriq_sync_missing_rep",
    ):
        assert "$" in text and "$" in html
    assert proc.stdout.startswith("Subject: ")


def test_preview_unknown_notice_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [FLASK, "--app", "receiver", "preview", "nope", "--out", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "nope" in proc.stderr
