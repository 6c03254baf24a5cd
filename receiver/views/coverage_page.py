"""The contractor's own coverage page, reached from the signed link in every email.

No login: the link's signature says whom the page is for (coverage/links.py). A bad link gets
a plain HTML page with a 4xx status: 410 once it has expired (the contractor should use a newer
email), 404 when it was tampered with, truncated, or links are not configured. The token is in
the URL, so the page is never cached, never indexed, and sends no Referer when the contractor
follows a certificate link.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template
from redis.exceptions import RedisError

from ..coverage import document as coverage
from ..coverage.links import LinkExpired, LinkInvalid, read_token
from ..coverage.store import load

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
bp = Blueprint("coverage_page", __name__, template_folder=str(TEMPLATES))

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Content-Type": "text/html; charset=utf-8",
}
_WITHDRAWN = {"cancelled", "inactive"}
_DOCUMENT_NAMES = {
    "gl_coi_pdf_url": "General liability certificate",
    "wc_coi_pdf_url": "Workers' comp certificate",
    "pdf_url": "Policy document",
}


def _day(timestamp: int | None) -> str:
    if timestamp is None:
        return "—"
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%B %-d, %Y")
    except (ValueError, OverflowError, OSError):  # a date Python cannot represent
        return "—"


def _rows(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """What the template shows of each policy or assignment (or certificate review).

    A cancelled object's certificates are not offered: a contractor could otherwise hand a
    client proof of coverage that no longer exists.
    """
    rows = []
    for state in coverage.public(doc)[kind]:
        job = state["job"]
        if kind == "policies":
            job = ", ".join(coverage.policy_jobs(doc, state)) or None
        documents = {} if state["status"] in _WITHDRAWN else state["documents"]
        rows.append(
            {
                "id": state["id"],
                "status": (state["status"] or "unknown").replace("_", " "),
                "job": job,
                "start": _day(state["effective_date"]),
                "end": _day(state["end_date"]),
                "types": ", ".join(state["coverage_types"] or []),
                "documents": [
                    (_DOCUMENT_NAMES.get(name, name), link)
                    for name, link in sorted(documents.items())
                ],
                "filename": state["filename"],
            }
        )
    return rows


def _page(template: str, status: int, **context: Any) -> tuple[str, int, dict[str, str]]:
    cfg = current_app.config["RECEIVER"]
    html = render_template(
        template, brand_name=cfg.BRAND_NAME, support_email=cfg.SUPPORT_EMAIL, **context
    )
    return html, status, _HEADERS


@bp.get("/coverage/<token>")
def page(token: str) -> tuple[str, int, dict[str, str]]:
    cfg = current_app.config["RECEIVER"]
    now = current_app.extensions["clock"]()
    if not cfg.SECRET_KEY:
        return _page("coverage/link_error.html", 404, reason="invalid")
    try:
        contractor = read_token(
            cfg.SECRET_KEY, token, cfg.COVERAGE_LINK_MAX_AGE_DAYS * 86400, now=now
        )
    except LinkExpired:
        return _page("coverage/link_error.html", 410, reason="expired")
    except LinkInvalid:
        return _page("coverage/link_error.html", 404, reason="invalid")
    try:
        doc = load(current_app.extensions["redis"], contractor)
    except RedisError:
        return _page("coverage/link_error.html", 503, reason="unavailable")
    if doc is None:
        return _page("coverage/page.html", 200, known=False)
    return _page(
        "coverage/page.html",
        200,
        known=True,
        covered_now=coverage.covered_now(doc, int(now))["covered"],
        policies=_rows(doc, "policies"),
        assignments=_rows(doc, "assignments"),
        certificates=_rows(doc, "certificates"),
        as_of=_day(int(now)),
    )
