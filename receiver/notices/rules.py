"""Which notices an event causes: a pure function of the event and the stored facts.

The spec is docs/notifications.md. `decide(event, facts)` returns the notices to create
(each with its cause, the identity that makes it once-only) and, for invoice events, the new
premium-ledger entry. It does no I/O: `pipeline/handlers.py` loads the facts, applies the
ledger entry with a compare-and-set, resolves recipients and creates the records.

Causes, so that "exactly once" means once per thing that happened:
- `charge:<invoice id>`: a card charge. `invoice.charge_card_succeeded` and an
  `assignment.active`/`application.complete` naming the same invoice share it.
- `charge_failed:<event id>`: each failed charge attempt warns once.
- `assignment:<assignment id>`: the pre-charge reminder of a reported assignment.
- `invoice:<invoice id>@<premium cents>`: a payment reminder for an amount; a re-priced
  invoice gets a reminder for its new amount, never a second one for the same amount.
- `reprice:<event id>`: a premium change applied to the ledger by that invoice event.
- `remit_bill:<invoice id>@<premium cents>`: the rep's reminder of a remitted bill's due date.

Reminders carry `remind_at` (when they are due; None: now), `deadline` (what they remind
about) and a `guard` that reminders.py checks at send time, so a reminder for a charge that
was settled, re-priced or cancelled in the meantime is not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..ingest.events import Event

DAY = 86400
CHARGE_DELAY_SECONDS = DAY  # 1099Policy charges a card 24 h after it emails the contractor

REMIT_DUE_DAYS = 30  # a remitted bill is due within 30 days of its bill date


@dataclass(frozen=True)
class Timing:
    """How far ahead reminders go out (REMINDER_LEAD_HOURS, REMIT_REMINDER_DAYS)."""

    lead: int = DAY
    remit_before: int = 7 * DAY


@dataclass(frozen=True)
class Premium:
    """The ledger's entry for one contractor and job: the latest invoice applied."""

    cents: int
    created: int
    event_id: str
    invoice_id: str
    previous: int | None  # what was known before this entry, so a re-run can re-derive

    def order(self) -> tuple[int, str]:
        """Newer-than order: by `created`, ties broken by event id (deterministic)."""
        return (self.created, self.event_id)


@dataclass(frozen=True)
class Facts:
    """What the stored state says about an event's contractor and job."""

    withhold: bool = False  # True: the organization remits; False: the contractor's card
    ledger: Premium | None = None
    assignment_premium: int | None = None
    charge_amount: int | None = None  # amount of the invoice a confirmation names, if known


@dataclass(frozen=True)
class Plan:
    """One notice to create: which, why (cause), for whom, and its notice-specific fields."""

    notice: str
    cause: str
    audience: str  # "contractor" or "rep"
    fields: dict[str, Any] = field(default_factory=dict)
    remind_at: int | None = None  # reminders only: when due (None: now)
    deadline: int | None = None  # reminders only: the moment they remind about
    guard: dict[str, Any] | None = None  # reminders only: checked again at send time


@dataclass(frozen=True)
class Decision:
    plans: tuple[Plan, ...] = ()
    ledger: Premium | None = None


def ref(value: Any) -> str:
    """An object reference may be an id string or an embedded object with an `id`."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def cents(*values: Any) -> int | None:
    """The first value that is an integer amount of cents (bools are not amounts)."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def method(withhold: bool) -> str:
    return "remit" if withhold else "card"


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
    return Decision(
        (
            Plan(
                "assignment_charge_failure",
                f"charge_failed:{event.id}",
                "contractor",
                {
                    "invoice_id": ref(obj),
                    "amount_cents": cents(
                        obj.get("premium_due"), obj.get("amount"), facts.charge_amount
                    )
                    or 0,
                    "failed_at": event.created or now,
                    "failure_reason": str(reason) if reason else None,
                },
            ),
        )
    )


def _ahead(deadline: int, lead: int, now: int) -> int | None:
    """A reminder `lead` before `deadline`, or None (now) when that moment has passed."""
    return deadline - lead if deadline - lead > now else None


