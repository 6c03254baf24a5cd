"""A contractor's payments: each charge for their coverage, its amount, when it is due and what
became of it. The coverage page shows them per assignment.

The coverage document (document.py) says what covers a contractor; what they pay for it comes
from other events. The platform reports an assignment's or an invoice's premium and when the card
will be charged (`assignment.created`, `invoice.created`, `invoice.updated`); 1099Policy reports
each charge (`invoice.charge_card_succeeded` / `_failed`) and that an assignment was bound
(`assignment.active`: binding charges a card payer first, so the assignment's charge went
through; it may name the invoice charged) or cancelled before its start.

Kept per contractor in one hash (`payments:<contractor>`), one field per charge (`invoice:<id>`
or `assignment:<id>`), merged like the coverage document: per fact, the newest event that gave
it wins (order key `(created, event id)`), so late, repeated and out-of-order deliveries end in
the same entry. `charges()` turns the entries into what a person reads: charged, failed, upcoming.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis import Redis

from ..ingest.envelopes import Event
from ..notices.plans import cents, invoice_paid, invoice_void
from ..store import keys
from ..store.connection import text
from .document import id_of, order_key, when

PAYMENT_TYPES = frozenset(
    {
        "assignment.created",
        "assignment.active",
        "assignment.cancelled",
        "invoice.created",
        "invoice.updated",
        "invoice.charge_card_succeeded",
        "invoice.charge_card_failed",
    }
)
_KIND = {"assignment": "assignment", "invoice": "invoice"}

_MERGE = """
-- Merge one event's facts about one charge into a contractor's payments; per fact, the newest
-- event (by created, then event id) wins, so any order of the same events ends the same.
-- KEYS[1]: payments:<contractor>
-- ARGV[1]: the charge ("invoice:<id>" or "assignment:<id>"), ARGV[2]: the event's created,
-- ARGV[3]: the event id, ARGV[4]: TTL seconds, ARGV[5]: the facts (JSON object, no nulls)
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local entry = {}
if raw then entry = cjson.decode(raw) end
local as_of = entry['_as_of'] or {}
local created = tonumber(ARGV[2])
for name, value in pairs(cjson.decode(ARGV[5])) do
  local seen = as_of[name]
  if seen == nil or seen[1] < created or (seen[1] == created and seen[2] <= ARGV[3]) then
    entry[name] = value
    as_of[name] = {created, ARGV[3]}
  end
end
entry['_as_of'] = as_of
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


def facts(event: Event) -> tuple[str, str, dict[str, Any]] | None:
    """(contractor, charge, facts) of a payment event; None when it names no contractor or
    no object, or says nothing about money."""
    obj = event.object
    kind = _KIND.get(event.type.split(".", 1)[0])
    contractor, object_id = id_of(obj.get("contractor")), id_of(obj.get("id"))
    if event.type not in PAYMENT_TYPES or kind is None or not contractor or not object_id:
        return None
    at = order_key(event)[0]
    said: dict[str, Any] = {
        "job": id_of(obj.get("job")),
        "amount_cents": cents(obj.get("premium_due")),
    }
    if event.type in ("assignment.created", "invoice.created", "invoice.updated"):
        said["charge_at"] = when(obj.get("charge_at"))
        withhold = obj.get("withhold_premium")
        if isinstance(withhold, bool):
            said["method"] = "remit" if withhold else "card"
        if invoice_paid(obj):
            said.update(paid_at=at, charged_cents=said["amount_cents"])
        elif invoice_void(obj):
            said["cancelled_at"] = at
    elif event.type == "invoice.charge_card_succeeded":
        said.update(paid_at=at, method="card", charged_cents=said["amount_cents"])
    elif event.type == "invoice.charge_card_failed":
        reason = obj.get("failure_message") or obj.get("failure_reason")
        said.update(failed_at=at, method="card", failure=str(reason) if reason else None)
    elif event.type == "assignment.active":
        said.update(bound_at=at, invoice=id_of(obj.get("invoice")))
    else:  # assignment.cancelled
        said["cancelled_at"] = when(obj.get("cancellation_date")) or at
    return contractor, f"{kind}:{object_id}", {k: v for k, v in said.items() if v is not None}


