"""Notice records: one durable record per (notice, cause, recipient), sent at most once.

A record's key is derived from its identity, so a replayed event, a re-queued job or a second
event describing the same cause finds the existing record and sends nothing. States:

    pending -> cancelled                      (a reminder whose subject was settled meanwhile)
    pending -> suppressed                     (the address is on the suppression list)
    pending -> sending -> accepted            (SendGrid answered 2xx)
                       -> pending (retry)     (429: at X-RateLimit-Reset; 5xx/timeout: backoff)
                       -> failed              (other 4xx, retries exhausted, render error)
    awaiting_contact -> pending               (the contractor's email became known)

`sending` is claimed with a lease before the provider is called. A record found in `sending`
with its lease run out means a worker died during the provider call: SendGrid may already
have queued that mail and has no idempotency key, so the record is marked `failed`
("interrupted") for an operator rather than risking a second email.

What SendGrid did with an accepted mail is kept apart, in the `delivery` fields that
delivery_events.py maintains; its events are also the evidence that turns an interrupted (or
ambiguously failed, awaiting retry) record `accepted`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue

from .atomic import CreateIfAbsent
from .emails import one_line
from .mailer import Mailer, OutgoingEmail, SendFailure
from .reminders import send_time
from .stores import DirectScript, text
from .suppressions import Suppressions, suppression_key

SEND_JOB = "receiver.deliveries.send_notice_job"
PENDING_KEY = "notices:pending"
AWAITING_KEY = "notices:awaiting"  # contractor ids with notices waiting, scored by next lookup
MAX_ATTEMPTS = 6  # sends that ended in a 5xx or a timeout
MAX_THROTTLED_ATTEMPTS = 30  # 429s only say "later": they get a longer leash
MAX_THROTTLE_WAIT = 3600.0

# Claim a pending record for sending, unless its address is on the suppression list
# (KEYS[3]; see suppressions.py): then it ends `suppressed`, in the same step.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'pending' and redis.call('EXISTS', KEYS[3]) == 1 then
  local reason = redis.call('HGET', KEYS[3], 'reason') or ''
  redis.call('HSET', KEYS[1], 'state', 'suppressed', 'updated_at', ARGV[1], 'last_error',
             'not sent: the address is on the suppression list (' .. reason .. ')')
  redis.call('ZREM', KEYS[2], KEYS[1])
  return 'suppressed'
end
if state == 'pending' then
  redis.call('HSET', KEYS[1], 'state', 'sending', 'lease_until', ARGV[1] + ARGV[2],
             'updated_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  return 'claimed'
end
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') or 0
if state == 'sending' and lease < tonumber(ARGV[1]) then
  if (tonumber(redis.call('HGET', KEYS[1], 'delivery_rank') or '0') or 0) > 0 then
    -- SendGrid's Event Webhook already reported this mail: it was taken.
    redis.call('HSET', KEYS[1], 'state', 'accepted', 'updated_at', ARGV[1],
               'accepted_by', 'evidence: SendGrid reported it during the interrupted call')
    redis.call('ZREM', KEYS[2], KEYS[1])
    return 'accepted'
  end
  redis.call('HSET', KEYS[1], 'state', 'failed', 'updated_at', ARGV[1], 'last_error',
             'interrupted: the worker stopped during the provider call; not resent')
  redis.call('ZREM', KEYS[2], KEYS[1])
  return 'interrupted'
end
return state or 'missing'
"""


# The send job's record read and its unconditional finish, as scripts so that they run on
# DirectScript's lean path (about half redis-py's Python cost per call).
_READ = "return redis.call('HGETALL', KEYS[1])"
_FINISH = """
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], KEYS[1])
"""

# awaiting_contact -> pending, once, with the address filled in; the pending set makes the
# sweeper send it even if the enqueue after this script is lost.
_RELEASE = """
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'awaiting_contact' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'to_email', ARGV[2], 'first_name', ARGV[3],
           'last_name', ARGV[4], 'timezone', ARGV[5], 'updated_at', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], KEYS[1])
return 1
"""

# Forget a contractor in the lookup index only if nothing of theirs waits any more, in one
# step, so a notice created meanwhile cannot be orphaned.
_FORGET_IF_DONE = """
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
"""

