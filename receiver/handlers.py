"""Handlers by event type: what the worker does with each kind of event.

Every known type has an entry; types without work of their own yet are recorded (`done`) so
they stay queryable. A handler must be idempotent: the same event may be processed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .deliveries import Contact
from .events import KNOWN_TYPES, Event

Handler = Callable[[Event, Any], None]


def _record_only(event: Event, rt: Any) -> None:
    """Stored and acknowledged; later work (coverage status) reads it from the event log."""


def _ref(value: Any) -> str:
    """An object reference may be an id string or an embedded object with an `id`."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def contractor_of(obj: dict[str, Any]) -> tuple[str, Contact, dict[str, Any]]:
    """The contractor id, contact and template view named by an object's `contractor` field."""
    raw = obj.get("contractor")
    person = raw if isinstance(raw, dict) else {}
    first = str(person.get("first_name") or "")
    last = str(person.get("last_name") or "")
    contact = Contact(
        email=str(person.get("email") or ""),
        name=f"{first} {last}".strip(),
        timezone=person.get("timezone") or None,
    )
    view = {"id": _ref(raw), "first_name": first, "last_name": last}
    return _ref(raw), contact, view


def payment_confirmation(event: Event, rt: Any) -> None:
    """`invoice.charge_card_succeeded`: confirm the charge to the contractor, once per invoice."""
    invoice = event.object
    invoice_id = _ref(invoice)
    contractor_id, contact, person = contractor_of(invoice)
    job = invoice.get("job")
    context = {
        "recipient": {"name": contact.name, "email": contact.email,
                      "timezone": contact.timezone},
        "contractor": person,
        "job": {"id": _ref(job), "name": job.get("name") if isinstance(job, dict) else None},
        "coverage_url": None,
        "invoice_id": invoice_id,
        "amount_cents": int(invoice.get("premium_due") or invoice.get("amount") or 0),
        "paid_at": event.created or 0,
        "payment_method": "card",
    }
    rt.deliveries.create(
        "payment_confirmation", f"charge:{invoice_id}", f"contractor:{contractor_id}",
        contact, context,
    )


HANDLERS: dict[str, Handler] = {
    t: _record_only for types in KNOWN_TYPES.values() for t in types
}
HANDLERS["invoice.charge_card_succeeded"] = payment_confirmation


def handler_for(event_type: str) -> Handler:
    """The handler of a type; unknown types never reach the worker (they are `ignored`)."""
    return HANDLERS.get(event_type, _record_only)
