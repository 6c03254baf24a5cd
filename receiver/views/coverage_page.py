"""The contractor's own coverage page, reached from the signed link in every email.

It shows each assignment and policy by its job's name, with the payments for it (charged,
failed, upcoming: coverage/payments.py) in the contractor's time zone, in the emails' look.

No login: the link's signature says whom the page is for (coverage/links.py). A bad link gets
a plain HTML page with a 4xx status: 410 once it has expired (the contractor should use a newer
email), 404 when it was tampered with, truncated, or links are not configured. The token is in
the URL, so the page is never cached, never indexed, and sends no Referer when the contractor
follows a certificate link.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template
from redis import Redis
from redis.exceptions import RedisError

from ..coverage import document as coverage
from ..coverage.links import LinkExpired, LinkInvalid, read_token
from ..coverage.payments import Charge, Payments, charges
from ..coverage.store import load
from ..delivery.emails import date_words, datetime_words, job_words, money
from ..notices.jobs import Jobs
from ..resources import template_root
from ..store import keys
from ..store.connection import text

bp = Blueprint("coverage_page", __name__, template_folder=str(template_root()))

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    # frame-ancestors: no other site may frame the page to trick a click or a read
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "Content-Type": "text/html; charset=utf-8",
}
_WITHDRAWN = {"cancelled", "inactive"}
_DOCUMENT_NAMES = {
    "gl_coi_pdf_url": "General liability certificate",
    "wc_coi_pdf_url": "Workers' comp certificate",
    "pdf_url": "Policy document",
}
_STATUS_WORDS = {
    "active": "Active",
    "cancelled": "Cancelled",
    "expired": "Ended",
    "inactive": "Inactive",
    None: "Not active yet",
}
_TYPE_WORDS = {"general": "General liability", "workers-comp": "Workers' comp"}
# What each payment state is called, and the word before its time.
_CHARGE_WORDS = {
    "charged": ("Charged", "on"),
    "failed": ("Payment failed", "on"),
    "upcoming": ("Upcoming", "on"),
    "processing": ("Being charged", "due on"),
    "cancelled": ("Not charged", "the {kind} was {cancelled} on"),
    "remit": ("Billed to your organization", "due on"),
}


def _day(timestamp: int | None, zone: str | None) -> str:
    """A date in the contractor's zone, without its weekday: "March 5, 2024"."""
    if timestamp is None:
        return "—"
    try:
        return date_words(timestamp, zone).split(", ", 1)[1]
    except (ValueError, OverflowError, OSError):  # a date Python cannot represent
        return "—"


def _moment(timestamp: int | None, zone: str | None) -> str | None:
    try:
        return None if timestamp is None else datetime_words(timestamp, zone)
    except (ValueError, OverflowError, OSError):
        return None


def _contact(redis: Redis, contractor: str) -> tuple[str, str | None]:
    """The contractor's first name and time zone, as their contact (notices/contacts.py) holds
    them; the zone is the one their emails use, so the page and the emails agree."""
    first, zone = (
        text(v) for v in redis.hmget(keys.contractor(contractor), "first_name", "timezone")
    )
    return first or "", zone or None


def _payment(charge: Charge, zone: str | None) -> dict[str, Any]:
    label, before = _CHARGE_WORDS[charge.state]
    cancelled = "voided" if charge.kind == "invoice" else "cancelled"
    before = before.format(kind=charge.kind, cancelled=cancelled)
    when = _moment(charge.at, zone)
    notes = []
    if charge.state == "failed":
        notes.append("Update your card on file to keep your coverage.")
        if charge.failure:
            notes.insert(0, f"Reason: {charge.failure}")
    if charge.repriced_cents is not None and charge.amount_cents is not None:
        change = charge.repriced_cents - charge.amount_cents
        then = (
            f"an additional {money(change)} will be charged"
            if change > 0
            else f"a refund of {money(-change)} is being processed"
        )
        now_cents = money(charge.repriced_cents)
        notes.append(f"The premium was re-priced to {now_cents} after this charge: {then}.")
    earlier = _moment(charge.failed_at, zone)
    if earlier:
        notes.append(f"An earlier attempt failed on {earlier}.")
    return {
        "state": charge.state,
        "label": label,
        "when": f"{before} {when}" if when else "date not known yet",
        "amount": money(charge.amount_cents) if charge.amount_cents is not None else "—",
        "notes": notes,
    }


