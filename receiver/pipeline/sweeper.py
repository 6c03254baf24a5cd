"""Re-queue work whose job was lost, so a 2xx'd event is processed even after a crash.

A task (an RQ job) can vanish between acceptance and processing: a worker killed mid-job, a
Redis failover that drops the queue list, an operator clearing a queue. The event and notice
records are the truth; RQ is only the wake-up call. Every pending record sits in a sorted set
scored by when it was last (re)queued or is due; the sweeper re-queues what is older than
SWEEP_AFTER_SECONDS and still unfinished. Re-queueing is safe because the tasks claim their
record first. It also sends again, once, an interrupted send that SendGrid's events did not
account for within INTERRUPTED_SEND_WAIT_MINUTES (with the Event Webhook configured).

One worker sweeps at a time, and a sweep starts at most once an interval across workers: the
sweeper lock is taken for the sweep, renewed as it goes and left to live one interval after
it. A sweep that outlasts the interval (200 stale events took over a second on a loaded
2-core box) is not joined by another worker's, which would re-queue the same records twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import LockError
from rq import Queue
from rq.job import Job, JobStatus

from ..logs import record
from ..store import keys
from ..store.connection import text
from .runtime import Runtime

log = logging.getLogger(__name__)

# A sweep's longest step beyond Redis round trips: a contact lookup (connect and read, each
# up to the API's timeout). The lock outlives a step by this much.
STEP_MARGIN_SECONDS = 5.0


def _always() -> bool:
    return True


def _job_waiting(rt: Runtime, job_id: str) -> bool:
    """Whether RQ still holds a live job for this id: queued in the list of its own queue
    (RQ's `origin`: the events or the notices queue, or a queue of an older release), or
    scheduled."""
    try:
        job = Job.fetch(job_id, connection=rt.redis, serializer=rt.queue.serializer)
    except Exception:  # NoSuchJobError, or a job hash RQ cannot read: treat as lost
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED:
        return True
    if status == JobStatus.QUEUED:
        queue_key = Queue.redis_queue_namespace_prefix + (job.origin or rt.queue.name)
        return rt.redis.lpos(queue_key, job_id) is not None
    return False


def sweep_events(rt: Runtime, now: float, held: Callable[[], bool] = _always) -> int:
    """Re-queue stale received/processing events; return how many were re-queued. Stops
    when `held()` says the sweeper lock was lost."""
    cutoff = now - rt.cfg.SWEEP_AFTER_SECONDS
    requeued = 0
    for raw in rt.redis.zrangebyscore(keys.EVENTS_PENDING, "-inf", cutoff, start=0, num=500):
        if not held():
            break
        key = text(raw)
        status, lease, job_id = rt.redis.hmget(key, "status", "lease_until", "job_id")
        status = text(status)
        if status not in ("received", "processing"):
            rt.redis.zrem(keys.EVENTS_PENDING, key)
            continue
        if status == "processing" and float(lease or 0) > now:
            # Busy: look again when the lease ends (keeps the oldest-first window moving).
            rt.redis.zadd(keys.EVENTS_PENDING, {key: float(lease or 0)})
            continue
        if status == "received" and job_id and _job_waiting(rt, text(job_id)):
            rt.redis.zadd(keys.EVENTS_PENDING, {key: now})
            continue
        rt.inbox.enqueue(key)
        rt.redis.zadd(keys.EVENTS_PENDING, {key: now})
        requeued += 1
    return requeued


def sweep_notices(rt: Runtime, now: float, held: Callable[[], bool] = _always) -> int:
    """Re-queue notice records that are overdue and unfinished; return how many."""
    cutoff = now - rt.cfg.SWEEP_AFTER_SECONDS
    requeued = 0
    for raw in rt.redis.zrangebyscore(keys.NOTICES_PENDING, "-inf", cutoff, start=0, num=500):
        if not held():
            break
        key = text(raw)
        state, lease = rt.redis.hmget(key, "state", "lease_until")
        state = text(state)
        if state == "sending" and float(lease or 0) > now:
            rt.redis.zadd(keys.NOTICES_PENDING, {key: float(lease or 0)})
            continue
        if state not in ("pending", "sending"):
            rt.redis.zrem(keys.NOTICES_PENDING, key)
            continue
        rt.records.requeue(key.removeprefix("notice:"))
        rt.redis.zadd(keys.NOTICES_PENDING, {key: now})
        requeued += 1
    return requeued


def resend_interrupted(rt: Runtime, now: float, held: Callable[[], bool] = _always) -> int:
    """Send again, once, each interrupted send whose wait for SendGrid's events is over;
    return how many. The record's script decides (delivery/records.py): a record reported,
    retried or resent meanwhile, by this sweep or another worker's, is left as it is."""
    if rt.records.interrupted_wait is None:
        return 0
    why = (
        f"automatically: SendGrid reported nothing within {rt.cfg.INTERRUPTED_SEND_WAIT_MINUTES}"
        " minutes of the interrupted send"
    )
    resent = 0
    for rid in rt.records.interrupted_due(now):
        if not held():
            break
        outcome = rt.records.resend_interrupted(rid, why)
        if outcome == "moved":
            resent += 1
            record(
                log,
                "interrupted notice sent again",
                logging.WARNING,
                record_id=rid,
                outcome="resent",
            )
        else:
            record(log, "interrupted notice not sent again", record_id=rid, outcome=outcome)
    return resent


def retry_contacts(rt: Runtime, now: float, held: Callable[[], bool] = _always) -> int:
    """Look up contractors whose notices await a contact (1099Policy's API, if configured);
    release what can now be sent, and try the rest again after SWEEP_AFTER_SECONDS."""
    released = 0
    for contractor_id in rt.records.awaiting_due(now):
        if not held():
            break
        contact = rt.contacts.lookup(contractor_id)
        if contact is not None and contact.email:
            released += rt.records.release(contractor_id, contact)
        else:
            rt.records.retry_awaiting_later(contractor_id, now + rt.cfg.SWEEP_AFTER_SECONDS)
    return released


def trim_indexes(rt: Runtime, now: float) -> None:
    """The console's time indexes keep no member older than the records they point at."""
    oldest = f"({now - rt.cfg.EVENT_RETENTION_DAYS * 86400}"
    pipe = rt.redis.pipeline(transaction=False)
    for index in (keys.EVENTS_INDEX, keys.EVENTS_FAILED, keys.NOTICES_INDEX):
        pipe.zremrangebyscore(index, "-inf", oldest)
    pipe.execute()


class _Hold:
    """The sweeper lock, held by one sweep: it lives `lifetime` seconds, renewed whenever a
    third of that went by, so it is lost only to a step longer than that (then the sweep
    stops and the next one, another worker's, carries on)."""

    def __init__(self, rt: Runtime, lifetime: float) -> None:
        self.lock = rt.redis.lock(keys.SWEEPER_LOCK, timeout=lifetime, blocking=False)
        self.lifetime = lifetime
        self.renewed = time.monotonic()

    def take(self) -> bool:
        self.renewed = time.monotonic()
        return bool(self.lock.acquire(blocking=False))

    def __call__(self) -> bool:
        """Whether the lock is still this sweep's (renewing it when due)."""
        if time.monotonic() - self.renewed < self.lifetime / 3:
            return True
        try:
            self.lock.reacquire()
        except LockError:
            return False
        self.renewed = time.monotonic()
        return True

    def rest(self, seconds: float) -> None:
        """The sweep is done: the lock lives `seconds` more (no sweep before then)."""
        try:
            self.lock.extend(seconds, replace_ttl=True)
        except LockError:  # lost meanwhile: the other sweep's lock stands
            pass


def sweep(rt: Runtime, now: float | None = None, interval: float = 60) -> tuple[int, int]:
    """One sweep of events and notices, if no other worker is sweeping or swept less than
    an interval ago.

    Returns (events re-queued, notices re-queued, sent again or released).
    """
    now = rt.clock() if now is None else now
    rest = max(1, int(interval))
    step = STEP_MARGIN_SECONDS
    if rt.cfg.TEN99POLICY_API_KEY:
        step += 2 * rt.cfg.TEN99POLICY_API_TIMEOUT_SECONDS
    held = _Hold(rt, max(rest, step))
    if not held.take():
        return (0, 0)
    try:
        trim_indexes(rt, now)
        events = sweep_events(rt, now, held)
        notices = sweep_notices(rt, now, held) + resend_interrupted(rt, now, held)
        return events, notices + retry_contacts(rt, now, held)
    finally:
        held.rest(rest)
