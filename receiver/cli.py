"""`flask --app receiver preview NOTICE`: render a notice with sample data for a person to read.

Registered as a Flask CLI plugin (pyproject `flask.commands`), so it runs without the app's
start-up checks: previewing an email needs no Redis and no webhook secrets.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import click

from .config import Config
from .delivery.emails import EMAIL_TEMPLATES, NOTICES, EmailRenderer
from .delivery.samples import SAMPLE_CONTEXTS


@click.command("preview")
@click.argument("notice", type=click.Choice(NOTICES))
@click.option(
    "--out",
    "out_dir",
    default="var/preview",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for NOTICE.html, NOTICE.txt and NOTICE.subject.txt.",
)
def preview(notice: str, out_dir: Path) -> None:
    """Render NOTICE with sample data to HTML and text files."""
    renderer = EmailRenderer(
        EMAIL_TEMPLATES,
        brand_name=os.environ.get("BRAND_NAME", Config.BRAND_NAME),
        support_email=os.environ.get("SUPPORT_EMAIL", Config.SUPPORT_EMAIL),
    )
    email = renderer.render(notice, copy.deepcopy(SAMPLE_CONTEXTS[notice]))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out_dir / f"{notice}.html",
        "text": out_dir / f"{notice}.txt",
        "subject": out_dir / f"{notice}.subject.txt",
    }
    paths["html"].write_text(email.html, encoding="utf-8")
    paths["text"].write_text(email.text, encoding="utf-8")
    paths["subject"].write_text(email.subject + "\n", encoding="utf-8")
    click.echo(f"Subject: {email.subject}")
    for kind, path in paths.items():
        click.echo(f"{kind:8} {path}")
