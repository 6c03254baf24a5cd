"""The event task's work: claim a stored event, run its handler, record the outcome, then
send the emails it decided that are due now.

Handlers are idempotent, so re-running a finished step does no harm; see pipeline/leases.py
for the claim and the statuses. The emails go out in the same task (one RQ task per event,
not one per event and email: RQ's per-task bookkeeping costs more worker CPU than a send), after
the event is recorded `done`; their records are the once-only guard and the sweeper's handle,
exactly as when each had its own task. Reminders and retries keep their scheduled tasks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from ..coverage.document import attribute
from ..ingest import envelopes
from ..ingest.envelopes import Event
from ..ingest.inbox import TASK_TIMEOUT
from ..logs import record, where
from ..notices.plans import ref
from ..store import keys
from ..store.connection import text
from ..store.metrics import EVENT_BUCKETS, EVENT_LATENCY, EVENT_SECONDS, EVENTS, LATENCY_BUCKETS
from .handlers import handler_for
from .runtime import Runtime

log = logging.getLogger(__name__)


def process(rt: Runtime, key: str, retries_left: bool, next_try_in: int | None = None) -> str:
    """Process the event stored at `key`; return its final status.

    `retries_left`: whether RQ will run the task again if this attempt raises; the record
    then waits as `received` instead of ending `failed`, `next_try_in` seconds from now (its
    `retry_at`, for the console). A failed attempt is one log line: the error's class, where
    it was raised and when the next try is (the worker logs no traceback: store/workers.py).
    """
    started = time.perf_counter()  # a duration for the log, not a time of day
    claimed = rt.leases.claim(key)
    if claimed != "claimed":
        return claimed
    source, event_id, etype, body, received = rt.redis.hmget(
        key, "source", "event_id", "type", "body", "received_at"
    )
    facts = {"source": text(source), "event_id": text(event_id), "type": text(etype)}
    arrived = float(received) if received else 0.0
    event: Event | None = None
    try:
        raw = body if isinstance(body, bytes) else text(body).encode()
        event = replace(
            envelopes.parse(raw, text(source), text(event_id)),
            received_at=float(received) if received else None,
        )
        with rt.records.holding() as held:
            try:
                handler_for(event.type)(event, rt)
            except Exception:
                # A retry of this event would find these records made and not list them
                # again: give them their own tasks now rather than wait for the sweeper.
                _queue_sends(rt, held)
                raise
    except Exception as exc:
        # The error names the failure, never the payload: messages can quote personal data.
        error = type(exc).__name__
        outcome = "retrying" if retries_left else "failed"
        retry = {"next_try_in": next_try_in} if retries_left and next_try_in is not None else {}
        if retries_left:
            retry_at = rt.clock() + next_try_in if next_try_in is not None else None
            rt.leases.wait_for_retry(key, error, retry_at)
        else:
            about = _contractor(rt, event) if event is not None else ""
            rt.leases.finish(key, "failed", arrived, about, last_error=error)
        record(
            log,
            "event processed",
            logging.WARNING,
            **facts,
            outcome=outcome,
            error=error,
            at=where(exc),
            **retry,
            duration_ms=_ms(started),
        )
        _count(rt, facts["type"], outcome, started)
        raise
    # After the handler: a policy event's owner may only now be mapped.
    rt.leases.finish(key, "done", arrived, _contractor(rt, event), last_error="")
    record(log, "event processed", **facts, outcome="done", duration_ms=_ms(started))
    _count(rt, facts["type"], "done", started, received)
    _send_held(rt, held, started)
    return "done"


def _contractor(rt: Runtime, event: Event) -> str:
    """The contractor an event is about, for the console's per-contractor lists: the one it
    names, or for a policy event (which never names one) the owner its refs map to."""
    who = attribute(event)
    found = who.contractor or ref(event.object.get("contractor"))
    if not found and event.type.startswith("contractor."):
        found = ref(event.object)
    for owned in () if found else who.refs:
        owner = rt.redis.get(keys.coverage_owner(owned))
        if owner:
            return text(owner)
    return found


def _send_held(rt: Runtime, held: list[str], started: float) -> None:
    """Send the event's due-now emails in this task, while a send's lease still fits in the
    task's timeout (RQ would kill the task mid-send: an `interrupted` record); the rest, and
    any send that raises, get their own task."""
    for n, rid in enumerate(held):
        if time.perf_counter() - started + rt.sender.lease > TASK_TIMEOUT - 5:
            _queue_sends(rt, held[n:])
            return
        try:
            rt.sender.send(rid)
        except Exception:  # logged by the sender; its own task tries again
            _queue_sends(rt, [rid])


def _queue_sends(rt: Runtime, rids: list[str]) -> None:
    """Give held sends their own tasks; if Redis refuses, the sweeper re-queues them."""
    for rid in rids:
        try:
            rt.records.enqueue(rid)
        except Exception as exc:
            record(log, "send not queued", logging.WARNING, record_id=rid, error=type(exc).__name__)


def _count(rt: Runtime, etype: str, outcome: str, started: float, received: object = None) -> None:
    """The event's outcome and duration in the shared metrics (one Redis call); for a done
    event also the time from its receipt (the first half of webhook -> email)."""
    seconds = time.perf_counter() - started
    metrics = rt.metrics
    updates = [
        metrics.count(EVENTS, (etype, outcome)),
        metrics.observe(EVENT_SECONDS, (etype,), EVENT_BUCKETS, seconds),
    ]
    if received:
        since = rt.clock() - float(text(received))
        updates.append(metrics.observe(EVENT_LATENCY, (etype,), LATENCY_BUCKETS, since))
    metrics.add(*updates)


def replay(rt: Runtime, source: str, event_id: str) -> str:
    """Process a stored event again (an operator's replay): `queued`, or why not.

    Safe by construction: handlers are idempotent and every notice record's identity is its
    (notice, cause, recipient), so state converges and no email already sent goes out again.
    """
    key = keys.event(source, event_id)
    reopened = rt.leases.reopen(key)
    if reopened != "reopened":
        return reopened
    rt.inbox.enqueue(key)
    record(log, "event replayed", source=source, event_id=event_id, outcome="queued")
    return "queued"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
