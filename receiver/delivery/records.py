"""Notice records: one durable record per (notice, cause, recipient), sent at most once.

A record's key is derived from its identity, so a replayed event, a re-queued task or a second
event describing the same cause finds the existing record and sends nothing. States:

    pending -> cancelled                      (a reminder whose subject was settled meanwhile)
    pending -> suppressed                     (the address is on the suppression list)
    pending -> sending -> accepted            (SendGrid answered 2xx)
                       -> pending (retry)     (429: at X-RateLimit-Reset; 5xx/timeout: backoff)
                       -> failed              (other 4xx, retries exhausted, render error)
    awaiting_contact -> pending               (the contractor's email became known)
    pending | awaiting_contact -> cancelled   (an operator cancels it in the console)
    failed -> pending                         (an operator retries it, interrupted ones too)
    sending (lease run out) -> failed ("interrupted") | accepted (SendGrid already reported it)
    failed ("interrupted") -> accepted        (a SendGrid event for it arrived)
                           -> pending         (no event within the wait: sent again, once)

`sending` is claimed with a lease before the provider is called. A record found in `sending`
with its lease run out means a worker died during the provider call: SendGrid may already
have queued that mail and has no idempotency key, so the record is marked `failed`
("interrupted") rather than sent again at once. Without SendGrid's Event Webhook
(SENDGRID_WEBHOOK_PUBLIC_KEY) it stays so, for an operator. With it, the record also gets a
`resend_at` (now + INTERRUPTED_SEND_WAIT_MINUTES) in notices:interrupted: any event SendGrid
sends for it meanwhile proves the mail was taken and makes it `accepted`; if none came, the
sweeper sends it again (`resend_interrupted`), once: the move is allowed only from `failed`
("interrupted") with no `resent_at`, in one script, so several workers' sweeps (or a sweep
beside an operator's retry) queue one send. A resend interrupted in turn stays `failed` for
an operator. The cost of the wait: a mail SendGrid took but reports only after the wait is
sent twice; SendGrid reports `processed` within seconds.

What SendGrid did with an accepted mail is kept apart, in the record's `delivery` fields that
delivery/sendgrid_events.py maintains; its events are also the evidence that turns an
interrupted (or ambiguously failed, awaiting retry) record `accepted`.

This module owns the record and its state changes; delivery/sending.py runs a send.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue

from ..clock import Clock
from ..notices.contacts import Contact, address_problem
from ..notices.reminders import send_time
from ..store import keys
from ..store.connection import text
from ..store.scripts import CreateIfAbsent, DirectScript, NotReplicated
from .suppressions import suppression_key

SEND_TASK = "receiver.pipeline.tasks.send_notice"
SEND_TIMEOUT = 60

# The records created due-now while an event task holds their sends (`NoticeRecords.holding`).
_held: ContextVar[list[str] | None] = ContextVar("held_sends", default=None)

_CLAIM = """
-- Claim a pending record for sending, unless its address is on the suppression list: then it
-- ends `suppressed` in the same step. A `sending` record whose lease ran out was interrupted.
-- KEYS[1]: notice record, KEYS[2]: notices:pending, KEYS[3]: the address's suppression entry,
-- KEYS[4]: notices:interrupted
-- ARGV[1]: now, ARGV[2]: lease seconds, ARGV[3]: seconds an interrupted send waits for
-- SendGrid's events before it is sent again ('': no Event Webhook, never sent again)
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
  redis.call('ZREM', KEYS[2], KEYS[1])
  if ARGV[3] ~= '' and (redis.call('HGET', KEYS[1], 'resent_at') or '') == '' then
    local at = tonumber(ARGV[1]) + tonumber(ARGV[3])
    redis.call('HSET', KEYS[1], 'state', 'failed', 'updated_at', ARGV[1], 'resend_at', at,
               'last_error', 'interrupted: the worker stopped during the provider call; ' ..
               'waiting for SendGrid to report it, else sent again once')
    redis.call('ZADD', KEYS[4], at, KEYS[1])
    return 'interrupted'
  end
  redis.call('HSET', KEYS[1], 'state', 'failed', 'updated_at', ARGV[1], 'resend_at', '',
             'last_error', 'interrupted: the worker stopped during the provider call; not resent')
  return 'interrupted'