def _reference(charge: Charge) -> str:
    """A payment's ids: its invoice (the number 1099Policy and the emails use), else its own."""
    return f"invoice {charge.invoice}" if charge.invoice else f"{charge.kind} {charge.id}"


def _card(
    state: dict[str, Any] | None,
    what: str,
    job: dict[str, Any],
    own: list[Charge],
    zone: str | None,
) -> dict[str, Any]:
    """What the template shows of one policy or assignment and its payments.

    A cancelled object's certificates are not offered: a contractor could otherwise hand a
    client proof of coverage that no longer exists.
    """
    state = state or {}
    status = state.get("status")
    documents = {} if status in _WITHDRAWN else state.get("documents") or {}
    refs = [f"{what.lower()} {state['id']}"] if state.get("id") else []
    refs += [f"job {job['id']}"] if job.get("id") else []
    return {
        "title": job_words(job, what),
        "status": (
            _STATUS_WORDS.get(status, (status or "unknown").replace("_", " ").capitalize())
            if state
            else None  # a payment of no assignment or policy shown
        ),
        "status_class": status if status in _STATUS_WORDS else "other",
        "dates": (
            f"{_day(state.get('effective_date'), zone)} to {_day(state.get('end_date'), zone)}"
            if state.get("effective_date") or state.get("end_date")
            else None
        ),
        "types": ", ".join(_TYPE_WORDS.get(t, t) for t in state.get("coverage_types") or []),
        "documents": [
            (_DOCUMENT_NAMES.get(name, name), link) for name, link in sorted(documents.items())
        ],
        "payments": [_payment(c, zone) for c in own],
        "reference": " · ".join(dict.fromkeys(refs + [_reference(c) for c in own])),
    }


def _cards(
    doc: dict[str, Any], paid: list[Charge], jobs: Jobs, zone: str | None
) -> dict[str, list[dict[str, Any]]]:
    """Assignments (those 1099Policy reported, and those only the platform has so far), then
    policies, each with the payments for its job; payments of no shown job come last."""
    public = coverage.public(doc)

    def job(job_id: str | None) -> dict[str, Any]:
        known = jobs.get(job_id) if job_id else {}
        return {"id": job_id, "name": known.get("name"), "entity": known.get("entity_name")}

    left = list(paid)

    def take(test: Any) -> list[Charge]:
        mine = [c for c in left if test(c)]
        for c in mine:
            left.remove(c)
        return mine

    assignments = []
    known = {a["id"] for a in public["assignments"]}
    states = public["assignments"] + [
        {"id": c.id, "job": c.job} for c in paid if c.kind == "assignment" and c.id not in known
    ]
    for state in states:
        own = take(
            lambda c, s=state: (
                (c.kind == "assignment" and c.id == s["id"])
                or (c.job is not None and c.job == s.get("job"))
            )
        )
        assignments.append(_card(state, "Assignment", job(state.get("job")), own, zone))
    policies = []
    for state in public["policies"]:
        names = coverage.policy_jobs(doc, state)
        own = take(lambda c, names=names: c.job in names)
        first = job(names[0] if names else None)
        if len(names) > 1:  # a policy for several jobs: name them all
            first["name"] = ", ".join(job_words(job(n), n) for n in names)
            first["entity"] = None
        policies.append(_card(state, "Policy", first, own, zone))
    others = [_card(None, "Insurance payment", job(c.job), [c], zone) for c in left]
    return {"assignments": assignments, "policies": policies, "others": others}


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
    redis = current_app.extensions["redis"]
    try:
        doc = load(redis, contractor)
        paid = charges(Payments(redis, 0).entries(contractor), int(now))
        first_name, zone = _contact(redis, contractor)
        if doc is None and paid:  # the platform reported a charge before 1099Policy wrote
            doc = coverage.empty(contractor)
        cards = _cards(doc, paid, Jobs(redis, 0), zone) if doc is not None else {}
    except RedisError:
        return _page("coverage/link_error.html", 503, reason="unavailable")
    if doc is None:
        return _page("coverage/page.html", 200, known=False, first_name=first_name)
    return _page(
        "coverage/page.html",
        200,
        known=True,
        first_name=first_name,
        covered_now=coverage.covered_now(doc, int(now))["covered"],
        certificates=[
            {
                "filename": c["filename"],
                "status": (c["status"] or "unknown").replace("_", " "),
                "documents": [] if c["status"] in _WITHDRAWN else sorted(c["documents"].items()),
            }
            for c in coverage.public(doc)["certificates"]
        ],
        as_of=_day(int(now), zone),
        **cards,
    )
