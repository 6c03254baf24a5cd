"""Re-queue work whose job was lost, so a 2xx'd event is processed even after a crash.

A task (an RQ job) can vanish between acceptance and processing: a worker killed mid-job, a
Redis failover that drops the queue list, an operator clearing a queue. The event and notice
records are the truth; RQ is only the wake-up call. Every pending record sits in a sorted set
scored by when it was last (re)queued or is due; the sweeper re-queues what is older than
SWEEP_AFTER_SECONDS and still unfinished. Re-queueing is safe because the tasks claim their
record first.
"""

from __future__ import annotations

from rq import Queue
from rq.job import Job, JobStatus

from ..store import keys
from ..store.connection import text
from .runtime import Runtime


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


def sweep_events(rt: Runtime, now: float) -> int:
    """Re-queue stale received/processing events; return how many were re-queued."""
    cutoff = now - rt.cfg.SWEEP_AFTER_SECONDS
    requeued = 0
    for raw in rt.redis.zrangebyscore(keys.EVENTS_PENDING, "-inf", cutoff, start=0, num=500):
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


def sweep_notices(rt: Runtime, now: float) -> int:
    """Re-queue notice records that are overdue and unfinished; return how many."""
    cutoff = now - rt.cfg.SWEEP_AFTER_SECONDS
    requeued = 0
    for raw in rt.redis.zrangebyscore(keys.NOTICES_PENDING, "-inf", cutoff, start=0, num=500):
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


def retry_contacts(rt: Runtime, now: float) -> int:
    """Look up contractors whose notices await a contact (1099Policy's API, if configured);
    release what can now be sent, and try the rest again after SWEEP_AFTER_SECONDS."""
    released = 0
    for contractor_id in rt.records.awaiting_due(now):
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


def sweep(rt: Runtime, now: float | None = None, interval: float = 60) -> tuple[int, int]:
    """One sweep of events and notices, if no other worker is sweeping right now.

    Returns (events re-queued, notices re-queued or released).
    """
    now = rt.clock() if now is None else now
    if not rt.redis.set(keys.SWEEPER_LOCK, "1", nx=True, ex=max(1, int(interval))):
        return (0, 0)
    trim_indexes(rt, now)
    return sweep_events(rt, now), sweep_notices(rt, now) + retry_contacts(rt, now)