end
return state or 'missing'
"""

# The send task's record read and its unconditional finish, as scripts so that they run on
# DirectScript's lean path (about half redis-py's Python cost per call).
_READ = """
-- KEYS[1]: notice record
return redis.call('HGETALL', KEYS[1])
"""
_FINISH = """
-- KEYS[1]: notice record, KEYS[2]: notices:pending
-- ARGV: field/value pairs of the final state
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], KEYS[1])
"""

_RELEASE = """
-- awaiting_contact -> pending, once, with the address filled in; the pending set makes the
-- sweeper send it even if the enqueue after this script is lost.
-- KEYS[1]: notice record, KEYS[2]: notices:pending, KEYS[3]: awaiting:<contractor>
-- ARGV[1]: record id, ARGV[2..5]: email, first name, last name, time zone, ARGV[6]: now
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'awaiting_contact' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending', 'to_email', ARGV[2], 'first_name', ARGV[3],
           'last_name', ARGV[4], 'timezone', ARGV[5], 'updated_at', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], KEYS[1])
return 1
"""

_FORGET_IF_DONE = """
-- Forget a contractor in the lookup index only if nothing of theirs waits any more, in one
-- step, so a notice created meanwhile cannot be orphaned.
-- KEYS[1]: awaiting:<contractor>, KEYS[2]: notices:awaiting; ARGV[1]: contractor id
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
"""

_FINISH_IF = """
-- Finish only a record still in the state the caller read, so a stale decision (a guard
-- checked before another task claimed the record) cannot overwrite a send.
-- KEYS[1]: notice record, KEYS[2]: notices:pending
-- ARGV[1]: the expected state; then field/value pairs of the final state
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
"""


_OPERATOR_CANCEL = """
-- An operator cancels a record not yet sent: pending (due now or scheduled) or waiting for
-- a contact. A record being sent, or already ended, is left as it is.
-- KEYS[1]: notice record, KEYS[2]: notices:pending, KEYS[3]: awaiting:<its contractor>
-- ARGV[1]: now, ARGV[2]: why (last_error), ARGV[3]: record id
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'pending' and state ~= 'awaiting_contact' then return state or 'missing' end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updated_at', ARGV[1], 'last_error', ARGV[2])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('SREM', KEYS[3], ARGV[3])
return 'moved'
"""

_OPERATOR_RETRY = """
-- An operator sends a failed record again, interrupted ones included (the operator decided
-- a second email is acceptable). Only from `failed`, so two retries queue one send.
-- KEYS[1]: notice record, KEYS[2]: notices:pending
-- ARGV[1]: now, ARGV[2]: who and why (retried_by)
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'failed' then return state or 'missing' end
if (redis.call('HGET', KEYS[1], 'to_email') or '') == '' then return 'no_address' end
-- An automatic resend still waiting (resend_at) is this retry now; the sweep skips it.
redis.call('HSET', KEYS[1], 'state', 'pending', 'updated_at', ARGV[1], 'send_at', '',
           'retried_by', ARGV[2], 'last_error', '', 'resend_at', '')
redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
return 'moved'
"""

_RESEND_INTERRUPTED = """
-- An interrupted send that SendGrid never reported, sent again: failed -> pending, once.
-- Only a record still `failed` as interrupted, with its wait scheduled and never resent, so
-- two workers' sweeps, or a sweep after an operator's retry or an event, queue one send.
-- KEYS[1]: notice record, KEYS[2]: notices:pending, KEYS[3]: notices:interrupted
-- ARGV[1]: now, ARGV[2]: why (retried_by)
redis.call('ZREM', KEYS[3], KEYS[1])
local r = redis.call('HMGET', KEYS[1], 'state', 'last_error', 'resend_at', 'resent_at')
if r[1] ~= 'failed' or string.sub(r[2] or '', 1, 11) ~= 'interrupted'
    or (r[3] or '') == '' or (r[4] or '') ~= '' then
  return r[1] or 'missing'
