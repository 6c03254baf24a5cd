"""The operator's health page: is work flowing, and is anything stuck or failing?"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from ..pipeline.runtime import Runtime
from ..store import keys
from ..store.connection import text
from ..store.metrics import RECONCILE
from ..store.workers import workers_seen

_PERSISTENCE = (
    "aof_enabled",
    "aof_last_write_status",
    "rdb_last_bgsave_status",
    "rdb_last_save_time",
)


LOOK_AT = 2000  # unprocessed events read for the retrying count, oldest first


def _backlog(rt: Runtime, now: float) -> tuple[int, float | None]:
    """(events waiting for a retry, the age of the oldest unprocessed event that is not), of
    the oldest LOOK_AT unprocessed events: a retried event waits by design (5 s to 30 min), so
    counting it as lag would hide real lag behind it or raise a false alarm."""
    retrying, oldest = 0, None
    members = rt.redis.zrange(keys.EVENTS_PENDING, 0, LOOK_AT - 1)
    pipe = rt.redis.pipeline(transaction=False)
    for member in members:
        pipe.hmget(text(member), "status", "last_error", "received_at")
    for status, error, received in pipe.execute():
        if text(status) == "received" and text(error):
            retrying += 1
        elif oldest is None and received:
            oldest = max(0.0, now - float(received))
    return retrying, oldest


def _oldest_notice_age(rt: Runtime, now: float) -> float | None:
    """How overdue the most overdue unsent notice is (scored by when it is due)."""
    due = rt.redis.zrangebyscore(keys.NOTICES_PENDING, "-inf", now, start=0, num=1, withscores=True)
    return max(0.0, now - float(due[0][1])) if due else None


def _failed_in_last_hour(rt: Runtime, index: str, field: str, status: str, now: float) -> int:
    """Members of `index` whose record is `status` since an hour ago (newest 2000 looked at)."""
    members = rt.redis.zrevrange(index, 0, 1999)
    pipe = rt.redis.pipeline(transaction=False)
    for member in members:
        pipe.hmget(text(member), field, "updated_at")
    return sum(
        1
        for state, updated in pipe.execute()
        if text(state or b"") == status and float(updated or 0) >= now - 3600
    )


def health(rt: Runtime) -> dict[str, Any]:
    now = rt.clock()
    try:
        info = rt.redis.info("persistence")
        persistence: dict[str, Any] = {k: info.get(k) for k in _PERSISTENCE}
        aof = rt.redis.config_get("appendonly").get("appendonly")
        persistence["appendonly"] = {"yes": "on", "no": "off"}.get(str(aof), "unknown")
    except ResponseError:  # a managed Redis that refuses INFO or CONFIG
        persistence = {"appendonly": "unknown"}
    reconciled = rt.redis.hget(keys.metric(RECONCILE), "last_success")
    retrying, oldest = _backlog(rt, now)
    queues = {}
    for queue in rt.queues:
        queues[queue.name] = {
            "queued": queue.count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            "failed": FailedJobRegistry(queue=queue).count,
        }
    return {
        "at": now,
        "queues": queues,
        "workers_seen": workers_seen(rt.redis, now),
        "oldest_unprocessed_event_seconds": oldest,
        "events_retrying": retrying,
        "oldest_overdue_notice_seconds": _oldest_notice_age(rt, now),
        "events_unprocessed": rt.redis.zcard(keys.EVENTS_PENDING),
        "failed_last_hour": {
            "events": _failed_in_last_hour(rt, keys.EVENTS_FAILED, "status", "failed", now),
            "notices": _failed_in_last_hour(rt, keys.NOTICES_INDEX, "state", "failed", now),
        },
        "redis_persistence": persistence,
        "last_reconcile": float(reconciled) if reconciled else None,
    }