class Payments:
    """Each contractor's charges in Redis, written by the worker, read by the coverage page."""

    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.ttl = retention_seconds
        self._merge = redis.register_script(_MERGE)

    def record(self, event: Event) -> bool:
        """Merge what `event` says about a charge; False when it says nothing about one."""
        found = facts(event)
        if found is None or not found[2]:
            return False
        contractor, charge, said = found
        created, event_id = order_key(event)
        self._merge(
            keys=[keys.payments(contractor)],
            args=[charge, created, event_id, self.ttl, json.dumps(said)],
        )
        return True

    def entries(self, contractor: str) -> dict[str, dict[str, Any]]:
        """charge ("invoice:<id>") -> its merged facts."""
        raw = self.redis.hgetall(keys.payments(contractor))
        return {text(k): json.loads(v) for k, v in raw.items()}


@dataclass(frozen=True)
class Charge:
    """One payment as a person reads it.

    `state`: `charged`, `failed` (the last attempt failed), `upcoming` (due later),
    `processing` (due, no word of the charge yet), `cancelled` (the assignment was cancelled
    or the invoice voided before it was charged) or `remit` (the organization pays it).
    `at`: when it was charged, failed, is due or was cancelled (None: not known).
    `failed_at`: an earlier attempt that failed before a later one went through.
    `repriced_cents`: the invoice's premium now, when it was re-priced after the charge
    (`amount_cents` is then what was charged; the difference is charged or refunded).
    """

    kind: str
    id: str
    job: str | None
    amount_cents: int | None
    state: str
    at: int | None
    method: str
    invoice: str | None = None
    failed_at: int | None = None
    failure: str | None = None
    repriced_cents: int | None = None


_MONEY = frozenset({"amount_cents", "charge_at", "paid_at", "failed_at"})


def _charge(kind: str, object_id: str, entry: dict[str, Any], now: int) -> Charge:
    paid, failed = entry.get("paid_at"), entry.get("failed_at")
    bound, due = entry.get("bound_at"), entry.get("charge_at")
    method = entry.get("method", "card")
    if paid is None and bound is not None and method == "card":
        paid = bound  # binding charged the card
    state, at = "upcoming", due
    if paid is not None and (failed is None or paid >= failed):
        state, at = ("remit" if method == "remit" else "charged"), paid
    elif failed is not None:
        state, at = "failed", failed
    elif entry.get("cancelled_at") is not None:
        state, at = "cancelled", entry["cancelled_at"]
    elif method == "remit":
        state = "remit"
    elif due is not None and due <= now:
        state = "processing"
    amount, charged, repriced = entry.get("amount_cents"), entry.get("charged_cents"), None
    if state == "charged" and charged is not None:
        repriced = amount if amount is not None and amount != charged else None
        amount = charged
    return Charge(
        kind=kind,
        id=object_id,
        job=entry.get("job"),
        amount_cents=amount,
        repriced_cents=repriced,
        state=state,
        at=at,
        method=method,
        invoice=entry.get("invoice") if kind == "assignment" else object_id,
        failed_at=failed if state != "failed" else None,
        failure=entry.get("failure") if state == "failed" else None,
    )


def charges(entries: dict[str, dict[str, Any]], now: int) -> list[Charge]:
    """Every charge, oldest first. An assignment whose `assignment.active` named the invoice
    charged for it and that invoice are one charge: shown once, as the invoice, with what the
    assignment knew filling what the invoice's events left out."""
    merged = dict(entries)
    for charge, entry in entries.items():
        invoice = entry.get("invoice")
        if charge.startswith("assignment:") and invoice and f"invoice:{invoice}" in entries:
            own = merged.pop(charge)
            merged[f"invoice:{invoice}"] = {**own, **entries[f"invoice:{invoice}"]}
    out = []
    for charge, entry in merged.items():
        if not _MONEY.intersection(entry):
            continue  # bound or cancelled, but no event said what it costs or when it is due
        kind, _, object_id = charge.partition(":")
        out.append(_charge(kind, object_id, entry, now))
    return sorted(out, key=lambda c: (c.at is None, c.at or 0, c.id))
