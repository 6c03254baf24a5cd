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
- `invoice:<invoice id>@<premium cents>`: the payment reminder of a new bill (the first event
  of an invoice id).
- `remit_bill:<invoice id>@<premium cents>`: the rep's reminder of a new remitted bill.
- `reprice:<invoice id>@<burst>`: every notice of one burst of re-prices of an invoice (the
  change notices and the updated reminder); `<burst>` is the id of the burst's first event.

A premium change is a change to one bill: the ledger is kept per invoice id, and a new invoice
of the same job is a new bill, never an increase or decrease. Re-prices of one invoice within
`Timing.coalesce` seconds form a burst (`Burst`, kept in the ledger entry); its notices are
due when the burst ends and say what it ended at: `burst_outcome()` works that out at send
time from the ledger, so one email per recipient states the final amount and the one before.

Reminders carry `remind_at` (when they are due; None: now), `deadline` (what they remind
about) and a `guard` that reminders.py checks at send time, so a reminder for a charge that
was settled, re-priced or cancelled in the meantime is not sent. A burst's change notices carry
`remind_at` (the burst's end) and a guard naming the burst and the direction they announce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..ingest.events import Event

DAY = 86400
CHARGE_DELAY_SECONDS = DAY  # 1099Policy charges a card 24 h after it emails the contractor

REMIT_DUE_DAYS = 30  # a remitted bill is due within 30 days of its bill date
# A burst's notices go out at least this long before the charge (or due date) they name.
CHARGE_MARGIN = 60


@dataclass(frozen=True)
class Timing:
    """How far ahead reminders go out (REMINDER_LEAD_HOURS, REMIT_REMINDER_DAYS)."""

    lead: int = DAY
    remit_before: int = 7 * DAY
    coalesce: int = 300  # NOTICE_COALESCE_SECONDS: how long a burst of re-prices gathers


@dataclass(frozen=True)
class Burst:
    """Re-prices of one invoice that end in one notice per recipient.

    It begins with a re-price when no burst is open, and re-prices decided before `due` join
    it, unless a notice of it was already sent (`closed`, set atomically at send time, so a
    re-price is either in what the notice says or starts the next burst).
    """

    id: str  # the first re-price's event id: the notices' cause names it
    start_cents: int  # the premium before the burst: what the notices say it "was"
    due: int  # when its notices go out (never after the charge they name)
    charged: bool  # the invoice was charged or paid when the burst began
    closed: bool = False
    final_cents: int | None = None  # set once a newer burst replaced it: what it ended at


@dataclass(frozen=True)
class Premium:
    """The ledger's entry for one invoice: its latest event applied, and its re-price burst."""

    cents: int
    created: int
    event_id: str
    invoice_id: str
    previous: int | None  # what was known before this entry, so a re-run can re-derive
    burst: Burst | None = None  # the latest burst of re-prices (open or not)
    prior: Burst | None = None  # the burst before it, with its final amount

    def order(self) -> tuple[int, str]:
        """Newer-than order: by `created`, ties broken by event id (deterministic)."""
        return (self.created, self.event_id)

    def version(self) -> str:
        """What the compare-and-set compares: the event, and whether its burst was closed."""
        closed = self.burst is not None and self.burst.closed
        return self.event_id + ("+closed" if closed else "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Premium:
        burst, prior = doc.get("burst"), doc.get("prior")
        return cls(
            **{
                **doc,
                "burst": Burst(**burst) if isinstance(burst, dict) else None,
                "prior": Burst(**prior) if isinstance(prior, dict) else None,
            }
        )


@dataclass(frozen=True)
class Facts:
    """What the stored state says about an event's contractor, job and invoice."""

    withhold: bool = False  # True: the organization remits; False: the contractor's card
    ledger: Premium | None = None  # the entry of the event's invoice
    paid: bool = False  # the event's invoice was charged or paid (a settlement says so)
    charge_amount: int | None = None  # amount of the invoice a confirmation names, if known


@dataclass(frozen=True)
class Plan:
    """One notice to create: which, why (cause), for whom, and its notice-specific fields."""

    notice: str
    cause: str
    audience: str  # "contractor" or "rep"
    fields: dict[str, Any] = field(default_factory=dict)
    remind_at: int | None = None  # reminders and change notices: when due (None: now)
    deadline: int | None = None  # reminders only: the moment they remind about
    guard: dict[str, Any] | None = None  # checked again at send time (None: send as is)


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
    guard = {"invoice": entry.invoice_id, "premium": new, "job": ref(obj.get("job"))}
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
                remind_at=_ahead(due_at, timing.remit_before, now),
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
            remind_at=_ahead(charge_at, timing.lead, now),
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
    reminder_guard = {"invoice": entry.invoice_id, "burst": burst.id, "job": ref(obj.get("job"))}
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
