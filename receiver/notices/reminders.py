"""Reminders on time: when a reminder goes out, and whether it still should when its time comes.

- `send_time()` is pure: a reminder is due `lead` before what it reminds about; one that falls
  in the recipient's quiet hours (21:00-08:00 local) waits until 08:00, unless waiting would
  take it past the thing it reminds about (a reminder after the charge is no reminder).
- `Settlements` records what makes a scheduled reminder moot (an invoice paid or voided, an
  assignment charged, active or cancelled, a contractor's assignment on a job cancelled), each
  scoped to what its event is about (docs/notifications.md, "What settles what");
  `Guards.moot_reason()` checks a reminder's guard against them at send time, together with the
  ledger (an invoice re-priced since the reminder was planned).
- `Guards.check()` is what the send task asks: for a notice of a burst of re-prices it also
  closes the burst and works out, from the ledger, the amounts the notice states (see
  `rules.burst_outcome`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from redis import Redis

from ..store import keys
from .bills import burst_outcome
from .ledger import Ledger

QUIET_START = 21
QUIET_END = 8
DEFAULT_ZONE = "America/New_York"
# Scheduled notices about a moment: held through quiet hours unless that passes the moment,
# the moment kept in the guard as `deadline`. The reps' coverage-gap alert is one: held
# only while 08:00 still comes before the start, and an alert after the start is moot. The
# reps' unpaid-charge and CreatorIQ sync-missing alerts are held through quiet hours too;
# they have no moment to pass.
REMINDER_NOTICES = frozenset(
    {
        "payment_reminder",
        "assignment_charge_reminder",
        "remit_bill_reminder_rep",
        "coverage_missing_rep",
        "charge_unrecovered_rep",
        "creatoriq_sync_missing_rep",
    }
)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def after_quiet_hours(ts: float, zone: str | None) -> float:
    """`ts`, or 08:00 local if `ts` falls between 21:00 and 08:00 in `zone`."""
    tz = _zone(zone)
    local = datetime.fromtimestamp(ts, tz)
    if QUIET_END <= local.hour < QUIET_START:
        return ts
    day = local.date() + timedelta(days=1) if local.hour >= QUIET_START else local.date()
    return datetime.combine(day, time(QUIET_END), tzinfo=tz).timestamp()


def send_time(
    remind_at: float | None, deadline: float | None, zone: str | None, now: float
) -> float:
    """When a reminder planned for `remind_at` (None: now) about `deadline` should go out."""
    due = max(now, remind_at or now)
    shifted = after_quiet_hours(due, zone)
    if deadline is not None and shifted >= deadline:
        return due
    return shifted


class Settlements:
    """Facts that make reminders moot, kept as long as events are."""

    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.ttl = retention_seconds

    def mark(self, kind: str, object_id: str) -> None:
        """Record that `object_id` is settled: kind is `invoice_paid`, `invoice_void`,
        `assignment_charged`, `assignment_active` (1099Policy reported it bound),
        `assignment_cancelled` or `creator_synced` (a contractor with a CreatorIQ creator's
        email reached us; `object_id` is the email's digest)."""
        if object_id:
            self.redis.set(keys.settled(kind, object_id), 1, ex=self.ttl)

    def has(self, kind: str, object_id: str) -> bool:
        return bool(object_id) and bool(self.redis.exists(keys.settled(kind, object_id)))

    def mark_work_cancelled(self, job: str, contractor: str, at: int) -> None:
        """Record that `contractor`'s assignment on `job` was cancelled at `at` (the event's
        `created`): the contractor's bills on that job made until then are moot, a later bill
        (the contractor assigned again) is not, and nobody else's on the job is touched. The
        latest cancellation is kept."""
        if not (job and contractor):
            return
        key = keys.work_cancelled(job, contractor)
        known = self.redis.get(key)
        if known is None or int(known) < at:
            self.redis.set(key, at, ex=self.ttl)
        else:
            self.redis.expire(key, self.ttl)

    def work_cancelled(self, job: str, contractor: str, since: int) -> bool:
        """Whether `contractor`'s assignment on `job` was cancelled at or after `since`."""
        if not (job and contractor):
            return False
        known = self.redis.get(keys.work_cancelled(job, contractor))
        return known is not None and int(known) >= since

    def moot_reason(
        self, guard: dict[str, Any], current_premium: int | None, now: float
    ) -> str | None:
        """Why a reminder with this guard should no longer be sent, or None if it should."""
        deadline = guard.get("deadline")
        if isinstance(deadline, (int, float)) and now >= deadline:
            return "too late: what it reminds about is already past"
        invoice = guard.get("invoice", "")
        if invoice and self.has("invoice_paid", invoice):
            return "settled: the invoice was paid"
        if invoice and self.has("invoice_void", invoice):
            return "cancelled: the invoice was voided"
        premium = guard.get("premium")  # a burst's reminder has none: its burst decides
        if invoice and premium is not None and current_premium not in (None, premium):
            return "re-priced: a newer invoice amount replaced this one"
        assignment = guard.get("assignment", "")
        if assignment and guard.get("uncovered") and self.has("assignment_active", assignment):
            return "covered: 1099Policy reported the assignment active"
        if assignment and self.has("assignment_charged", assignment):
            return "settled: the assignment was charged"
        if assignment and self.has("assignment_cancelled", assignment):
            return "cancelled: the assignment was cancelled"
        if self.has("creator_synced", guard.get("creator", "")):
            return "synced: 1099Policy reported a contractor or application with the email"
        since = guard.get("since")
        if self.work_cancelled(
            str(guard.get("job", "")),
            str(guard.get("contractor", "")),
            int(since) if isinstance(since, (int, float)) else 0,
        ):
            return "cancelled: the contractor's assignment on the job was cancelled"
        return None


class Guards:
    """Whether a scheduled reminder still stands when its time comes (the send task asks)."""

    def __init__(self, settlements: Settlements, ledger: Ledger) -> None:
        self.settlements = settlements
        self.ledger = ledger

    def check(self, guard: dict[str, Any], now: float) -> tuple[str | None, dict[str, Any]]:
        """Why a notice with this guard should not go out (None: send it), and the context
        fields worked out now (a burst's amounts)."""
        fields: dict[str, Any] = {}
        burst = guard.get("burst")
        if burst:
            entry = self.ledger.close_burst(str(guard.get("invoice", "")), str(burst))
            reason, fields = burst_outcome(entry, guard)
            if reason:
                return reason, {}
        if "direction" in guard:
            return None, fields  # a change notice: only its burst decides
        return self.moot_reason(guard, now), fields

    def moot_reason(self, guard: dict[str, Any], now: float) -> str | None:
        """Why a reminder with this guard should not go out any more (None: send it)."""
        premium = self.ledger.invoice_premium(str(guard.get("invoice", "")))
        return self.settlements.moot_reason(guard, premium, now)
