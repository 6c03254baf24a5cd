"""Send one notice record: render it, claim it, hand it to the mailer, record what happened.

Rendering comes before the claim: it is pure, so a crash there leaves the record `pending` and
the sweeper's re-run sends it. Only the provider call runs under the `sending` claim (see
delivery/records.py for why an interrupted call is never resent). A reminder that is early
(released from awaiting_contact, or a sweeper re-run) is scheduled for its time; one whose guard
the reminder rules explain away is `cancelled` with the reason; one planned days ago goes to
the contractor's address as known when it is sent, and every contractor notice shows its
times in the contractor's zone as known when it is sent. A notice of a burst of re-prices states the
amounts its burst ended at, worked out when it is sent (notices/reminders.py `Guards.check`)
and then kept in the record, so a retry sends the same email.

Retries: a 429 waits for X-RateLimit-Reset (with jitter, clamped to an hour; up to
MAX_THROTTLED_ATTEMPTS: throttling only says "later"); a 5xx or timeout backs off exponentially
with jitter (MAX_ATTEMPTS); any other 4xx fails at once with SendGrid's `errors[]` kept.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..logs import record
from ..notices.contacts import Contact, Contacts, address_problem
from ..notices.reminders import Guards
from ..store.metrics import (
    END_TO_END,
    LATENCY_BUCKETS,
    NOTICE_SECONDS,
    NOTICES,
    SENDGRID,
    Metrics,
)
from .emails import EmailRenderer, RenderedEmail, one_line
from .mailer import Mailer, OutgoingEmail, SendFailure, SendGridMailer
from .records import NoticeRecords
from .suppressions import Suppressions

MAX_ATTEMPTS = 6  # sends that ended in a 5xx or a timeout
MAX_THROTTLED_ATTEMPTS = 30  # 429s only say "later": they get a longer leash
MAX_THROTTLE_WAIT = 3600.0
# A claim no replica acknowledged in time (REDIS_MIN_REPLICA_ACKS): tried again after 5-10 s,
# as long as it takes; the replica is back or a failover has happened by then.
UNREPLICATED_RETRY_SECONDS = 5.0

# Context fields added since the previous release, with the values that make its stored
# records (reminders scheduled days ahead, notices awaiting a contact) read as it would have
# written them. Goes in the release after next, like receiver/processing.py's shims.
PREVIOUS_RELEASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "payment_reminder": {"previous_amount_cents": None},
    "remit_bill_reminder_rep": {"previous_amount_cents": None},
    "premium_increase_contractor": {"charge_at": None},
    "premium_increase_rep": {"charged": True, "charge_at": None},
    "premium_decrease_rep": {"charged": True, "charge_at": None},
}

# Signs a contractor's coverage-page link valid from `now` (None: links are off).
LinkMaker = Callable[[str, float], str | None]


def send_lease(provider_timeout: float) -> float:
    """How long a `sending` claim is trusted: a provider call can take up to its timeout."""
    return provider_timeout * 1.5 + 2


log = logging.getLogger(__name__)


@dataclass
class _Report:
    """What one run of the send task did, filled in as it goes; `send` logs and counts it."""

    record_id: str
    notice: str | None = None
    attempts: int | None = None
    http_status: int | None = None
    moved: bool = True  # False: a repeated task that changed nothing (so counts nothing)
    answer: str | None = None  # SendGrid's status class, when it was called
    due: float | None = None  # when the accepted notice was due (its latency)
    received: float | None = None  # when its event was received (webhook -> email latency)

    def log_fields(self) -> dict[str, Any]:
        fields = {
            "record_id": self.record_id,
            "notice": self.notice,
            "attempts": self.attempts,
            "http_status": self.http_status,
        }
        return {k: v for k, v in fields.items() if v is not None}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class Sender:
    """Runs the send task of a notice record (see the module docstring)."""

    def __init__(
        self,
        records: NoticeRecords,
        suppressions: Suppressions,
        mailer: Mailer,
        renderer: EmailRenderer,
        guards: Guards,
        contacts: Contacts,
        link: LinkMaker,
        clock: Clock,
        lease: float,
        backoff_base: float = 10.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.records = records
        self.suppressions = suppressions
        self.mailer = mailer
        self.renderer = renderer
        self.guards = guards
        self.contacts = contacts
        self.link = link
        self.clock = clock
        self.lease = lease
        self.backoff_base = backoff_base
        self.metrics = metrics
        self._sendgrid = isinstance(mailer, SendGridMailer)

    def send(self, rid: str) -> str:
        """Render, claim and send the record once; return the state it ends in (and log it)."""
        started = time.perf_counter()  # a duration for the log, not a time of day
        report = _Report(rid)
        try:
            state = self._send(rid, report)
        except Exception as exc:
            record(
                log,
                "notice failed",
                logging.WARNING,
                **report.log_fields(),
                outcome="error",
                error=type(exc).__name__,
                duration_ms=_ms(started),
            )
            self._count(report, "error")
            raise
        what = {"accepted": "notice sent", "failed": "notice failed"}.get(state, "notice")
        level = logging.WARNING if state in ("failed", "interrupted") else logging.INFO
        record(log, what, level, **report.log_fields(), outcome=state, duration_ms=_ms(started))
        if report.moved:
            self._count(report, state)
        return state

    def _count(self, report: _Report, outcome: str) -> None:
        """The send's outcome, SendGrid's status class and the latency, in one Redis call."""
        if self.metrics is None:
            return
        notice = report.notice or "unknown"
        updates = [self.metrics.count(NOTICES, (notice, outcome))]
        if self._sendgrid and report.answer is not None:
            updates.append(self.metrics.count(SENDGRID, (report.answer,)))
        now = self.clock()
        if report.due is not None:
            updates.append(
                self.metrics.observe(NOTICE_SECONDS, (notice,), LATENCY_BUCKETS, now - report.due)
            )
        if report.received is not None:
            updates.append(
                self.metrics.observe(END_TO_END, (notice,), LATENCY_BUCKETS, now - report.received)
            )
        self.metrics.add(*updates)

    def _send(self, rid: str, report: _Report) -> str:
        now = self.clock()
        rec = self.records.get(rid)
        report.notice = rec.get("notice", "")
        report.attempts = int(rec.get("attempts") or 0)
        state = rec.get("state")
        if state != "pending":
            if state == "sending":  # a re-run after a crash: the claim settles it
                claimed = self.records.claim(rid, self.lease, "")
                report.moved = claimed in ("accepted", "interrupted")
                return claimed
            report.moved = False  # a repeated task: nothing changed, nothing to count
            return state or "missing"
        send_at = float(rec.get("send_at") or 0)
        if send_at > now + 1:
            self.records.reschedule(rid, send_at)
            report.moved = False
            return "scheduled"
        guard = json.loads(rec["guard"]) if rec.get("guard") else None
        reason, resolved = self.guards.check(guard, now) if guard else (None, {})
        # A burst's notice is decided now (its burst closed, its amounts read): the console
        # shows when, beside the re-prices it coalesced.
        decided = {"decided_at": now} if guard and guard.get("burst") else {}
        if reason:
            self.records.finish_pending(rid, "cancelled", last_error=reason, **decided)
            return "cancelled"
        if resolved and guard:
            self._freeze(rid, rec, guard, resolved, decided)
        if rec["recipient"].startswith("contractor:"):
            current = self.contacts.stored(rec["recipient"].removeprefix("contractor:"))
            if rec.get("send_at"):
                self._readdress(rid, rec, current)
            self._rezone(rid, rec, current)
        problem = address_problem(rec.get("to_email", ""))
        if problem:  # learned later (a contact released or re-addressed): never sendable
            self.records.finish_pending(rid, "failed", last_error=problem)
            return "failed"
        try:
            email = self.renderer.render(rec["notice"], self._context(rec, now))
        except Exception as exc:
            self.records.finish_pending(
                rid, "failed", last_error=f"render failed: {type(exc).__name__}"
            )
            raise
        claimed = self.records.claim(rid, self.lease, rec.get("to_email", ""))
        if claimed == "suppressed":  # the address bounced, was dropped or reported spam
            self.suppressions.held(rec)
        if claimed == "unreplicated":  # sent once a replica has the claim: a moment later
            self.records.unclaim(rid, now + UNREPLICATED_RETRY_SECONDS * random.uniform(1, 2))
            report.moved = False
            return "pending"
        if claimed != "claimed":
            report.moved = claimed == "suppressed"
            return claimed
        message = OutgoingEmail(
            to_email=rec["to_email"],
            to_name=one_line(f"{rec['first_name']} {rec['last_name']}"),
            subject=email.subject,
            html=email.html,
            text=email.text,
            category=rec["notice"],
            record_id=rid,
        )
        report.attempts = int(rec["attempts"]) + 1
        try:
            message_id = self.mailer.send(message)
        except SendFailure as failure:
            report.http_status = failure.status
            report.answer = f"{failure.status // 100}xx" if failure.status else "none"
            return self._after_failure(rid, report.attempts, failure)
        report.answer = "2xx"
        self.records.finish(rid, "accepted", message_id=message_id, sent_at=self.clock())
        report.due = float(rec.get("send_at") or rec.get("created_at") or now)
        if rec.get("received_at") and not rec.get("send_at"):
            report.received = float(rec["received_at"])
        return "accepted"

    def _freeze(
        self,
        rid: str,
        rec: dict[str, str],
        guard: dict[str, Any],
        resolved: dict[str, Any],
        decided: dict[str, float],
    ) -> None:
        """Keep what a burst's notice says once worked out (and when), so a retry sends the
        same email even if the invoice was re-priced again meanwhile."""
        fields = {
            "context": json.dumps({**json.loads(rec["context"]), **resolved}),
            "guard": json.dumps({k: v for k, v in guard.items() if k != "burst"}),
            **{k: str(v) for k, v in decided.items()},
        }
        self.records.update(rid, fields)
        rec.update(fields)

    def _readdress(self, rid: str, rec: dict[str, str], current: Contact | None) -> None:
        """A reminder planned days ago goes to the contractor's address as known now."""
        if current is None or not current.email or current.email == rec["to_email"]:
            return
        fields = {
            "to_email": current.email,
            "first_name": current.first_name,
            "last_name": current.last_name,
            "timezone": current.timezone or rec["timezone"],
        }
        self.records.update(rid, fields)
        rec.update(fields)

    def _rezone(self, rid: str, rec: dict[str, str], current: Contact | None) -> None:
        """One zone per person: once the contractor's zone is known, every email sent after
        uses it, whatever was known when the record was created."""
        if current is None or not current.timezone or current.timezone == rec["timezone"]:
            return
        self.records.update(rid, {"timezone": current.timezone})
        rec["timezone"] = current.timezone

    def _after_failure(self, rid: str, attempts: int, failure: SendFailure) -> str:
        if self.records.reported_by_sendgrid(rid):
            # The Event Webhook reported this mail while our call was still open (then timed
            # out or answered 5xx): SendGrid took it, so a retry would be a second email.
            self.records.finish(
                rid, "accepted", accepted_by="evidence: SendGrid reported it during the failed call"
            )
            return "accepted"
        errors = json.dumps(failure.errors)[:2000]
        limit = MAX_THROTTLED_ATTEMPTS if failure.kind == "throttled" else MAX_ATTEMPTS
        if failure.kind == "permanent" or attempts >= limit:
            self.records.finish(rid, "failed", last_error=str(failure), errors=errors)
            return "failed"
        now = self.clock()
        if failure.kind == "throttled":
            # No reset time: a second from now. An absurd X-RateLimit-Reset (milliseconds,
            # years ahead) must not park the record.
            reset = failure.retry_at or now + 1 + random.uniform(0, 1)
            at = min(max(reset, now), now + MAX_THROTTLE_WAIT)
        else:
            at = now + self.backoff_base * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
        self.records.retry_later(rid, at, str(failure))
        return "pending"

    def rendered(self, rec: dict[str, str]) -> RenderedEmail:
        """The email of a record as a send now would render it (the operator's console)."""
        return self.renderer.render(rec["notice"], self._context(dict(rec), self.clock()))

    def _context(self, rec: dict[str, str], now: float) -> dict[str, Any]:
        """The template context: what the decision stored, plus who it is addressed to now and
        a coverage link valid from the moment of sending (when links are configured)."""
        context: dict[str, Any] = {
            **PREVIOUS_RELEASE_DEFAULTS.get(rec["notice"], {}),
            **json.loads(rec["context"]),
        }
        person = context.get("contractor")
        if context.get("coverage_url", 0) is None and isinstance(person, dict):
            context["coverage_url"] = self.link(str(person.get("id") or ""), now)
        # The greeting is by first name ("Hi Maya,"), never the full legal name.
        context["recipient"] = {
            "name": one_line(rec["first_name"]) or None,
            "email": rec["to_email"],
            "timezone": rec["timezone"] or None,
        }
        if rec["recipient"].startswith("contractor:") and isinstance(person, dict):
            # The contractor's own name may only have become known when the contact arrived.
            person["first_name"] = person.get("first_name") or rec["first_name"]
            person["last_name"] = person.get("last_name") or rec["last_name"]
        return context
