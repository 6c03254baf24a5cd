"""The inbox: store an event, claim its de-duplication key and queue its job, atomically.

Redis is the store of record. Each accepted event is one hash, `event:<source>:<id>`, kept for
EVENT_RETENTION_DAYS; the key itself is the de-duplication key, so it lives exactly as long as
the event. Storing it, claiming it and queueing its RQ job are ONE Lua call:
- N racing identical deliveries: exactly one call sees the key absent; the rest count a
  duplicate. One event, one job.
- Redis down mid-request: the call fails as a whole, nothing is half-written, the sender gets
  503 and retries.
- One round trip with few arguments per delivery: that is what keeps the receive path close to
  a bare endpoint (bench/; the cost is Python-side command packing, not Redis).

RQ's job hash is written by the script from a template that RQ itself produced: at first use
the inbox records what `Queue.enqueue_job` would send for a canonical job and bakes those
fields (all identical for every event job, because the job carries no arguments: its id
encodes the event key) into the script. Only the id and timestamps vary per event. A test
compares the result with RQ's own enqueue, field by field, so an RQ upgrade that changes the
job format fails loudly. The script names keys it builds itself: single Redis, not Cluster.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

from ..config import Config
from ..errors import Unavailable
from ..store import keys, metrics
from ..store.scripts import DirectScript, NotReplicated
from .envelopes import Event

PROCESS_TASK = "receiver.pipeline.tasks.process_event"
TASK_TIMEOUT = 60
TASK_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])

# The request headers kept with an event (shown to console viewers): what says how and by whom
# it was sent, never credentials or signatures. A list of what to keep, not of what to drop: a
# proxy's or a client's own credential header (X-Api-Key, Proxy-Authorization) is never kept.
KEPT_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "webhook-id", "webhook-timestamp"}
)


def task_id_for(key: str) -> str:
    """The RQ job id of an event: its key, base64url-encoded (RQ allows [A-Za-z0-9_-])."""
    return "ev-" + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def key_for_task(job_id: str) -> str:
    """The event key an event job's id encodes (the inverse of `task_id_for`)."""
    raw = job_id.removeprefix("ev-")
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


def _lua(value: Any) -> str:
    """A Lua string literal for any Redis value, bytes-exact (decimal escapes)."""
    data = value if isinstance(value, bytes) else str(value).encode()
    safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:"
    return '"' + "".join(chr(c) if c in safe else f"\\{c:03d}" for c in data) + '"'


# Field names and constant values live in the script: every argument is packed and sent per
# request, the script is not.
_ACCEPT = """
-- Store the event, claim its id and queue its task, only if the id is new.
-- KEYS[1]: event:<source>:<id> (RQ's job hash and queue keys, the two metric hashes and
-- the console's events:index are baked in below)
-- ARGV[1]: retention, ARGV[2]: RQ job id ('' for ignored types), ARGV[3]: RQ timestamp,
-- ARGV[4]: received time (also the events:pending score), ARGV[5]: source, ARGV[6]: event id,
-- ARGV[7]: type, ARGV[8]: created, ARGV[9]: body, ARGV[10]: headers
local key = KEYS[1]
redis.call('HSET', {last_received_key}, ARGV[5], ARGV[4])
if redis.call('EXISTS', key) == 1 then
  redis.call('HINCRBY', key, 'duplicates', 1)
  redis.call('HINCRBY', {webhooks_key}, ARGV[5] .. '|duplicate|', 1)
  return 0
end
local queued = ARGV[2] ~= ''
redis.call('HINCRBY', {webhooks_key}, ARGV[5] .. (queued and '|queued|' or '|ignored|'), 1)
redis.call('HSET', key, 'source', ARGV[5], 'event_id', ARGV[6], 'type', ARGV[7],
           'created', ARGV[8], 'received_at', ARGV[4], 'updated_at', ARGV[4], 'body', ARGV[9],
           'headers', ARGV[10], 'status', queued and 'received' or 'ignored',
           'attempts', 0, 'duplicates', 0, 'job_id', ARGV[2])
redis.call('EXPIRE', key, ARGV[1])
redis.call('ZADD', {index_key}, ARGV[4], key)
if queued then
  redis.call('HSET', {job_prefix} .. ARGV[2], {template},
             'created_at', ARGV[3], 'enqueued_at', ARGV[3])
  redis.call('RPUSH', {queue_key}, ARGV[2])
  redis.call('SADD', {queues_key}, {queue_key})
  redis.call('ZADD', {pending_key}, ARGV[4], key)
end
return 1
"""


