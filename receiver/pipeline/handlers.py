"""Handlers by event type: load the facts, let `notices.rules.decide` choose, create records.

Every known type has an entry; types without work of their own yet are recorded (`done`) so
they stay queryable. Handlers are idempotent: the same event may be processed again (a retry,
a sweeper re-queue, a replay), and the notice records' identities make a second send
impossible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..coverage.document import COVERAGE_TYPES
from ..coverage.payments import PAYMENT_TYPES
from ..creatoriq.sync import decide_creator, email_digest
from ..delivery.records import record_id
from ..ingest.envelopes import CREATOR_TYPES, KNOWN_TYPES, Event
from ..notices.contacts import Contact, contact_from
from ..notices.jobs import reps_of
from ..notices.plans import Facts, Plan, invoice_paid, invoice_void, ref
from ..notices.reminders import REMINDER_NOTICES, send_time
from ..notices.rules import NOTIFYING_TYPES, decide
from .runtime import Runtime

Handler = Callable[[Event, Runtime], None]
LEDGER_TYPES = ("invoice.created", "invoice.updated")
CAS_ATTEMPTS = 5


def _record_only(event: Event, rt: Runtime) -> None:
    """Stored and acknowledged; nothing more to do for this type yet."""


def _embedded_contact(event: Event, rt: Runtime) -> Contact | None:
    """The contractor the event embeds, remembered (newest wins) for later events."""
    raw = event.object.get("contractor")
    if not isinstance(raw, dict) or not ref(raw):
        return None
    contact = contact_from(raw)
    rt.contacts.remember(contact, event.created)
    _reached_us(contact.email, rt)
    stored = rt.contacts.stored(contact.id)
    if stored is None:
        return contact
    # The event's own contact comes first; what it leaves out (1099Policy objects carry no
    # time zone) comes from what contractor.updated told us.
    return Contact(
        id=contact.id,
        email=contact.email or stored.email,
        first_name=contact.first_name or stored.first_name,
        last_name=contact.last_name or stored.last_name,
        timezone=contact.timezone or stored.timezone,
        withhold_premium=contact.withhold_premium
        if contact.withhold_premium is not None
        else stored.withhold_premium,
    )


def _embedded_job(obj: dict[str, Any]) -> dict[str, Any]:
    job = obj.get("job")
    return job if isinstance(job, dict) else {}


def _withhold(
    obj: dict[str, Any], job: dict[str, str], person: Contact | None, default: bool
) -> bool:
    """Card or remit: the object's own setting, then the job's, the contractor's, the org's."""
    embedded_job = _embedded_job(obj)
    stored_job = {"1": True, "0": False}.get(job.get("withhold_premium", ""))
    for value in (
        obj.get("withhold_premium"),
        embedded_job.get("withhold_premium"),
        stored_job,
        person.withhold_premium if person else None,
    ):
        if isinstance(value, bool):
            return value
    return default


def notify(event: Event, rt: Runtime) -> None:
    """Apply an event that may cause notices (see notices/rules.py for which and why)."""
    obj = event.object
    embedded = _embedded_contact(event, rt)
    embedded_job = _embedded_job(obj)
    if embedded_job:
        rt.jobs.remember(embedded_job, event.created)
    contractor_id, job_id = ref(obj.get("contractor")), ref(obj.get("job"))
    person = (
        embedded
        if embedded and embedded.email
        else (rt.contacts.lookup(contractor_id) if contractor_id else None)
    )
    job = rt.jobs.get(job_id)
    _settle(event, rt)
    now = int(rt.clock())
    charged = ref(obj.get("invoice")) or ref(obj)
    withhold = _withhold(obj, job, person, rt.cfg.ORG_WITHHOLD_PREMIUM)
    invoice_id = ref(obj) if event.type in LEDGER_TYPES else ""
    for _ in range(CAS_ATTEMPTS):
        current = rt.ledger.get(invoice_id) if invoice_id else None
        facts = Facts(
            withhold=withhold,
            ledger=current,
            paid=rt.settlements.has("invoice_paid", invoice_id),
            charge_amount=rt.ledger.invoice_premium(charged),
        )
        decision = decide(event, facts, now=now, timing=rt.timing)
        if decision.ledger is None or rt.ledger.swap(invoice_id, current, decision.ledger):
            break
    else:
        raise RuntimeError("premium ledger kept changing; retrying the event")
    if decision.ledger is not None and decision.ledger.event_id == event.id:
        # Only the invoice event that won the ledger sets the invoice's current premium,
        # which scheduled reminders compare with to notice a re-pricing.
        rt.ledger.remember_invoice(decision.ledger.invoice_id, decision.ledger.cents)
        rt.ledger.remember_reprice(decision.ledger, event.source, now)  # for the console
    common = {
        "contractor": {
            "id": contractor_id,
            "first_name": person.first_name if person else "",
            "last_name": person.last_name if person else "",
        },
        "job": {"id": job_id, "name": job.get("name"), "entity": job.get("entity_name")},
        "coverage_url": None,  # signed when the email is sent, so a reminder's is fresh
    }
    decided: list[str] = []
    reps = reps_of(job, rt.cfg.ORG_REP_EMAILS)
    for plan in decision.plans:
        decided += _create(
            rt,
            plan,
            {**common, **plan.fields},
            contractor_id,
            person,
            reps,
            now,
            event.received_at,
        )
    # The event's outcome in the console: the records it decided on (new or found again).
    rt.records.decided_by(event.source, event.id, decided)


def _settle(event: Event, rt: Runtime) -> None:
    """Record what this event settles, so scheduled reminders about it are not sent; each fact
    is scoped to what the event is about (docs/notifications.md, "What settles what")."""
    obj, mark = event.object, rt.settlements.mark
    if event.type == "invoice.charge_card_succeeded" or (
        event.type in LEDGER_TYPES and invoice_paid(obj)
    ):
        mark("invoice_paid", ref(obj))
    elif event.type in LEDGER_TYPES and invoice_void(obj):
        mark("invoice_void", ref(obj))  # nothing will be charged: no reminder, no lapse alert
    elif event.type in ("assignment.active", "application.complete"):
        mark("invoice_paid", ref(obj.get("invoice")))
        if event.type == "assignment.active":
            mark("assignment_charged", ref(obj))
            mark("assignment_active", ref(obj))  # bound: no coverage-gap alert for it
    elif event.type == "assignment.cancelled":
        # One contractor's assignment: never the job, which many contractors share.
        mark("assignment_cancelled", ref(obj))
        rt.settlements.mark_work_cancelled(
            ref(obj.get("job")), ref(obj.get("contractor")), event.created or int(rt.clock())
        )


def _create(
    rt: Runtime,
    plan: Plan,
    context: dict[str, Any],
    contractor_id: str,
    person: Contact | None,
    reps: list[str],
    now: float,
    received_at: float | None = None,
) -> list[str]:
    """Create the plan's records (one per recipient); return their ids."""

    def timed(zone: str | None) -> dict[str, Any]:
        if plan.guard is None:  # sent now: its webhook -> email latency is measured
            return {"now": now, "received_at": received_at}
        if plan.notice not in REMINDER_NOTICES:
            # A burst's change notice: due when the burst ends, not held for quiet hours.
            return {"now": now, "send_at": plan.remind_at, "guard": plan.guard}
        at = send_time(plan.remind_at, plan.deadline, zone, now)
        guard = {**(plan.guard or {}), "deadline": plan.deadline}
        return {
            "now": now,
            "send_at": at,
            "guard": guard,
            "remind_at": plan.remind_at,
            "deadline": plan.deadline,
        }

    if plan.audience == "contractor":
        recipient = f"contractor:{contractor_id}"
        rt.records.create(
            plan.notice,
            plan.cause,
            recipient,
            person or Contact(),
            context,
            waiting_for=contractor_id,
            **timed(person.timezone if person else None),
        )
        return [record_id(plan.notice, plan.cause, recipient)]
    rids = []
    for rep in reps or [""]:
        recipient = f"rep:{rep.lower() or 'none'}"
        rt.records.create(
            plan.notice, plan.cause, recipient, Contact(email=rep), context, **timed(None)
        )
        rids.append(record_id(plan.notice, plan.cause, recipient))
    return rids


