"""The suppression list: addresses SendGrid told us are undeliverable, and what that stops.

An address goes on the list when SendGrid reports a hard bounce, a drop for an address-level
reason (invalid, previously bounced, previously reported as spam) or a spam report. From then
on a notice to it is not sent: its record ends `suppressed`, and the organization rep gets one
alert per contractor (delivery/address_alerts.py) so a person can correct the address.

Why these and not others:
- `bounce` of type `blocked` is left out: a block is about the sender (IP reputation,
  content), not the address, and SendGrid itself does not suppress blocks.
- `bounce` of type `expired` is left out too: SendGrid gave up after 72 hours of temporary
  (4xx) refusals, so the receiving server was down or busy, which says nothing about the
  address. Suppressing it would silence every later payment notice to a good address.
- Drops for "Unsubscribed Address", "Invalid SMTPAPI header", "Spam Content" and the like are
  left out for the same reason: the address may be fine.
- The list is account-wide like SendGrid's own: an address bounced by any sender on the
  account would be dropped by SendGrid anyway, so a verified event suppresses it even when it
  names no notice record of ours.

Privacy: an entry is keyed by the SHA-256 of the lower-cased address and holds only the
reason, the time and the record that caused it; the address itself is never in a key name,
an entry or a log line. Entries do not expire (SendGrid's lists do not either); a corrected
address is a different key, and `remove()` lifts a suppression on purpose.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue

from ..store import keys
from ..store.connection import text

ALERT_TASK = "receiver.pipeline.tasks.alert_rep"
# The event kinds, as SendGrid names them, that can suppress an address.
SUPPRESSING_EVENTS = ("bounce", "dropped", "spamreport")
# Bounce types that are not about the address (compared lower-cased; see the module docstring).
NON_SUPPRESSING_BOUNCE_TYPES = frozenset({"blocked", "expired"})
# Drop reasons that say the address itself is the problem (compared lower-cased).
SUPPRESSING_DROP_REASONS = frozenset({"invalid", "bounced address", "spam reporting address"})


def address_hash(email: str) -> str:
    """The SHA-256 hex digest of the trimmed, lower-cased address."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def suppression_key(email: str) -> str:
    return keys.suppressed(address_hash(email))


def suppresses(event: str, reason: str, bounce_type: str) -> bool:
    """Whether a SendGrid event of this kind and reason puts its address on the list."""
    if event == "spamreport":
        return True
    if event == "bounce":
        return bounce_type.strip().lower() not in NON_SUPPRESSING_BOUNCE_TYPES
    if event == "dropped":
        return reason.strip().lower() in SUPPRESSING_DROP_REASONS
    return False


@dataclass(frozen=True)
class Suppression:
    """Why and when an address was suppressed (`reason`: bounced, dropped or spamreport)."""

    reason: str
    at: int
    record: str


class Suppressions:
    """Read and change the list; hold back notices to listed addresses."""

    def __init__(self, redis: Redis, queue: Queue | None = None) -> None:
        self.redis = redis
        self.queue = queue

    def contains(self, email: str) -> bool:
        return bool(email) and bool(self.redis.exists(suppression_key(email)))

    def get(self, email: str) -> Suppression | None:
        raw = self.redis.hgetall(suppression_key(email)) if email else {}
        if not raw:
            return None
        entry = {text(k): text(v) for k, v in raw.items()}
        return Suppression(
            entry.get("reason", ""), int(float(entry.get("at") or 0)), entry.get("record", "")
        )

    def add(self, email: str, reason: str, at: int, record: str = "") -> bool:
        """Suppress an address (the first reason stays); True when it was not listed yet."""
        key = suppression_key(email)
        if not self.redis.hsetnx(key, "reason", reason):
            return False
        self.redis.hset(key, mapping={"at": at, "record": record})
        return True

    def remove(self, email: str) -> bool:
        """Lift a suppression (an operator confirmed the address works again)."""
        return bool(self.redis.delete(suppression_key(email)))

    def held(self, rec: dict[str, str]) -> None:
        """A notice was just held back (the send claim found its address listed): a
        contractor's notice queues the rep alert, whose own identity makes it one per
        contractor and address, however many notices are held."""
        if rec.get("recipient", "").startswith("contractor:"):
            queue_alert(self.queue, rec["id"])


def queue_alert(queue: Queue | None, rid: str, pipeline: Any = None) -> None:
    """Queue the rep alert for the contractor notice `rid` (see address_alerts.alert_rep)."""
    if queue is None:
        return
    job = queue.create_job(
        ALERT_TASK,
        args=[rid],
        job_id=f"alert-{rid}",
        timeout=60,
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )
    queue.enqueue_job(job, pipeline=pipeline)
