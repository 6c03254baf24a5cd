"""The console's view of notice records: pages by state, one record with its email as the
recipient sees it, and the operator's retry and cancel (delivery/records.py moves the state).

The states a person filters by are the record's send state refined by what SendGrid reported
(its `delivery` field) and by time: a pending record due later is `scheduled`; an accepted one
SendGrid delivered is `delivered`, one it bounced or dropped is `bounced`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from ..delivery.emails import NOTICES
from ..delivery.sending import Sender
from ..delivery.suppressions import Suppressions
from ..errors import BadRequest, NotFound
from ..notices.ledger import Ledger
from ..pipeline.runtime import Runtime
from ..store import keys
from ..store.connection import text
from . import events
from .bursts import coalesced
from .events import parse_filter
from .masking import mask_email, mask_recipient
from .paging import Page, newest_first

STATES = (
    "pending",
    "awaiting_contact",
    "scheduled",
    "sending",
    "accepted",
    "delivered",
    "bounced",
    "suppressed",
    "failed",
    "cancelled",
)
_BOUNCED = {"bounced", "dropped"}
_LIST_FIELDS = (
    "id",
    "notice",
    "state",
    "recipient",
    "to_email",
    "created_at",
    "updated_at",
    "send_at",
    "attempts",
    "delivery",
    "last_error",
)
_ID = re.compile(r"nt_[0-9a-f]{32}")


def shown_state(rec: Mapping[str, str], now: float) -> str:
    """The state a person sees (see the module docstring)."""
    state = rec.get("state", "")
    if state == "pending" and float(rec.get("send_at") or 0) > now:
        return "scheduled"
    if state == "accepted":
        delivery = rec.get("delivery", "")
        if delivery == "delivered":
            return "delivered"
        if delivery in _BOUNCED:
            return "bounced"
    return state


@dataclass(frozen=True)
class NoticeFilter:
    state: str = ""
    notice: str = ""
    contractor: str = ""
    since: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


def parse_notice_filter(raw: Mapping[str, Any]) -> NoticeFilter:
    extra = sorted(set(raw) - {"state", "notice", "contractor", "since", "cursor", "limit"})
    if extra:
        raise BadRequest(f"unknown filter {extra[0]}")
    state, notice = raw.get("state") or "", raw.get("notice") or ""
    if state and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    if notice and notice not in NOTICES:
        raise BadRequest("notice must be a notice name (see the console's previews)")
    # contractor and since are checked as the events filter checks them
    common = parse_filter({k: raw[k] for k in ("contractor", "since") if k in raw})
    return NoticeFilter(state, notice, common.contractor, common.since)


def valid_id(rid: str) -> bool:
    return bool(_ID.fullmatch(rid))


def _rows(redis: Redis, members: Sequence[str]) -> list[dict[str, str] | None]:
    pipe = redis.pipeline(transaction=False)
    for member in members:
        pipe.hmget(member, *_LIST_FIELDS)
    out: list[dict[str, str] | None] = []
    for values in pipe.execute():
        if values[0] is None:
            out.append(None)
        else:
            out.append(dict(zip(_LIST_FIELDS, (text(v) for v in values), strict=True)))
    return out


def summary(rec: Mapping[str, str], now: float, masked: bool = True) -> dict[str, Any]:
    """A record as lists show it: the address masked unless `masked` is False."""
    email = rec.get("to_email", "")
    return {
        "id": rec["id"],
        "notice": rec["notice"],
        "state": shown_state(rec, now),
        "recipient": mask_recipient(rec["recipient"]) if masked else rec["recipient"],
        "to": (mask_email(email) if masked else email) or None,
        "created_at": float(rec.get("created_at") or 0),
        "updated_at": float(rec.get("updated_at") or 0),
        "send_at": float(rec["send_at"]) if rec.get("send_at") else None,
        "attempts": int(rec.get("attempts") or 0),
        "delivery": rec.get("delivery") or None,
        "last_error": rec.get("last_error") or None,
    }


def page(redis: Redis, f: NoticeFilter, now: float, limit: int, cursor: str | None) -> Page:
    index = keys.notices_of_contractor(f.contractor) if f.contractor else keys.NOTICES_INDEX

    def keep(chunk: Sequence[tuple[str, float]]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for rec in _rows(redis, [member for member, _score in chunk]):
            if rec is None or (f.notice and rec["notice"] != f.notice):
                out.append(None)
            elif f.state and shown_state(rec, now) != f.state:
                out.append(None)
            else:
                out.append(summary(rec, now))
        return out

    return newest_first(redis, index, keep, limit, cursor, since=f.since)


def summaries(redis: Redis, rids: Sequence[str], now: float) -> list[dict[str, Any]]:
    """Records by id (for an event's outcome and a timeline), masked like a list."""
    rows = _rows(redis, [keys.notice(rid) for rid in rids])
    return [summary(rec, now) for rec in rows if rec is not None]


def detail(
    redis: Redis,
    sender: Sender,
    suppressions: Suppressions,
    ledger: Ledger,
    rid: str,
    now: float,
    lookups: bool = False,
) -> dict[str, Any] | None:
    """One record in full: state, attempts, SendGrid's message id and errors, what SendGrid
    reported, whether its address is suppressed, what a change notice coalesced (its burst of
    re-prices, console/bursts.py), and its email rendered (subject, HTML, text) as a send now
    would render it."""
    raw = redis.hgetall(keys.notice(rid))
    if not raw:
        return None
    rec = {text(k): text(v) for k, v in raw.items()}
    out = summary(rec, now, masked=False)
    out.update(
        cause=rec.get("cause", ""),
        message_id=rec.get("message_id") or None,
        errors=json.loads(rec["errors"]) if rec.get("errors") else [],
        retried_by=rec.get("retried_by") or None,
        accepted_by=rec.get("accepted_by") or None,
        resend_at=float(rec["resend_at"]) if rec.get("resend_at") else None,
        resent_at=float(rec["resent_at"]) if rec.get("resent_at") else None,
        delivery_events={
            "count": int(rec.get("delivery_events") or 0),
            "latest": rec.get("delivery") or None,
            "at": float(rec["delivery_at"]) if rec.get("delivery_at") else None,
            "reason": rec.get("delivery_reason") or None,
            "type": rec.get("delivery_type") or None,
            "log": _delivery_log(rec.get("delivery_log", "")),
        },
    )
    out["waiting"] = (
        _waiting(redis, rec, lookups) if rec.get("state") == "awaiting_contact" else None
    )
    out["burst"] = coalesced(ledger, rec)
    listed = suppressions.get(rec.get("to_email", "")) if rec.get("to_email") else None
    out["suppression"] = None if listed is None else {"reason": listed.reason, "at": listed.at}
    try:
        email = sender.rendered(rec)
        out["email"] = {"subject": email.subject, "html": email.html, "text": email.text}
        out["render_error"] = None
    except Exception as exc:  # a record the templates cannot render: say so, show the rest
        out["email"] = None
        out["render_error"] = type(exc).__name__
    return out


def _waiting(redis: Redis, rec: Mapping[str, str], lookups: bool) -> dict[str, Any]:
    """What an `awaiting_contact` record waits for: the contractor whose email is unknown,
    whether the workers look it up in 1099Policy's API (`lookups`: an API key is set) and
    when they next do."""
    contractor = rec.get("waiting_for", "")
    at = redis.zscore(keys.NOTICES_AWAITING, contractor) if contractor else None
    return {"contractor": contractor, "lookups": lookups, "next_lookup": at}


def _delivery_log(raw: str) -> list[dict[str, Any]]:
    """SendGrid's events of a record (the newest 20 the Event Webhook sent), in time order."""
    try:
        entries = json.loads(raw) if raw else []
    except ValueError:
        return []
    log = [
        {"event": str(e[0]), "at": float(e[1] or 0), "reason": str(e[2]) or None}
        for e in entries
        if isinstance(e, list) and len(e) == 3
    ]
    return sorted(log, key=lambda e: e["at"])


def record_or_404(rt: Runtime, rid: str) -> dict[str, Any]:
    """A record's detail (see `detail`), or NotFound."""
    lookups = bool(rt.cfg.TEN99POLICY_API_KEY)
    found = (
        detail(rt.redis, rt.sender, rt.suppressions, rt.ledger, rid, rt.clock(), lookups)
        if valid_id(rid)
        else None
    )
    if found is None:
        raise NotFound("no such notice record")
    return found


def event_or_404(rt: Runtime, source: str, event_id: str) -> dict[str, Any]:
    """An event's detail with its outcome's notice records summarised, or NotFound."""
    found = events.detail(rt.redis, source, event_id) if 0 < len(event_id) <= 200 else None
    if found is None:
        raise NotFound("no such event is stored (or it is past EVENT_RETENTION_DAYS)")
    found["outcome"]["notices"] = summaries(rt.redis, found["outcome"]["notices"], rt.clock())
    return found