end
redis.call('HSET', KEYS[1], 'state', 'pending', 'updated_at', ARGV[1], 'send_at', '',
           'resend_at', '', 'resent_at', ARGV[1], 'retried_by', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
return 'moved'
"""


def _contractor_of(recipient: str, context: dict[str, Any]) -> str:
    """The contractor a record is about: its recipient, or the one a rep's notice names."""
    if recipient.startswith("contractor:"):
        return recipient.removeprefix("contractor:")
    person = context.get("contractor")
    return str(person.get("id") or "") if isinstance(person, dict) else ""


def record_id(notice: str, cause: str, recipient: str) -> str:
    """The stable id of a notice record; `recipient` is an identity like `contractor:cn_1`."""
    digest = hashlib.sha256(f"{notice}|{cause}|{recipient.lower()}".encode()).hexdigest()
    return "nt_" + digest[:32]


class NoticeRecords:
    """Create notice records, move them between states, and queue their send tasks."""

    def __init__(
        self,
        redis: Redis,
        queue: Queue,
        retention_days: int,
        clock: Clock,
        replicas: int = 0,
        replica_timeout_ms: int = 500,
        interrupted_wait: float | None = None,
    ) -> None:
        """`replicas` (REDIS_MIN_REPLICA_ACKS): a claim counts only once that many replicas
        have it (see `claim`). `interrupted_wait`: seconds an interrupted send waits for
        SendGrid's events before it is sent again once; None (no Event Webhook): never."""
        self.redis = redis
        self.queue = queue
        self.retention = retention_days * 86400
        self.clock = clock
        self.interrupted_wait = interrupted_wait
        self._create = CreateIfAbsent(redis)
        self._claim = DirectScript(redis, _CLAIM, 4, replicas, replica_timeout_ms)
        self._resend_interrupted = redis.register_script(_RESEND_INTERRUPTED)
        self._read = DirectScript(redis, _READ)
        self._finish = DirectScript(redis, _FINISH, numkeys=2)
        self._release = redis.register_script(_RELEASE)
        self._forget_if_done = redis.register_script(_FORGET_IF_DONE)
        self._finish_if = redis.register_script(_FINISH_IF)
        self._operator_cancel = redis.register_script(_OPERATOR_CANCEL)
        self._operator_retry = redis.register_script(_OPERATOR_RETRY)

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
        received_at: float | None = None,
    ) -> bool:
        """Record a notice and queue its send, unless a record with this identity exists.

        A reminder has a `send_at` (its task is scheduled with RQ's scheduler for then) and a
        `guard`, checked at send time so a reminder about something settled is not sent.

        Without an email the record waits (`awaiting_contact`) for contractor `waiting_for`,
        or, with nobody to wait for (no rep address configured), is `failed` at once so an
        operator sees it.
        """
        now = self.clock() if now is None else now
        rid = record_id(notice, cause, recipient)
        key = keys.notice(rid)
        problem = address_problem(contact.email) if contact.email else None
        if problem:  # an operator sees why; nothing would ever make it sendable
            state, error = "failed", problem
        elif contact.email:
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
                # When the event that caused it was received, for a notice sent at once:
                # the start of its webhook -> email latency (metrics).
                "received_at": received_at or "",
            },
        )
        # A reminder's record must outlive its send time by the usual retention.
        pipe.expire(key, self.retention + int(max(0.0, (send_at or now) - now)))
        # The console's lists: every record, and the records about each contractor.
        pipe.zadd(keys.NOTICES_INDEX, {key: now})
        about = _contractor_of(recipient, context)
        if about:
            pipe.zadd(keys.notices_of_contractor(about), {key: now})
            pipe.expire(keys.notices_of_contractor(about), self.retention)
        held = _held.get()
        hold = False
        if state == "pending":
            due = send_at if send_at and send_at > now else None
            hold = held is not None and due is None
            # Scored by when it is due, so the sweeper never sends a reminder early (and
            # re-queues a held send whose task died before sending it).
            pipe.zadd(keys.NOTICES_PENDING, {key: due or now})
            if not hold:
                self.enqueue(rid, pipe, at=due)
        elif state == "awaiting_contact":
            pipe.sadd(keys.awaiting(waiting_for), rid)
            pipe.expire(keys.awaiting(waiting_for), self.retention)
            pipe.zadd(keys.NOTICES_AWAITING, {waiting_for: now})
        created = self._create.apply(key, pipe)
        if created and hold and held is not None:
            held.append(rid)
        return created

    @contextmanager
    def holding(self) -> Iterator[list[str]]:
        """Within: a record created due now gets no send task; its id is listed instead, for
        the caller (the event task) to send in the same task.

        One RQ task per event instead of one per event and email: RQ's own bookkeeping of a
        task costs more worker CPU than the send (docs/performance.md). The record is created and
        scored in notices:pending exactly as before, so a task that dies before sending is
        recovered by the sweeper, and the claim keeps it once-only.
        """
        held: list[str] = []
        token = _held.set(held)
        try:
            yield held
        finally:
            _held.reset(token)

    def cancel(self, rid: str, why: str) -> str:
        """pending | awaiting_contact -> cancelled (`moved`), else the state that forbids it;
        a scheduled send task then finds the record cancelled and sends nothing."""
        key = keys.notice(rid)
        waiting = text(self.redis.hget(key, "waiting_for") or "")  # never changes once set
        return text(
            self._operator_cancel(
                keys=[key, keys.NOTICES_PENDING, keys.awaiting(waiting or "-")],
                args=[self.clock(), why, rid],
            )
        )

    def retry(self, rid: str, why: str) -> str:
        """failed -> pending with a send task queued now (`moved`), else the state that
        forbids it (or `no_address`)."""
        now = self.clock()
        moved = text(
            self._operator_retry(keys=[keys.notice(rid), keys.NOTICES_PENDING], args=[now, why])
        )
        if moved == "moved":
            self.enqueue(rid, task_id=f"{rid}-retry{int(now * 1000)}")
        return moved

    def decided_by(self, source: str, event_id: str, rids: list[str]) -> None:
        """Remember which records an event decided on (its outcome in the console)."""
        if not rids:
            return
        key = keys.event_notices(source, event_id)
        pipe = self.redis.pipeline()
        pipe.sadd(key, *rids)
        pipe.expire(key, self.retention)
        pipe.execute()

    def release(self, contractor_id: str, contact: Contact) -> int:
        """Address every notice awaiting this contractor's contact and queue its send."""
        released = 0
        waiting = keys.awaiting(contractor_id)
        for raw in self.redis.smembers(waiting):
            rid = text(raw)
            key = keys.notice(rid)
            moved = self._release(
                keys=[key, keys.NOTICES_PENDING, waiting],
                args=[
                    rid,
                    contact.email,
                    contact.first_name,
                    contact.last_name,
                    contact.timezone or "",
                    self.clock(),
                ],
            )
            if moved:
                self._retime(key, contact.timezone)
                self.enqueue(rid, task_id=f"{rid}-released")
                released += 1
        self._forget_if_done(keys=[waiting, keys.NOTICES_AWAITING], args=[contractor_id])
        return released

    def _retime(self, key: str, zone: str | None) -> None:
        """A reminder planned before its recipient's zone was known: redo its quiet hours."""
        remind_at, deadline = self.redis.hmget(key, "remind_at", "deadline")
        if not (remind_at or deadline):
            return
        now = self.clock()
        at = send_time(
            float(remind_at) if remind_at else None,
            float(deadline) if deadline else None,
            zone,
            now,
        )
        self.redis.hset(key, "send_at", at)
        self.redis.zadd(keys.NOTICES_PENDING, {key: max(at, now)})

    def awaiting_due(self, now: float, limit: int = 100) -> list[str]:
        """Contractor ids whose waiting notices are due another contact lookup."""
        raw = self.redis.zrangebyscore(keys.NOTICES_AWAITING, "-inf", now, start=0, num=limit)
        return [text(r) for r in raw]

    def retry_awaiting_later(self, contractor_id: str, at: float) -> None:
        self.redis.zadd(keys.NOTICES_AWAITING, {contractor_id: at})

    def enqueue(
        self, rid: str, pipeline: Pipeline | None = None, at: float | None = None, task_id: str = ""
    ) -> None:
        """Queue the record's send task now, or schedule it for `at`."""
        task_id = task_id or f"{rid}-{int(at or 0)}"
        job = self.queue.create_job(SEND_TASK, args=[rid], job_id=task_id, timeout=SEND_TIMEOUT)
        if at is None:
            self.queue.enqueue_job(job, pipeline=pipeline)
        else:
            self.queue.schedule_job(job, datetime.fromtimestamp(at, tz=UTC), pipeline=pipeline)

    def requeue(self, rid: str) -> None:
        """Queue a send task for a record now (the sweeper's recovery path)."""
        self.enqueue(rid, at=None, task_id=f"{rid}-r{int(self.clock())}")

    def reschedule(self, rid: str, at: float) -> None:
        """Score a pending record by when it is due and schedule its send task for then."""
        self.redis.zadd(keys.NOTICES_PENDING, {keys.notice(rid): at})
        self.enqueue(rid, at=at)

    def claim(self, rid: str, lease: float, email: str) -> str:
        """pending -> sending (or suppressed); an expired `sending` -> interrupted/accepted.

        `unreplicated` (with REDIS_MIN_REPLICA_ACKS): the claim ran on the primary but fewer
        replicas than asked have it, so nothing may be sent. A failover could lose it, and
        the record would then be found `pending` and sent again: the claim is what keeps an
        email single, so it must survive what the worker's other writes may not. The caller
        puts the record back (`unclaim`).
        """
        listed = suppression_key(email) if email else keys.NO_ADDRESS
        wait = "" if self.interrupted_wait is None else self.interrupted_wait
        try:
            reply = self._claim(
                keys.notice(rid),
                keys.NOTICES_PENDING,
                listed,
                keys.NOTICES_INTERRUPTED,
                self.clock(),
                lease,
                wait,
            )
        except NotReplicated as exc:
            # Only a new claim leads to a send; the other outcomes end or leave the record.
            return "unreplicated" if text(exc.reply) == "claimed" else text(exc.reply)
        return text(reply)

    def interrupted_due(self, now: float, limit: int = 100) -> list[str]:
        """Ids of interrupted sends whose wait for SendGrid's events is over."""
        raw = self.redis.zrangebyscore(keys.NOTICES_INTERRUPTED, "-inf", now, start=0, num=limit)
        return [text(r).removeprefix("notice:") for r in raw]

    def resend_interrupted(self, rid: str, why: str) -> str:
        """failed ("interrupted", never reported, never resent) -> pending with a send task
        queued (`moved`), once; else the state that forbids it."""
        moved = text(
            self._resend_interrupted(
                keys=[keys.notice(rid), keys.NOTICES_PENDING, keys.NOTICES_INTERRUPTED],
                args=[self.clock(), why],
            )
        )
        if moved == "moved":
            # A lost enqueue is no lost send: the record is in notices:pending.
            self.enqueue(rid, task_id=f"{rid}-resent")
        return moved

    def unclaim(self, rid: str, at: float) -> None:
        """An `unreplicated` claim undone: sending -> pending, the attempt not counted, the
        send task scheduled for `at`."""
        self.redis.hincrby(keys.notice(rid), "attempts", -1)
        self.retry_later(
            rid, at, "not sent yet: the claim had not reached a replica (REDIS_MIN_REPLICA_ACKS)"
        )

    def retry_later(self, rid: str, at: float, error: str) -> None:
        """sending -> pending, its send task scheduled for `at` (first: if scheduling fails,
        the record stays `sending` and the sweeper finds it)."""
        self.enqueue(rid, at=at)
        key = keys.notice(rid)
        self.redis.hset(
            key, mapping={"state": "pending", "last_error": error, "updated_at": self.clock()}
        )
        self.redis.zadd(keys.NOTICES_PENDING, {key: at})

    def finish(self, rid: str, state: str, **fields: Any) -> None:
        """Put the record in a final state, stamped now."""
        self._finish(keys.notice(rid), keys.NOTICES_PENDING, *self._finished(state, fields))

    def finish_pending(self, rid: str, state: str, **fields: Any) -> None:
        """Finish a record read as `pending`, unless another task moved it since."""
        self._finish_if(
            keys=[keys.notice(rid), keys.NOTICES_PENDING],
            args=["pending", *self._finished(state, fields)],
        )

    def update(self, rid: str, fields: dict[str, str]) -> None:
        """Change fields that are not the state (a reminder's recipient re-addressed)."""
        self.redis.hset(keys.notice(rid), mapping=fields)  # type: ignore[arg-type]

    def reported_by_sendgrid(self, rid: str) -> bool:
        """Whether SendGrid's Event Webhook has reported this record's mail at all."""
        return int(self.redis.hget(keys.notice(rid), "delivery_rank") or 0) > 0

    def get(self, rid: str) -> dict[str, str]:
        """The record as strings (empty dict when unknown)."""
        flat = self._read(keys.notice(rid))
        return {text(k): text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}

    def _finished(self, state: str, fields: dict[str, Any]) -> list[Any]:
        """HSET's field/value list for a record's final state, stamped now."""
        out: list[Any] = ["state", state, "updated_at", self.clock()]
        for name, value in fields.items():
            out += [name, value]
        return out