@dataclass(frozen=True)
class Accepted:
    """What the inbox did with a delivery: `queued`, `ignored` or `duplicate`."""

    id: str
    status: str


class Inbox:
    """Accept verified events into Redis and RQ; see the module docstring for the guarantees."""

    def __init__(
        self,
        redis: Redis,
        queue: Queue,
        retention_days: int,
        replicas: int = 0,
        replica_timeout_ms: int = 500,
    ) -> None:
        """`replicas` (REDIS_MIN_REPLICA_ACKS): an accept counts only once that many replicas
        have it (WAIT, in the same round trip); until then the sender gets a 503."""
        self.redis = redis
        self.queue = queue
        self.retention = retention_days * 86400
        self._replicas = (replicas, replica_timeout_ms)
        self._script: Any = None  # built on first use: making it asks Redis its version
        self._second: tuple[int, str] = (-1, "")  # RQ timestamps' last whole second, formatted

    @classmethod
    def from_config(cls, redis: Redis, queue: Queue, cfg: Config) -> Inbox:
        """The inbox the settings describe (web process and workers alike)."""
        return cls(
            redis,
            queue,
            cfg.EVENT_RETENTION_DAYS,
            cfg.REDIS_MIN_REPLICA_ACKS,
            cfg.REDIS_REPLICA_ACK_TIMEOUT_MS,
        )

    def _accept_script(self) -> Any:
        if self._script is None:
            recorder = self.redis.pipeline()
            recorder.multi()  # RQ insists on an explicit transaction; it is never executed
            job = self._job("template")
            self.queue.enqueue_job(job, pipeline=recorder)
            fields: list[Any] = []
            for args, _options in recorder.command_stack:
                if args[0] == "HSET" and args[1] == job.key and len(args) > 4:
                    pairs = zip(args[2::2], args[3::2], strict=True)
                    for name, value in pairs:
                        if name not in ("created_at", "enqueued_at"):
                            fields += [name, self.redis.get_encoder().encode(value)]
            source = _ACCEPT.format(
                job_prefix=_lua(job.redis_job_namespace_prefix),
                template=", ".join(_lua(v) for v in fields),
                queue_key=_lua(self.queue.key),
                queues_key=_lua(self.queue.redis_queues_keys),
                pending_key=_lua(keys.EVENTS_PENDING),
                # the operator's console lists events newest first from this index
                index_key=_lua(keys.EVENTS_INDEX),
                # store/metrics.py's families, counted here to cost the receive path no call
                webhooks_key=_lua(keys.metric(metrics.WEBHOOKS)),
                last_received_key=_lua(keys.metric(metrics.LAST_RECEIVED)),
            )
            replicas, timeout_ms = self._replicas
            self._script = DirectScript(self.redis, source, 1, replicas, timeout_ms)
        return self._script

    def accept(self, event: Event, body: bytes, headers: Mapping[str, str], now: float) -> Accepted:
        """Store `event` once and queue it; a repeat of its id is reported as a duplicate."""
        key = keys.event(event.source, event.id)
        job_id = task_id_for(key) if event.known else ""
        kept = {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
        created = "" if event.created is None else event.created
        # RQ's own timestamp format (utcformat), built without a datetime; its whole-second
        # part is formatted once a second (a tuple swap: safe for threads and greenlets).
        second, prefix = self._second
        if second != int(now):
            second, prefix = int(now), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            self._second = (second, prefix)
        stamp = f"{prefix}.{int(now % 1 * 1e6):06d}Z"
        try:
            script = self._accept_script()
            stored = script(
                key, self.retention, job_id, stamp, now,
                event.source, event.id, event.type, created, body, json.dumps(kept),
            )  # fmt: skip
        except NotReplicated as exc:
            # Stored on the primary, not yet on enough replicas: the sender's retry is a
            # duplicate if the write survives (and is then waited for again), a new accept
            # if a failover lost it.
            raise Unavailable("not yet replicated") from exc
        except RedisError as exc:
            raise Unavailable("storage unavailable") from exc
        if not stored:
            return Accepted(event.id, "duplicate")
        return Accepted(event.id, "queued" if event.known else "ignored")

    def _job(self, job_id: str) -> Any:
        return self.queue.create_job(
            PROCESS_TASK,
            job_id=job_id,
            timeout=TASK_TIMEOUT,
            retry=TASK_RETRY,
            result_ttl=3600,
            failure_ttl=self.retention,
        )

    def enqueue(self, key: str) -> None:
        """Queue (or re-queue) the processing job of the event stored at `key` through RQ's
        own API: the sweeper's and operators' path, off the hot path."""
        self.queue.enqueue_job(self._job(task_id_for(key)))
