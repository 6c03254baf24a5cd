"""An event record's processing lease: received -> processing -> done | failed.

The claim is a lease: a second task for the same event (a sweeper re-queue, an operator
requeue) does nothing while the first holds it, and takes over if the first worker died.
`attempts` counts claims; `last_error` names the failure (the exception class only: messages
may quote personal data). How processing ends also keeps the console's indexes: `failed`
events in `events:failed`, and each processed event under its contractor.
"""

from __future__ import annotations

from redis import Redis
from redis.typing import EncodableT, FieldT

from ..clock import Clock
from ..ingest.inbox import TASK_TIMEOUT
from ..store import keys
from ..store.connection import text

LEASE_SECONDS = TASK_TIMEOUT + 30

_CLAIM = """
-- KEYS[1]: event record; ARGV[1]: now, ARGV[2]: lease seconds
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

_REOPEN = """
-- An operator's replay: a finished (or failed, or waiting) event is received again, counted.
-- KEYS[1]: event record, KEYS[2]: events:pending, KEYS[3]: events:failed; ARGV[1]: now
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'done' or status == 'failed' or status == 'received' then
  redis.call('HSET', KEYS[1], 'status', 'received', 'updated_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'replays', 1)
  redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
  return 'reopened'
end
return status
"""


class EventLeases:
    """Claim an event record for processing and record how processing ended."""

    def __init__(self, redis: Redis, clock: Clock, retention_seconds: int = 30 * 86400) -> None:
        self.redis = redis
        self.clock = clock
        self.retention = retention_seconds
        # EVALSHA of a script registered once, not EVAL: the source is not resent per task.
        self._claim = redis.register_script(_CLAIM)
        self._reopen = redis.register_script(_REOPEN)

    def claim(self, key: str) -> str:
        """`claimed`, or the status that stopped the claim (`done`, `processing`, `missing`)."""
        return text(self._claim(keys=[key], args=[self.clock(), LEASE_SECONDS]))

    def reopen(self, key: str) -> str:
        """`reopened` (now `received`, to be processed again), or the status that forbids it:
        `processing` (a worker holds it), `ignored` (no handler for its type), `missing`."""
        return text(
            self._reopen(keys=[key, keys.EVENTS_PENDING, keys.EVENTS_FAILED], args=[self.clock()])
        )

    def finish(
        self,
        key: str,
        status: str,
        received_at: float = 0.0,
        contractor: str = "",
        **fields: EncodableT,
    ) -> None:
        """done | failed: the record leaves the sweeper's pending set; a failed one is listed
        in `events:failed`, and the event is listed under `contractor` (when it names one),
        both scored by `received_at` like `events:index`."""
        mapping: dict[FieldT, EncodableT] = {"status": status, "updated_at": self.clock()}
        for name, value in fields.items():
            mapping[name] = value
        if contractor:
            mapping["contractor"] = contractor
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping=mapping)
        pipe.zrem(keys.EVENTS_PENDING, key)
        if status == "failed":
            pipe.zadd(keys.EVENTS_FAILED, {key: received_at})
        else:
            pipe.zrem(keys.EVENTS_FAILED, key)
        if contractor:
            pipe.zadd(keys.events_of_contractor(contractor), {key: received_at})
            pipe.expire(keys.events_of_contractor(contractor), self.retention)
        pipe.execute()

    def wait_for_retry(self, key: str, error: str, retry_at: float | None = None) -> None:
        """Back to `received`: RQ will run the task again (the sweeper also still sees it), at
        `retry_at` when known (kept as `retry_at` for the console; "" when not)."""
        self.redis.hset(
            key,
            mapping={
                "status": "received",
                "last_error": error,
                "updated_at": self.clock(),
                "retry_at": "" if retry_at is None else retry_at,
            },
        )
