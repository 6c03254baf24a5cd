"""Which notices an event causes: a pure function of the event and the stored facts.

The spec is docs/notifications.md. `decide(event, facts)` returns the notices to create
(each with its cause, the identity that makes it once-only) and, for invoice events, the new
premium-ledger entry. It does no I/O: `pipeline/handlers.py` loads the facts, applies the
ledger entry with a compare-and-set, resolves recipients and creates the records.

Causes, so that "exactly once" means once per thing that happened:
- `charge:<invoice id>`: a card charge. `invoice.charge_card_succeeded` and an
  `assignment.active`/`application.complete` naming the same invoice share it.
- `charge_failed:<event id>`: each failed charge attempt warns once.
- `charge_unrecovered:<invoice id>`: the reps' alert that an invoice whose charge failed is
  still unpaid `CHARGE_RECOVERY_HOURS` later (once per invoice, however many attempts failed).
- `assignment:<assignment id>`: the pre-charge reminder of a reported assignment.
- `coverage_missing:<assignment id>`: the reps' alert that a reported assignment starts soon
  and 1099Policy has not reported it active (bound) yet.
- `invoice:<invoice id>@<premium cents>`: the payment reminder of a new bill (the first event
  of an invoice id).
- `remit_bill:<invoice id>@<premium cents>`: the rep's reminder of a new remitted bill.
- `reprice:<invoice id>@<burst>`: every notice of one burst of re-prices of an invoice (the
  change notices and the updated reminder); `<burst>` is the id of the burst's first event.

Invoice events (a bill and its re-prices) are notices/bills.py's; the facts, plans and ledger
entry every rule works with are notices/plans.py's.

Reminders carry `remind_at` (when they are due; None: now), `deadline` (what they remind
about) and a `guard` that reminders.py checks at send time, so a reminder for a charge that
was settled, re-priced or cancelled in the meantime is not sent. A burst's change notices carry
`remind_at` (the burst's end) and a guard naming the burst and the direction they announce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..ingest.envelopes import Event
from .bills import invoice_rule
from .plans import (
    CHARGE_DELAY_SECONDS,
    Decision,
    Facts,
    Plan,
    Timing,
    ahead,
    cents,
    ref,
    work_on_job,
)


def _confirmation(invoice_id: str, amount: int, paid_at: int) -> Plan:
    return Plan(
        "payment_confirmation",
        f"charge:{invoice_id}",
        "contractor",
        {
            "invoice_id": invoice_id,
            "amount_cents": amount,
            "paid_at": paid_at,
            "payment_method": "card",
        },
    )


def _charge_succeeded(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    obj = event.object
    amount = cents(
        obj.get("amount_paid"), obj.get("premium_due"), obj.get("amount"), facts.charge_amount
    )
    if not ref(obj) or amount is None:
        return Decision()
    return Decision((_confirmation(ref(obj), amount, event.created or now),))


def _coverage_with_invoice(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    """`assignment.active` / `application.complete`: a confirmation only when they name the
    charged invoice, the contractor pays by card, and the amount is known."""
    invoice = event.object.get("invoice")
    if not ref(invoice) or facts.withhold:
        return Decision()
    embedded = invoice if isinstance(invoice, dict) else {}
    amount = cents(
        embedded.get("amount_paid"),
        embedded.get("premium_due"),
        event.object.get("premium_due"),
        facts.charge_amount,
    )
    if amount is None:
        return Decision()  # the charge event, which carries the amount, will confirm it
    return Decision((_confirmation(ref(invoice), amount, event.created or now),))


def _charge_failed(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    obj = event.object
    reason = obj.get("failure_message") or obj.get("failure_reason")
    fields = {
        "invoice_id": ref(obj),
        # None when unknown (a failed charge of nothing is no charge): the emails leave it out.
        "amount_cents": cents(obj.get("premium_due"), obj.get("amount"), facts.charge_amount)
        or None,
        "failed_at": event.created or now,
        "failure_reason": str(reason) if reason else None,
    }
    return Decision(
        (
            Plan("assignment_charge_failure", f"charge_failed:{event.id}", "contractor", fields),
            *_charge_unrecovered(event, fields, now, timing),
        )
    )


def _charge_unrecovered(
    event: Event, fields: dict[str, Any], now: int, timing: Timing
) -> tuple[Plan, ...]:
    """The reps' alert that a failed charge is still unpaid `CHARGE_RECOVERY_HOURS` later, so
    the contractor's coverage will lapse: one per invoice (a retried charge that fails again
    is the same unpaid bill). The guard names the invoice, so a success (`invoice_paid`), a
    voided invoice, or a cancellation of the assignment it names (else of the contractor's
    assignment on its job) that arrives first cancels it."""
    obj = event.object
    invoice = ref(obj)
    if not invoice:
        return ()  # no invoice: nothing a later success could be matched with
    failed_at = int(fields["failed_at"])
    return (
        Plan(
            "charge_unrecovered_rep",
            f"charge_unrecovered:{invoice}",
            "rep",
            dict(fields),
            remind_at=ahead(failed_at + timing.charge_recovery, 0, now),
            guard={
                "invoice": invoice,
                "assignment": ref(obj.get("assignment")),
                **work_on_job(obj, failed_at),
            },
        ),
    )


def _charge_reminder(event: Event, facts: Facts, now: int, timing: Timing) -> tuple[Plan, ...]:
    obj = event.object
    premium = cents(obj.get("premium_due"))
    if facts.withhold or obj.get("bind") is False or premium is None:
        return ()  # remit: billed, no card charge; bind false: no charge at all
    charge_at = cents(obj.get("charge_at")) or (event.created or now) + CHARGE_DELAY_SECONDS
    return (
        Plan(
            "assignment_charge_reminder",
            f"assignment:{ref(obj)}",
            "contractor",
            {"assignment_id": ref(obj), "amount_cents": premium, "charge_at": charge_at},
            remind_at=ahead(charge_at, timing.lead, now),
            deadline=charge_at,
            guard={"assignment": ref(obj)},
        ),
    )


def _coverage_alert(event: Event, now: int, timing: Timing) -> tuple[Plan, ...]:
    """The reps' alert, `COVERAGE_ALERT_HOURS` before the assignment starts, that it is not
    covered yet; the guard's `uncovered` makes an `assignment.active` (or a cancellation)
    that arrives first cancel it at send time. Card and remit alike: both need the binding."""
    obj = event.object
    starts_at = cents(obj.get("effective_date"))
    if not ref(obj) or obj.get("bind") is False or starts_at is None or starts_at <= now:
        return ()  # no start given, or already started: there is no "starts at" to warn of
    return (
        Plan(
            "coverage_missing_rep",
            f"coverage_missing:{ref(obj)}",
            "rep",
            {"assignment_id": ref(obj), "starts_at": starts_at},
            remind_at=ahead(starts_at, timing.coverage_alert, now),
            deadline=starts_at,
            guard={"assignment": ref(obj), "uncovered": True},
        ),
    )


def _assignment_created(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    return Decision(
        _charge_reminder(event, facts, now, timing) + _coverage_alert(event, now, timing)
    )


Rule = Callable[[Event, Facts, int, Timing], Decision]

_RULES: dict[str, Rule] = {
    "invoice.charge_card_succeeded": _charge_succeeded,
    "assignment.active": _coverage_with_invoice,
    "application.complete": _coverage_with_invoice,
    "invoice.charge_card_failed": _charge_failed,
    "assignment.created": _assignment_created,
    "invoice.created": invoice_rule,
    "invoice.updated": invoice_rule,
    # Sends nothing itself, but settles the reminders of the assignment and its job.
    "assignment.cancelled": lambda event, facts, now, timing: Decision(),
}

NOTIFYING_TYPES = frozenset(_RULES)


def decide(event: Event, facts: Facts, now: int = 0, timing: Timing | None = None) -> Decision:
    """The notices `event` causes given `facts`, and the ledger entry it writes (if any)."""
    rule = _RULES.get(event.type)
    return rule(event, facts, now, timing or Timing()) if rule else Decision()
