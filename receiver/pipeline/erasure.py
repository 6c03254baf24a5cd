"""Forget a contractor: erase what is personal about them, for an erasure request.

What goes, and why what stays may stay:
- the contact (`contractor:<id>`, the API copy), the coverage document and the payments
  (`payments:<id>`), and the owner mappings that tie coverage objects to them;
- in notice records to them: the address, the names and the rendered context (and, with the
  outbox mailer of `make run`, the .eml files written for them); a notice not
  sent yet is `cancelled` ("erased on request"), so nothing is sent to an address we promised
  to forget; in rep notices about them: their names in the context;
- stored event bodies and headers that name them (the record itself stays, body-less, so a
  retried delivery of the same event is still recognised as a duplicate, not processed anew);
- their waiting-for-a-contact index entries.
Suppression entries stay: they hold only a hash of an address. The erasure itself is recorded
(`erased:<id>`: when, and how much was erased) and logged, without the data.

It scans Redis (SCAN, not KEYS), so it is an operator's command, not a request path.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from redis.typing import EncodableT, FieldT

from ..delivery.mailer import OutboxMailer
from ..logs import record
from ..store import keys
from ..store.connection import text
from .runtime import Runtime

log = logging.getLogger(__name__)
UNSENT = ("pending", "awaiting_contact")


@dataclass(frozen=True)
class Erased:
    """How much of a contractor was erased."""

    contact: int
    coverage: int
    notices: int
    events: int


def _names_cleared(context: dict[str, Any], contractor_id: str) -> dict[str, Any]:
    person = context.get("contractor")
    if isinstance(person, dict) and person.get("id") == contractor_id:
        context["contractor"] = {"id": contractor_id, "first_name": "", "last_name": ""}
    context.pop("recipient", None)
    context.pop("address", None)  # the rep's address alert quotes the contractor's address
    return context


def _erase_notices(rt: Runtime, contractor_id: str) -> list[str]:
    erased: list[str] = []
    for raw in rt.redis.scan_iter(match=keys.notice("*"), count=1000):
        key = text(raw)
        recipient, state, context_raw = (
            text(v) for v in rt.redis.hmget(key, "recipient", "state", "context")
        )
        try:
            context = json.loads(context_raw) if context_raw else {}
        except ValueError:
            context = {}
        person = context.get("contractor") if isinstance(context, dict) else None
        about = isinstance(person, dict) and person.get("id") == contractor_id
        if recipient != f"contractor:{contractor_id}" and not about:
            continue
        fields: dict[FieldT, EncodableT] = {
            "context": json.dumps(_names_cleared(context, contractor_id))
        }
        if recipient == f"contractor:{contractor_id}":
            fields.update(to_email="", first_name="", last_name="", timezone="")
            if state in UNSENT:
                fields.update(state="cancelled", last_error="erased on request")
                rt.redis.zrem(keys.NOTICES_PENDING, key)
        rt.redis.hset(key, mapping=fields)
        erased.append(key.removeprefix(keys.notice("")))
    return erased


def _erase_events(rt: Runtime, contractor_id: str) -> int:
    needle = contractor_id.encode()
    erased = 0
    for raw in rt.redis.scan_iter(match=keys.event("*", "*"), count=1000):
        body = rt.redis.hget(raw, "body")
        if body and needle in body:
            rt.redis.hset(raw, mapping={"body": b"", "headers": "{}", "erased": 1})
            erased += 1
    return erased


def _erase_coverage(rt: Runtime, contractor_id: str) -> int:
    erased = int(rt.redis.delete(keys.coverage_doc(contractor_id), keys.payments(contractor_id)))
    for raw in rt.redis.scan_iter(match=keys.coverage_owner("*"), count=1000):
        if text(rt.redis.get(raw)) == contractor_id:
            erased += int(rt.redis.delete(raw))
    return erased


def forget_contractor(rt: Runtime, contractor_id: str) -> Erased:
    """Erase what is personal about `contractor_id` (see the module docstring)."""
    if not contractor_id:
        raise ValueError("a contractor id is required")
    contact = int(
        rt.redis.delete(
            keys.contractor(contractor_id),
            keys.contractor_api(contractor_id),
            keys.awaiting(contractor_id),
        )
    )
    rt.redis.zrem(keys.NOTICES_AWAITING, contractor_id)
    notices = _erase_notices(rt, contractor_id)
    if isinstance(rt.mailer, OutboxMailer):  # `make run`'s emails, kept as files
        rt.mailer.forget(notices)
    erased = Erased(
        contact=contact,
        coverage=_erase_coverage(rt, contractor_id),
        notices=len(notices),
        events=_erase_events(rt, contractor_id),
    )
    done: dict[FieldT, EncodableT] = {"at": rt.clock()}
    done.update(asdict(erased))
    rt.redis.hset(keys.erased(contractor_id), mapping=done)
    record(
        log,
        "contractor forgotten",
        contractor_id=contractor_id,
        events=erased.events,
        notices=erased.notices,
    )
    return erased