def contractor_updated(event: Event, rt: Runtime) -> None:
    """Platform `contractor.updated`: remember the contact; send what was waiting for it."""
    contact = contact_from(event.object)
    if not contact.id:
        return
    rt.contacts.remember(contact, event.created)
    _reached_us(contact.email, rt)
    current = rt.contacts.stored(contact.id) or contact
    if current.email:
        rt.records.release(contact.id, current)


def coverage(event: Event, rt: Runtime) -> None:
    """Apply a 1099Policy coverage event to its contractor's document (coverage/store.py)."""
    rt.coverage.apply(event)
    person = event.object.get("contractor")
    if isinstance(person, dict):  # an application or assignment embedding its contractor
        _reached_us(contact_from(person).email, rt)


def _reached_us(email: str, rt: Runtime) -> None:
    """A contractor with this email is known to 1099Policy or the platform: a CreatorIQ
    creator with it synced, so the reps' sync-missing alert about them is moot."""
    if email:
        rt.settlements.mark("creator_synced", email_digest(email))


def creator_event(event: Event, rt: Runtime) -> None:
    """CreatorIQ `creator.accepted` / `creator.updated`: the sync check, and what the reps are
    told (creatoriq/sync.py): to `rep_email`, else the organization's reps."""
    now = int(rt.clock())
    decided = decide_creator(event, now, rt.cfg.CREATORIQ_SYNC_WAIT_HOURS * 3600)
    reps = list(decided.reps) or list(rt.cfg.ORG_REP_EMAILS)
    rids: list[str] = []
    for plan in decided.plans:
        context = {**decided.context, **plan.fields}
        rids += _create(rt, plan, context, "", None, reps, now, event.received_at)
    rt.records.decided_by(event.source, event.id, rids)  # the event's outcome in the console


def payments(event: Event, rt: Runtime) -> None:
    """Keep what a payment event says about a charge, for the coverage page
    (coverage/payments.py)."""
    rt.payments.record(event)


def _first(step: Handler, then: Handler) -> Handler:
    """`step` (coverage, payments), then the type's other work (notices); all idempotent."""
    if then is _record_only:
        return step

    def both(event: Event, rt: Runtime) -> None:
        step(event, rt)
        then(event, rt)

    return both


HANDLERS: dict[str, Handler] = {t: _record_only for types in KNOWN_TYPES.values() for t in types}
HANDLERS.update({t: notify for t in NOTIFYING_TYPES})
HANDLERS["contractor.updated"] = contractor_updated
HANDLERS.update({t: creator_event for t in CREATOR_TYPES})
HANDLERS.update({t: _first(coverage, HANDLERS[t]) for t in COVERAGE_TYPES})
HANDLERS.update({t: _first(payments, HANDLERS[t]) for t in PAYMENT_TYPES})


def handler_for(event_type: str) -> Handler:
    """The handler of a type; unknown types never reach the worker (they are `ignored`)."""
    return HANDLERS.get(event_type, _record_only)
