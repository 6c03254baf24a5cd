"""The event job: claim a stored event, run its handler, record the outcome.

An event's status goes received -> processing -> done | failed, with `attempts` and
`last_error` on the record. The claim is a lease: a second job for the same event (a sweeper
re-queue, an operator requeue) does nothing while the first holds it, and takes over if the
first worker died. Handlers are idempotent, so re-running a finished step does no harm.
"""

from __future__ import annotations

import time
from typing import Any

from rq import get_current_job

from . import events
from .handlers import handler_for
from .inbox import JOB_TIMEOUT, PENDING_KEY, key_for_job
from .stores import text

LEASE_SECONDS = JOB_TIMEOUT + 30

_CLAIM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
local lease = tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') or 0
if status == 'received' or status == 'failed'
   or (status == 'processing' and lease < tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'status', 'processing', 'lease_until', ARGV[1] + ARGV[2],
             'updated_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  return 'claimed'
end
return status
"""


def _finish(redis: Any, key: str, status: str, **fields: Any) -> None:
    pipe = redis.pipeline()
    pipe.hset(key, mapping={"status": status, "updated_at": time.time(), **fields})
    pipe.zrem(PENDING_KEY, key)
    pipe.execute()


def process_event(key: str | None = None) -> str:
    """RQ entry point: process the event stored at `key` (by default, the one the running
    job's id names); return its final status."""
    from .runtime import current

    rt = current()
    if key is None:
        job = get_current_job()
        if job is None:
            raise RuntimeError("process_event needs a key outside an RQ job")
        key = key_for_job(job.id)
    now = time.time()
    # EVALSHA of the registered script, not EVAL: the source is not resent with every job.
    claimed = text(rt.redis.register_script(_CLAIM)(keys=[key], args=[now, LEASE_SECONDS]))
    if claimed != "claimed":
        return claimed
    source, event_id, body = rt.redis.hmget(key, "source", "event_id", "body")
    try:
        raw = body if isinstance(body, bytes) else text(body).encode()
        event = events.parse(raw, text(source), text(event_id))
        handler_for(event.type)(event, rt)
    except Exception as exc:
        job = get_current_job()
        retrying = job is not None and (job.retries_left or 0) > 0
        # The error names the failure, never the payload: messages can quote personal data.
        _finish_or_wait(rt.redis, key, retrying, f"{type(exc).__name__}")
        raise
    _finish(rt.redis, key, "done", last_error="")
    return "done"


def _finish_or_wait(redis: Any, key: str, retrying: bool, error: str) -> None:
    if retrying:
        redis.hset(key, mapping={"status": "received", "last_error": error,
                                 "updated_at": time.time()})
    else:
        _finish(redis, key, "failed", last_error=error)
