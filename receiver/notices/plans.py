"""What a notice decision is made of and what it produces: the facts, the plans, the ledger.

Shared by the rules (notices/rules.py, notices/bills.py), the premium ledger (notices/ledger.py)
and the handlers that load the facts and create the records (pipeline/handlers.py). Pure data
and small pure helpers; no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DAY = 86400
CHARGE_DELAY_SECONDS = DAY  # 1099Policy charges a card 24 h after it emails the contractor

REMIT_DUE_DAYS = 30  # a remitted bill is due within 30 days of its bill date
# A burst's notices go out at least this long before the charge (or due date) they name.
CHARGE_MARGIN = 60


@dataclass(frozen=True)
class Timing:
    """How far ahead reminders go out (REMINDER_LEAD_HOURS, REMIT_REMINDER_DAYS,
    COVERAGE_ALERT_HOURS), and how long a failed charge may stay unpaid before the reps hear
    (CHARGE_RECOVERY_HOURS)."""

    lead: int = DAY
    coverage_alert: int = 12 * 3600  # the rep's alert of an uncovered assignment's start
    charge_recovery: int = 2 * DAY  # a failed charge not paid since: the reps' lapse alert
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
    """The first value that is a possible integer amount of cents (or Unix seconds): bools are
    not amounts, and a negative one is impossible, so it is passed over as if not given (a
    notice leaves out an amount it does not know rather than state one that is made up)."""
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def method(withhold: bool) -> str:
    return "remit" if withhold else "card"


def ahead(deadline: int, lead: int, now: int) -> int | None:
    """A reminder `lead` before `deadline`, or None (now) when that moment has passed."""
    return deadline - lead if deadline - lead > now else None


def invoice_paid(obj: dict[str, Any]) -> bool:
    """Whether an invoice object says it is paid in full."""
    return obj.get("paid") is True or obj.get("status") == "paid"


def work_on_job(obj: dict[str, Any], since: int) -> dict[str, Any]:
    """A guard's scope for a notice about one contractor's work on a job that names no
    assignment (a bill): moot once that contractor's assignment on the job is cancelled at or
    after `since` (when the bill was made). A job is shared by many contractors, so the job
    alone never settles anything; with no contractor or no job the scope is empty."""
    job, contractor = ref(obj.get("job")), ref(obj.get("contractor"))
    return {"job": job, "contractor": contractor, "since": since} if job and contractor else {}


VOID_STATUSES = frozenset({"void", "voided", "cancelled", "canceled"})


def invoice_void(obj: dict[str, Any]) -> bool:
    """Whether an invoice object says it was voided (nothing will be charged for it)."""
    status = obj.get("status")
    return obj.get("voided") is True or (
        isinstance(status, str) and status.strip().lower() in VOID_STATUSES
    )
