"""The event task's work: claim a stored event, run its handler, record the outcome.

Handlers are idempotent, so re-running a finished step does no harm; see pipeline/leases.py
for the claim and the statuses.
"""

from __future__ import annotations

from ..ingest import events
from ..store.connection import text
from .handlers import handler_for
from .runtime import Runtime


def process(rt: Runtime, key: str, retries_left: bool) -> str:
    """Process the event stored at `key`; return its final status.

    `retries_left`: whether RQ will run the task again if this attempt raises; the record
    then waits as `received` instead of ending `failed`.
    """
    claimed = rt.leases.claim(key)
    if claimed != "claimed":
        return claimed
    source, event_id, body = rt.redis.hmget(key, "source", "event_id", "body")
    try:
        raw = body if isinstance(body, bytes) else text(body).encode()
        event = events.parse(raw, text(source), text(event_id))
        handler_for(event.type)(event, rt)
    except Exception as exc:
        # The error names the failure, never the payload: messages can quote personal data.
        error = type(exc).__name__
        if retries_left:
            rt.leases.wait_for_retry(key, error)
        else:
            rt.leases.finish(key, "failed", last_error=error)
        raise
    rt.leases.finish(key, "done", last_error="")
    return "done"
