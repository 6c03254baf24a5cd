"""A contractor's timeline: their events, coverage transitions, notices and what SendGrid
reported of each, joined in one time-ordered list (newest first); and the summary above it
(covered now, by what, until when; open bills; notices waiting or failed)."""

from __future__ import annotations

from typing import Any

from redis import Redis

from ..coverage.document import covered_now
from ..coverage.payments import Payments, charges
from ..coverage.store import load
from ..store import keys
from ..store.connection import text
from . import events, notices
from .masking import mask_email, mask_name

LIMIT = 200
OPEN_BILLS = ("upcoming", "processing", "failed")
WAITING = ("pending", "scheduled", "awaiting_contact")


def summary(
    redis: Redis, payments: Payments, contractor: str, items: list[dict[str, Any]], now: float
) -> dict[str, Any]:
    """What a support question asks first: is the contractor covered now, by what and until
    when; which bills are open (due, being charged, or failed); which of their notices (among
    the timeline's) wait or failed."""
    doc = load(redis, contractor)
    coverage = covered_now(doc, int(now)) if doc else {"covered": False, "by": []}
    bills = [c for c in charges(payments.entries(contractor), int(now)) if c.state in OPEN_BILLS]
    listed = [item["notice"] for item in items if item["kind"] == "notice"]
    return {
        "known": bool(doc or items),
        "covered": coverage["covered"],
        "by": coverage["by"],
        "bills": bills,
        "waiting": [n for n in listed if n["state"] in WAITING],
        "failed": [n for n in listed if n["state"] == "failed"],
    }


def timeline(redis: Redis, contractor: str, now: float) -> list[dict[str, Any]]:
    """The newest LIMIT events and notices of the contractor, and their coverage history."""
    items: list[dict[str, Any]] = []
    found = events.page(redis, events.EventFilter(contractor=contractor), LIMIT, None, budget=LIMIT)
    for event in found.items:
        items.append({"at": event["received_at"], "kind": "event", "event": event})
    doc = load(redis, contractor) or {}
    for entry in doc.get("history", []):
        items.append(
            {"at": float(entry.get("created") or 0), "kind": "coverage", "coverage": entry}
        )
    raw = redis.zrevrange(keys.notices_of_contractor(contractor), 0, LIMIT - 1)
    rids = [text(member).removeprefix("notice:") for member in raw]
    for record in notices.summaries(redis, rids, now):
        items.append({"at": record["created_at"], "kind": "notice", "notice": record})
        if record["delivery"]:
            delivered_at = redis.hget(keys.notice(record["id"]), "delivery_at")
            items.append(
                {
                    "at": float(delivered_at or record["updated_at"]),
                    "kind": "delivery",
                    "delivery": {"notice": record["id"], "state": record["delivery"]},
                }
            )
    items.sort(key=lambda item: item["at"], reverse=True)
    return items


def find_by_email(redis: Redis, email: str, budget: int = 20_000) -> list[dict[str, str]]:
    """Contractors whose notices went to `email` (the newest `budget` records looked at):
    the console's search by address. Answers ids and masked addresses only."""
    wanted = email.strip().lower()
    found: dict[str, str] = {}
    for start in range(0, budget, 500):
        members = [text(m) for m in redis.zrevrange(keys.NOTICES_INDEX, start, start + 499)]
        if not members:
            break
        pipe = redis.pipeline(transaction=False)
        for member in members:
            pipe.hmget(member, "recipient", "to_email")
        for recipient, to_email in pipe.execute():
            who = text(recipient or b"")
            if who.startswith("contractor:") and text(to_email or b"").lower() == wanted:
                found[who.removeprefix("contractor:")] = mask_email(text(to_email))
    return [{"contractor": cid, "email": masked} for cid, masked in sorted(found.items())]


def find_by_name(redis: Redis, name: str, budget: int = 20_000) -> list[dict[str, str]]:
    """Contractors whose stored contact's name holds every word of `name` (case-insensitive;
    "maya thom" finds Maya Thompson), the first `budget` contacts looked at: the console's
    search by name. Answers ids and masked names (first name, last initial) only."""
    words = name.lower().split()
    found: dict[str, str] = {}
    seen = 0
    batch: list[str] = []

    def check(members: list[str]) -> None:
        pipe = redis.pipeline(transaction=False)
        for member in members:
            pipe.hmget(member, "first_name", "last_name")
        for member, (first, last) in zip(members, pipe.execute(), strict=True):
            full = f"{text(first or b'')} {text(last or b'')}"
            if words and all(word in full.lower() for word in words):
                cid = member.removeprefix(keys.contractor(""))
                found[cid] = mask_name(text(first or b""), text(last or b""))

    for member in redis.scan_iter(match=keys.contractor("*"), count=500):
        batch.append(text(member))
        seen += 1
        if len(batch) == 500:
            check(batch)
            batch = []
        if seen >= budget:
            break
    if batch:
        check(batch)
    return [{"contractor": cid, "name": masked} for cid, masked in sorted(found.items())]
