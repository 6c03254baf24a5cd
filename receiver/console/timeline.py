"""A contractor's timeline: their events, coverage transitions, notices and what SendGrid
reported of each, joined in one time-ordered list (newest first)."""

from __future__ import annotations

from typing import Any

from redis import Redis

from ..coverage.store import load
from ..store import keys
from ..store.connection import text
from . import events, notices
from .masking import mask_email

LIMIT = 200


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