# Finish only a record still in the state the caller read, so a stale decision (a guard
# checked before another job claimed the record) cannot overwrite a send.
_FINISH_IF = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
"""


def awaiting_key(contractor_id: str) -> str:
    return f"awaiting:{contractor_id}"


def record_id(notice: str, cause: str, recipient: str) -> str:
    """The stable id of a notice record; `recipient` is an identity like `contractor:cn_1`."""
    digest = hashlib.sha256(f"{notice}|{cause}|{recipient.lower()}".encode()).hexdigest()
    return "nt_" + digest[:32]


def record_key(rid: str) -> str:
    return f"notice:{rid}"


@dataclass(frozen=True)
class Contact:
    """Where a notice goes. An empty email means the notice waits for one."""

    email: str
    first_name: str = ""
    last_name: str = ""
    timezone: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Deliveries:
    """Create notice records and run their send jobs."""

    def __init__(self, redis: Redis, queue: Queue, retention_days: int,
                 backoff_base: float = 10.0) -> None:
        self.redis = redis
        self.backoff_base = backoff_base
        self.queue = queue
        self.retention = retention_days * 86400
        self._create = CreateIfAbsent(redis)
        self._claim = DirectScript(redis, _CLAIM, numkeys=3)
        self._read = DirectScript(redis, _READ)
        self._finish_script = DirectScript(redis, _FINISH, numkeys=2)
        self._release = redis.register_script(_RELEASE)
        self._forget_if_done = redis.register_script(_FORGET_IF_DONE)
        self._finish_if = redis.register_script(_FINISH_IF)
        self.suppressions = Suppressions(redis, queue)

    def create(
        self,
        notice: str,
        cause: str,
        recipient: str,
        contact: Contact,
        context: dict[str, Any],
        now: float | None = None,
        waiting_for: str = "",
        send_at: float | None = None,
        guard: dict[str, Any] | None = None,
        remind_at: float | None = None,
        deadline: float | None = None,
    ) -> bool:
        """Record a notice and queue its send, unless a record with this identity exists.

        A reminder has a `send_at` (its job is scheduled with RQ's scheduler for then) and a
        `guard`, checked at send time so a reminder about something settled is not sent.

        Without an email the record waits (`awaiting_contact`) for contractor `waiting_for`,
        or, with nobody to wait for (no rep address configured), is `failed` at once so an
        operator sees it.
        """
        now = time.time() if now is None else now
        rid = record_id(notice, cause, recipient)
        key = record_key(rid)
        if contact.email:
            state, error = "pending", ""
        elif waiting_for:
            state, error = "awaiting_contact", ""
        else:
            state, error = "failed", "no recipient address (set ORG_REP_EMAILS)"
        pipe = self._create.recorder()
        pipe.hset(
            key,
            mapping={
                "id": rid,
                "notice": notice,
                "cause": cause,
                "recipient": recipient,
                "to_email": contact.email,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "timezone": contact.timezone or "",
                "waiting_for": waiting_for,
                "context": json.dumps(context),
                "state": state,
                "attempts": 0,
                "message_id": "",
                "last_error": error,
                "created_at": now,
                "updated_at": now,
                "send_at": send_at or "",
                "guard": json.dumps(guard) if guard else "",
                "remind_at": remind_at or "",
                "deadline": deadline or "",
            },
        )
        # A reminder's record must outlive its send time by the usual retention.
        pipe.expire(key, self.retention + int(max(0.0, (send_at or now) - now)))
        if state == "pending":
            due = send_at if send_at and send_at > now else None
            # Scored by when it is due, so the sweeper never sends a reminder early.
            pipe.zadd(PENDING_KEY, {key: due or now})
            self._enqueue(rid, pipe, at=due)
        elif state == "awaiting_contact":
            pipe.sadd(awaiting_key(waiting_for), rid)
            pipe.expire(awaiting_key(waiting_for), self.retention)
            pipe.zadd(AWAITING_KEY, {waiting_for: now})
        return self._create.apply(key, pipe)

    def release(self, contractor_id: str, contact: Contact) -> int:
        """Address every notice awaiting this contractor's contact and queue its send."""
        released = 0
        for raw in self.redis.smembers(awaiting_key(contractor_id)):
            rid = text(raw)
            key = record_key(rid)
            moved = self._release(
                keys=[key, PENDING_KEY, awaiting_key(contractor_id)],
                args=[rid, contact.email, contact.first_name, contact.last_name,
                      contact.timezone or "", time.time()],
            )
            if moved:
                self._retime(key, contact.timezone)
                self._enqueue(rid, job_id=f"{rid}-released")
                released += 1
        self._forget_if_done(keys=[awaiting_key(contractor_id), AWAITING_KEY],
                             args=[contractor_id])
        return released

    def _retime(self, key: str, zone: str | None) -> None:
        """A reminder planned before its recipient's zone was known: redo its quiet hours."""
        remind_at, deadline = self.redis.hmget(key, "remind_at", "deadline")
        if not (remind_at or deadline):
            return
        now = time.time()
        at = send_time(float(remind_at) if remind_at else None,
                       float(deadline) if deadline else None, zone, now)
        self.redis.hset(key, "send_at", at)
        self.redis.zadd(PENDING_KEY, {key: max(at, now)})

    def awaiting_due(self, now: float, limit: int = 100) -> list[str]:
        """Contractor ids whose waiting notices are due another contact lookup."""
        raw = self.redis.zrangebyscore(AWAITING_KEY, "-inf", now, start=0, num=limit)
        return [text(r) for r in raw]

    def retry_awaiting_later(self, contractor_id: str, at: float) -> None:
        self.redis.zadd(AWAITING_KEY, {contractor_id: at})

    def _enqueue(
        self, rid: str, pipeline: Any = None, at: float | None = None, job_id: str = ""
    ) -> None:
        job_id = job_id or f"{rid}-{int(at or 0)}"
        job = self.queue.create_job(SEND_JOB, args=[rid], job_id=job_id, timeout=60)
        if at is None:
            self.queue.enqueue_job(job, pipeline=pipeline)
        else:
            self.queue.schedule_job(job, datetime.fromtimestamp(at, tz=UTC), pipeline=pipeline)

    def requeue(self, rid: str) -> None:
        """Queue a send job for a record now (the sweeper's recovery path)."""
        self._enqueue(rid, at=None, job_id=f"{rid}-r{int(time.time())}")

    def send(self, rid: str, mailer: Mailer, render: Any, lease: float,
             now: float | None = None, moot: Any = None, link: Any = None,
             contact: Any = None) -> str:
        """Render, claim and send the record once; return the state it ends in.

        Rendering comes before the claim: it is pure, so a crash there leaves the record
        `pending` and the sweeper's re-run sends it. Only the provider call runs under the
        `sending` claim. A reminder that is early (released from awaiting_contact, or a
        sweeper re-run) is scheduled for its time; one whose guard `moot(guard)` explains
        away is `cancelled` with the reason.
        """
        now = time.time() if now is None else now
        key = record_key(rid)
        rec = self.get(rid)
        if rec.get("state") != "pending":
            return self._claim_state(key, lease) if rec.get("state") == "sending" else (
                rec.get("state") or "missing"
            )
        send_at = float(rec.get("send_at") or 0)
        if send_at > now + 1:
            self.redis.zadd(PENDING_KEY, {key: send_at})
            self._enqueue(rid, at=send_at)
            return "scheduled"
        reason = moot(json.loads(rec["guard"]), now) if moot and rec.get("guard") else None
        if reason:
            self._finish_pending(key, "cancelled", last_error=reason)
            return "cancelled"
        if contact is not None and rec.get("send_at") and rec["recipient"].startswith(
            "contractor:"
        ):
            self._readdress(key, rec, contact(rec["recipient"].removeprefix("contractor:")))
        try:
            email = render(rec["notice"], _context(rec, link, now))
        except Exception as exc:
            self._finish_pending(key, "failed", last_error=f"render failed: {type(exc).__name__}")
            raise
        claimed = self._claim_state(key, lease, rec.get("to_email", ""))
        if claimed == "suppressed":  # the address bounced, was dropped or reported spam
            self.suppressions.held(rec)
        if claimed != "claimed":
            return claimed
        message = OutgoingEmail(
            to_email=rec["to_email"],
            to_name=one_line(f"{rec['first_name']} {rec['last_name']}"),
            subject=email.subject,
            html=email.html, text=email.text, category=rec["notice"], record_id=rid,
        )
        try:
            message_id = mailer.send(message)
        except SendFailure as failure:
            return self._after_failure(key, rid, int(rec["attempts"]) + 1, failure)
        self._finish(key, "accepted", message_id=message_id)
        return "accepted"

    def _readdress(self, key: str, rec: dict[str, str], current: Contact | None) -> None:
        """A reminder planned days ago goes to the contractor's address as known now."""
        if current is None or not current.email or current.email == rec["to_email"]:
            return
        fields = {"to_email": current.email, "first_name": current.first_name,
                  "last_name": current.last_name, "timezone": current.timezone or ""}
        self.redis.hset(key, mapping=fields)  # type: ignore[arg-type]  # invariant key type
        rec.update(fields)

    def _claim_state(self, key: str, lease: float, email: str = "") -> str:
        listed = suppression_key(email) if email else "suppressed:none"
        return text(self._claim(key, PENDING_KEY, listed, time.time(), lease))

    def _after_failure(self, key: str, rid: str, attempts: int, failure: SendFailure) -> str:
        if int(self.redis.hget(key, "delivery_rank") or 0) > 0:
            # The Event Webhook reported this mail while our call was still open (then timed
            # out or answered 5xx): SendGrid took it, so a retry would be a second email.
            self._finish(key, "accepted",
                         accepted_by="evidence: SendGrid reported it during the failed call")
            return "accepted"
        errors = json.dumps(failure.errors)[:2000]
        limit = MAX_THROTTLED_ATTEMPTS if failure.kind == "throttled" else MAX_ATTEMPTS
        if failure.kind == "permanent" or attempts >= limit:
            self._finish(key, "failed", last_error=str(failure), errors=errors)
            return "failed"
        now = time.time()
        if failure.kind == "throttled" and failure.retry_at:
            # An absurd X-RateLimit-Reset (milliseconds, years ahead) must not park the record.
            at = min(max(failure.retry_at, now), now + MAX_THROTTLE_WAIT)
        else:
            at = now + self.backoff_base * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
        self._enqueue(rid, at=at)  # first: if this fails the record stays `sending`, then swept
        self.redis.hset(key, mapping={"state": "pending", "last_error": str(failure),
                                      "updated_at": now})
        self.redis.zadd(PENDING_KEY, {key: at})
        return "pending"

    def _finish_pending(self, key: str, state: str, **fields: Any) -> None:
        """Finish a record this job read as `pending`, unless another job moved it since."""
        self._finish_if(keys=[key, PENDING_KEY], args=["pending", *_finished(state, fields)])

    def _finish(self, key: str, state: str, **fields: Any) -> None:
        self._finish_script(key, PENDING_KEY, *_finished(state, fields))

    def get(self, rid: str) -> dict[str, str]:
        """The record as strings (empty dict when unknown)."""
        flat = self._read(record_key(rid))
        return {text(k): text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}


def _finished(state: str, fields: dict[str, Any]) -> list[Any]:
    """HSET's field/value list for a record's final state, stamped now."""
    out: list[Any] = ["state", state, "updated_at", time.time()]
    for name, value in fields.items():
        out += [name, value]
    return out


def _context(rec: dict[str, str], link: Any = None, now: float | None = None) -> dict[str, Any]:
    """The template context: what the decision stored, plus who it is addressed to now and,
    when `link` signs one, a coverage link valid from the moment of sending."""
    context: dict[str, Any] = json.loads(rec["context"])
    person = context.get("contractor")
    if link is not None and context.get("coverage_url", 0) is None and isinstance(person, dict):
        context["coverage_url"] = link(str(person.get("id") or ""), now)
    name = f"{rec['first_name']} {rec['last_name']}".strip()
    context["recipient"] = {"name": name or None, "email": rec["to_email"],
                            "timezone": rec["timezone"] or None}
    if rec["recipient"].startswith("contractor:") and isinstance(person, dict):
        # The contractor's own name may only have become known when the contact arrived.
        person["first_name"] = person.get("first_name") or rec["first_name"]
        person["last_name"] = person.get("last_name") or rec["last_name"]
    return context


def send_notice_job(rid: str) -> str:
    """RQ entry point: send one notice record (see `Deliveries.send`)."""
    from .runtime import current

    rt = current()
    return rt.deliveries.send(rid, rt.mailer, rt.render, lease=rt.send_lease, now=rt.clock(),
                              moot=rt.moot_reason, link=rt.coverage_link,
                              contact=rt.current_contact)