def _assignment_created(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    obj = event.object
    premium = cents(obj.get("premium_due"))
    if facts.withhold or obj.get("bind") is False or premium is None:
        return Decision()  # remit: billed, no card charge; bind false: no charge at all
    charge_at = cents(obj.get("charge_at")) or (event.created or now) + CHARGE_DELAY_SECONDS
    return Decision(
        (
            Plan(
                "assignment_charge_reminder",
                f"assignment:{ref(obj)}",
                "contractor",
                {"assignment_id": ref(obj), "amount_cents": premium, "charge_at": charge_at},
                remind_at=_ahead(charge_at, timing.lead, now),
                deadline=charge_at,
                guard={"assignment": ref(obj), "job": ref(obj.get("job"))},
            ),
        )
    )


def _invoice(event: Event, facts: Facts, now: int, timing: Timing) -> Decision:
    """Platform `invoice.created` / `invoice.updated`: latest invoice wins (the ledger)."""
    obj = event.object
    new = cents(obj.get("premium_due"))
    if new is None:
        return Decision()
    created = event.created if event.created is not None else (cents(obj.get("created")) or 0)
    entry = Premium(new, created, event.id, ref(obj), None)
    ledger = facts.ledger
    if ledger is not None and ledger.event_id == event.id:
        entry = ledger  # a re-run after the ledger was written: same comparison as before
    elif ledger is not None and entry.order() < ledger.order():
        return Decision()  # an older invoice arriving late changes nothing, sends nothing
    else:
        previous = ledger.cents if ledger is not None else facts.assignment_premium
        entry = Premium(new, created, event.id, ref(obj), previous)
    plans: list[Plan] = []
    if entry.previous is not None and entry.previous != new:
        direction = "increase" if new > entry.previous else "decrease"
        fields = {
            "invoice_id": entry.invoice_id,
            "old_premium_cents": entry.previous,
            "new_premium_cents": new,
            "difference_cents": abs(new - entry.previous),
            "payment_method": method(facts.withhold),
        }
        if not facts.withhold:
            plans.append(
                Plan(f"premium_{direction}_contractor", f"reprice:{event.id}", "contractor", fields)
            )
        plans.append(Plan(f"premium_{direction}_rep", f"reprice:{event.id}", "rep", fields))
    if new > 0 and not invoice_paid(obj):
        guard = {"invoice": entry.invoice_id, "premium": new, "job": ref(obj.get("job"))}
        if facts.withhold:
            due_at = created + REMIT_DUE_DAYS * DAY
            plans.append(
                Plan(
                    "remit_bill_reminder_rep",
                    f"remit_bill:{entry.invoice_id}@{new}",
                    "rep",
                    {"invoice_id": entry.invoice_id, "amount_cents": new, "due_at": due_at},
                    remind_at=_ahead(due_at, timing.remit_before, now),
                    deadline=due_at,
                    guard=guard,
                )
            )
        else:
            charge_at = cents(obj.get("charge_at")) or created + CHARGE_DELAY_SECONDS
            plans.append(
                Plan(
                    "payment_reminder",
                    f"invoice:{entry.invoice_id}@{new}",
                    "contractor",
                    {
                        "invoice_id": entry.invoice_id,
                        "amount_cents": new,
                        "charge_at": charge_at,
                        "payment_method": "card",
                    },
                    remind_at=_ahead(charge_at, timing.lead, now),
                    deadline=charge_at,
                    guard=guard,
                )
            )
    return Decision(tuple(plans), ledger=entry)


def invoice_paid(obj: dict[str, Any]) -> bool:
    """Whether an invoice object says it is paid in full."""
    return obj.get("paid") is True or obj.get("status") == "paid"


Rule = Callable[[Event, Facts, int, Timing], Decision]

_RULES: dict[str, Rule] = {
    "invoice.charge_card_succeeded": _charge_succeeded,
    "assignment.active": _coverage_with_invoice,
    "application.complete": _coverage_with_invoice,
    "invoice.charge_card_failed": _charge_failed,
    "assignment.created": _assignment_created,
    "invoice.created": _invoice,
    "invoice.updated": _invoice,
    # Sends nothing itself, but settles the reminders of the assignment and its job.
    "assignment.cancelled": lambda event, facts, now, timing: Decision(),
}

NOTIFYING_TYPES = frozenset(_RULES)


def decide(event: Event, facts: Facts, now: int = 0, timing: Timing | None = None) -> Decision:
    """The notices `event` causes given `facts`, and the ledger entry it writes (if any)."""
    rule = _RULES.get(event.type)
    return rule(event, facts, now, timing or Timing()) if rule else Decision()
