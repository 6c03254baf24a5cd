"""The inbox: store an event, claim its de-duplication key and queue its job, atomically.

Redis is the store of record. Each accepted event is one hash, `event:<source>:<id>`, kept for
EVENT_RETENTION_DAYS; the key itself is the de-duplication key, so it lives exactly as long as
the event. The write, the claim and RQ's own enqueue commands go to Redis as *one* Lua call
(`atomic.CreateIfAbsent`): the script checks the key and, only if it is new, replays the
commands RQ would have sent (recorded from `Queue.enqueue_job` on an unexecuted pipeline). So:
- N racing identical deliveries: exactly one script run sees the key absent; the rest count a
  duplicate. One event, one job.
- Redis down mid-request: the call fails as a whole, nothing is half-written, the sender gets
  503 and retries.
- One round trip per delivery, which is what keeps the receive path near a bare endpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

from .atomic import CreateIfAbsent
from .errors import Unavailable
from .events import Event

PROCESS_JOB = "receiver.processing.process_event"
PENDING_KEY = "events:pending"
JOB_TIMEOUT = 60
JOB_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])

# Headers that carry signatures are not kept: they are credentials-adjacent and useless later.
_DROP_HEADERS = {"webhook-signature", "authorization", "cookie"}


def event_key(source: str, event_id: str) -> str:
    """The Redis key of an event record, which is also its de-duplication key."""
    return f"event:{source}:{event_id}"


def job_id_for(key: str) -> str:
    """A deterministic RQ job id (RQ allows only [A-Za-z0-9_-]) for an event key."""
    return "ev-" + hashlib.sha256(key.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Accepted:
    """What the inbox did with a delivery: `queued`, `ignored` or `duplicate`."""

    id: str
    status: str


class Inbox:
    """Accept verified events into Redis and RQ; see the module docstring for the guarantees."""

    def __init__(
        self, redis: Redis, queue: Queue, retention_days: int, signature_header: str
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.retention = retention_days * 86400
        self._drop = _DROP_HEADERS | {signature_header.lower()}
        self._create = CreateIfAbsent(redis)

    def accept(
        self, event: Event, body: bytes, headers: Mapping[str, str], now: float | None = None
    ) -> Accepted:
        """Store `event` once and queue it; a repeat of its id is reported as a duplicate."""
        now = time.time() if now is None else now
        key = event_key(event.source, event.id)
        status = "received" if event.known else "ignored"
        kept = {k: v for k, v in headers.items() if k.lower() not in self._drop}
        record: dict[str, Any] = {
            "source": event.source,
            "event_id": event.id,
            "type": event.type,
            "created": "" if event.created is None else event.created,
            "received_at": now,
            "updated_at": now,
            "body": body,
            "headers": json.dumps(kept),
            "status": status,
            "attempts": 0,
            "duplicates": 0,
            "job_id": job_id_for(key) if event.known else "",
        }
        recorder = self._create.recorder()
        recorder.hset(key, mapping=record)  # type: ignore[arg-type]  # invariant key type
        recorder.expire(key, self.retention)
        try:
            if event.known:
                recorder.zadd(PENDING_KEY, {key: now})
                self.enqueue(key, pipeline=recorder)
            created = self._create.apply(key, recorder, count_field="duplicates")
        except RedisError as exc:
            raise Unavailable("storage unavailable") from exc
        if not created:
            return Accepted(event.id, "duplicate")
        return Accepted(event.id, "queued" if event.known else "ignored")

    def enqueue(self, key: str, pipeline: Any = None) -> None:
        """Queue (or re-queue) the processing job of the event stored at `key`."""
        job = self.queue.create_job(
            PROCESS_JOB,
            args=[key],
            job_id=job_id_for(key),
            timeout=JOB_TIMEOUT,
            retry=JOB_RETRY,
            result_ttl=3600,
            failure_ttl=self.retention,
        )
        self.queue.enqueue_job(job, pipeline=pipeline)
