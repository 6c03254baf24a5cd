"""Connections to Redis and RQ, built the same way by the web and worker processes."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

# RQ's worker TTL for our workers. An idle RQ worker heartbeats when its blocking dequeue times
# out, every TTL - 15 s (RQ's default TTL of 420 s means every 405 s), and its key expires
# TTL + 60 s after the last heartbeat. 60 s: an idle worker heartbeats every 45 s and a dead
# one is gone from Redis within 2 minutes, which is what /readyz reads.
RQ_WORKER_TTL = 60


def text(value: Any) -> str:
    """A Redis reply (bytes, or None for a missing field) as text."""
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)


def build_redis(url: str) -> Redis:
    """A Redis client with short timeouts, so an outage becomes a fast 503, not a hang."""
    return Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        retry_on_timeout=False,
    )


# The queue of decided work (notice sends, rep alerts, coverage pushes, and the scheduled
# reminders and retries among them) is named after QUEUE_NAME, the events queue, so the web
# and worker processes of one deployment always agree on it. Workers dequeue it first.
NOTICE_QUEUE_SUFFIX = "-notices"


def notice_queue_name(events_queue: str) -> str:
    """The notices queue that goes with the events queue `events_queue` (QUEUE_NAME)."""
    return events_queue + NOTICE_QUEUE_SUFFIX


def build_queue(redis: Redis, name: str) -> Queue:
    """An RQ queue of JSON-serialized jobs only (RQ's pickle default is unsafe)."""
    return Queue(name, connection=redis, serializer=JSONSerializer)
