"""A bill's notices: the reminder of a new bill, and the notices of a re-priced one.

A premium change is a change to one bill: the ledger is kept per invoice id, and a new invoice
of the same job is a new bill, never an increase or decrease. Re-prices of one invoice within
`Timing.coalesce` seconds form a burst (`Burst`, kept in the ledger entry); its notices are
due when the burst ends and say what it ended at: `burst_outcome()` works that out at send
time from the ledger, so one email per recipient states the final amount and the one before.
Before the charge the contractor gets at most an updated reminder; after it, the increase or
decrease notice (docs/notifications.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..ingest.envelopes import Event
from .plans import (
    CHARGE_DELAY_SECONDS,
    CHARGE_MARGIN,
    DAY,
    REMIT_DUE_DAYS,
    Burst,
    Decision,
    Facts,
    Plan,
    Premium,
    Timing,
    ahead,
    cents,
    invoice_paid,
    method,
    ref,
    work_on_job,
)


def invoice_rule(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    """Platform `invoice.created` / `invoice.updated`: per invoice, latest event wins."""
    obj = event.object
    new, invoice_id = cents(obj.get("premium_due")), ref(obj)
    if new is None or not invoice_id:
        return Decision()  # no amount, or no bill to keep it for
    created = event.created if event.created is not None else (cents(obj.get("created")) or 0)
    entry = Premium(new, created, event.id, invoice_id, None)
    ledger = facts.ledger
    if ledger is not None and ledger.event_id == event.id:
        entry = ledger  # a re-run after the ledger was written: same decision as before
    elif ledger is not None and entry.order() < ledger.order():
        return Decision()  # an older invoice event arriving late changes nothing, sends nothing
    elif ledger is not None:
        charged = facts.paid or invoice_paid(obj)
        moment = money_moment(obj, created, facts.withhold, charged)
        entry = _applied(ledger, entry, charged, _burst_due(now, moment, timing.coalesce), now)
    if entry.previous is None:
        plans = _new_bill(entry, obj, created, facts.withhold, now, timing)
    elif entry.previous != entry.cents and entry.burst is not None:
        plans = _repriced(entry, entry.burst, obj, created, facts.withhold, now, timing)
    else:
        plans = []  # the same amount again: the bill's notices stand as they are
    return Decision(tuple(plans), ledger=entry)


def money_moment(obj: dict[str, Any], created: int, withhold: bool, charged: bool) -> int | None:
    """When money next moves for an invoice: the card charge (once charged, the charge of a
    difference: the object's `charge_at` if still ahead, else 24 h after the event), or a
    remitted bill's due date; None for a remitted bill already paid."""
    if withhold:
        return None if charged else created + REMIT_DUE_DAYS * DAY
    charge_at = cents(obj.get("charge_at")) or created + CHARGE_DELAY_SECONDS
    if charged and charge_at <= created:
        return created + CHARGE_DELAY_SECONDS
    return charge_at


def _burst_due(now: int, moment: int | None, window: int) -> int:
    """When a burst beginning now ends: after the window, but before the money moves."""
    due = now + window
    if moment is not None:
        due = min(due, moment - CHARGE_MARGIN)
    return max(now, due)


def _applied(ledger: Premium, entry: Premium, charged: bool, due: int, now: int) -> Premium:
    """The entry after `entry`'s event wins over `ledger`: it joins the open burst, begins a
    new one, or (same amount) leaves the burst as it was."""
    entry = replace(entry, previous=ledger.cents, burst=ledger.burst, prior=ledger.prior)
    burst = ledger.burst
    if entry.cents == ledger.cents:
        return entry
    if burst is not None and not burst.closed and now < burst.due and burst.charged == charged:
        return entry  # joins the open burst: its notices will state this amount
    ended = replace(burst, final_cents=ledger.cents) if burst is not None else None
    return replace(entry, burst=Burst(entry.event_id, ledger.cents, due, charged), prior=ended)


def _new_bill(
    entry: Premium, obj: dict[str, Any], created: int, withhold: bool, now: int, timing: Timing
) -> list[Plan]:
    """The first event of an invoice: a new bill, reminded of (never compared with another)."""
    new = entry.cents
    if new <= 0 or invoice_paid(obj):
        return []
    guard = {"invoice": entry.invoice_id, "premium": new, **work_on_job(obj, created)}
    if withhold:
        due_at = created + REMIT_DUE_DAYS * DAY
        return [
            Plan(
                "remit_bill_reminder_rep",
                f"remit_bill:{entry.invoice_id}@{new}",
                "rep",
                {
                    "invoice_id": entry.invoice_id,
                    "amount_cents": new,
                    "previous_amount_cents": None,
                    "due_at": due_at,
                },
                remind_at=ahead(due_at, timing.remit_before, now),
                deadline=due_at,
                guard=guard,
            )
        ]
    charge_at = cents(obj.get("charge_at")) or created + CHARGE_DELAY_SECONDS
    return [
        Plan(
            "payment_reminder",
            f"invoice:{entry.invoice_id}@{new}",
            "contractor",
            {
                "invoice_id": entry.invoice_id,
                "amount_cents": new,
                "previous_amount_cents": None,
                "charge_at": charge_at,
                "payment_method": "card",
            },
            remind_at=ahead(charge_at, timing.lead, now),
            deadline=charge_at,
            guard=guard,
        )
    ]


def _repriced(
    entry: Premium,
    burst: Burst,
    obj: dict[str, Any],
    created: int,
    withhold: bool,
    now: int,
    timing: Timing,
) -> list[Plan]:
    """A re-price, as part of its burst. After the charge: increase/decrease notices to the
    contractor (card) and the reps. Before it: the reps' changed-bill notice, and the payer's
    updated reminder (the contractor's, or the rep's for a remitted bill)."""
    if entry.cents == burst.start_cents:
        return []  # back where the burst began: its notices are cancelled when due
    direction = "increase" if entry.cents > burst.start_cents else "decrease"
    cause = f"reprice:{entry.invoice_id}@{burst.id}"
    moment = money_moment(obj, created, withhold, burst.charged)
    change = {
        "invoice_id": entry.invoice_id,
        "old_premium_cents": burst.start_cents,
        "new_premium_cents": entry.cents,
        "difference_cents": abs(entry.cents - burst.start_cents),
        "payment_method": method(withhold),
        "charge_at": moment,
    }
    guard = {"invoice": entry.invoice_id, "burst": burst.id, "direction": direction}
    plans = [
        Plan(
            f"premium_{direction}_rep",
            cause,
            "rep",
            {**change, "charged": burst.charged},
            remind_at=burst.due,
            guard=guard,
        )
    ]
    if burst.charged:
        if not withhold:
            contractor = f"premium_{direction}_contractor"
            plans.append(
                Plan(contractor, cause, "contractor", change, remind_at=burst.due, guard=guard)
            )
        return plans
    if moment is None or entry.cents <= 0 or invoice_paid(obj):
        return plans
    updated = {
        "invoice_id": entry.invoice_id,
        "amount_cents": entry.cents,
        "previous_amount_cents": burst.start_cents,
    }
    reminder_guard = {"invoice": entry.invoice_id, "burst": burst.id, **work_on_job(obj, created)}
    if withhold:
        remind_at = moment - timing.remit_before
        if remind_at > burst.due:  # else the rep's change notice, naming the due date, is it
            plans.append(
                Plan(
                    "remit_bill_reminder_rep",
                    cause,
                    "rep",
                    {**updated, "due_at": moment},
                    remind_at=remind_at,
                    deadline=moment,
                    guard=reminder_guard,
                )
            )
        return plans
    remind_at = max(burst.due, moment - timing.lead)
    plans.append(
        Plan(
            "payment_reminder",
            cause,
            "contractor",
            {**updated, "charge_at": moment, "payment_method": "card"},
            remind_at=remind_at if remind_at > now else None,
            deadline=moment,
            guard=reminder_guard,
        )
    )
    return plans


def burst_outcome(
    entry: Premium | None, guard: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """At send time, what a notice of a burst says (its amounts), or why it is not sent.

    `entry` is the invoice's ledger entry as the send read it (having closed the burst). A
    change notice of a burst a newer one replaced still tells how that burst ended; a reminder
    gives way to the newer burst's reminder.
    """
    burst_id, change = guard.get("burst"), "direction" in guard
    burst = entry.burst if entry is not None else None
    prior = entry.prior if entry is not None else None
    if entry is not None and burst is not None and burst.id == burst_id:
        start, final = burst.start_cents, entry.cents
    elif change and prior is not None and prior.id == burst_id and prior.final_cents is not None:
        start, final = prior.start_cents, prior.final_cents
    else:
        return "superseded: re-priced again since; a later notice states the amount", {}
    if final == start:
        return "re-priced back: the premium ended where it was before the changes", {}
    if not change:
        return None, {"amount_cents": final, "previous_amount_cents": start}
    direction = "increase" if final > start else "decrease"
    if direction != guard["direction"]:
        return f"superseded: the re-prices ended in a {direction}", {}
    return None, {
        "old_premium_cents": start,
        "new_premium_cents": final,
        "difference_cents": abs(final - start),
    }
