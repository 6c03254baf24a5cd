"""Metric values kept in Redis, so every gunicorn process and RQ worker adds to the same totals.

One hash per metric family (`metrics:<family>`, built in store/keys.py). A field is the family's
label values joined by `|` (label values are short codes: sources, outcomes, event types, notice
ids, never ids of things or addresses); a histogram adds `|<upper bound>` per bucket (counts
per bucket, not cumulative: one HINCRBY per observation) and `|sum`. views/prometheus.py reads the
hashes at scrape time and hands them to prometheus-client's exposition.

The receive path does not come here: its counter and last-received time are written by the
accept script itself (ingest/inbox.py), inside the one Lua call a delivery already makes.
Everything else is one `add()` per unit of work: one Lua call on DirectScript's lean path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from . import keys
from .scripts import DirectScript
from .workers import workers_seen

# Families (the hash of each is keys.metric(<family>)).
WEBHOOKS = "webhook_requests"  # source|outcome|reason
LAST_RECEIVED = "last_event_received"  # source -> unix time (HSET, a gauge)
EVENTS = "events_processed"  # type|outcome
EVENT_SECONDS = "event_processing_seconds"  # histogram: type
NOTICES = "notices"  # notice|outcome
SENDGRID = "sendgrid_responses"  # status class
EVENT_LATENCY = "event_latency_seconds"  # histogram: type (received -> done)
NOTICE_SECONDS = "notice_latency_seconds"  # histogram: notice (due -> accepted)
END_TO_END = "end_to_end_seconds"  # histogram: notice (webhook received -> accepted)
RECONCILE = "reconcile"  # last_success (unix time), recovered (count)
SERVER_ERRORS = "http_server_errors"  # status|area: 5xx answers (counted while Redis answers)

EVENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

_ADD = """
-- Add to metric hashes in one call.
-- KEYS[1]: none; the hashes (metrics:<family> only) are named in ARGV.
-- ARGV: quadruples of hash, field, op ('i': HINCRBY, 'f': HINCRBYFLOAT, 's': HSET), value
for i = 1, #ARGV, 4 do
  local op = ARGV[i + 2]
  if op == 'i' then
    redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 3])
  elseif op == 'f' then
    redis.call('HINCRBYFLOAT', ARGV[i], ARGV[i + 1], ARGV[i + 3])
  else
    redis.call('HSET', ARGV[i], ARGV[i + 1], ARGV[i + 3])
  end
end
return 1
"""


def field(*labels: str) -> str:
    """A hash field for these label values."""
    return "|".join(labels)


def bucket(bounds: Sequence[float], value: float) -> str:
    """The upper bound (as stored) of the first bucket `value` falls in."""
    for bound in bounds:
        if value <= bound:
            return repr(bound)
    return "+Inf"


class Metrics:
    """Add to the shared metric hashes, and read them all back for a scrape."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._add = DirectScript(redis, _ADD, numkeys=0)

    @staticmethod
    def count(family: str, labels: Sequence[str], by: int = 1) -> list[Any]:
        return [keys.metric(family), field(*labels), "i", by]

    @staticmethod
    def observe(
        family: str, labels: Sequence[str], bounds: Sequence[float], value: float
    ) -> list[Any]:
        value = max(0.0, value)
        key = keys.metric(family)
        return [
            key, field(*labels, bucket(bounds, value)), "i", 1,
            key, field(*labels, "sum"), "f", repr(round(value, 6)),
        ]  # fmt: skip

    def add(self, *updates: list[Any]) -> None:
        """Apply the updates made by `count` and `observe`, in one call."""
        argv = [item for update in updates for item in update]
        if not argv:
            return
        try:
            self._add(*argv)
        except RedisError:  # metrics never fail the work they count (a lost count is all)
            pass

    def webhook_refused(self, source: str, reason: str) -> None:
        """A webhook answered with an error (a refusal because Redis is down is not counted)."""
        self.add(self.count(WEBHOOKS, (source, "rejected", reason)))

    def server_error(self, status: int, area: str) -> None:
        """A 5xx answer, by status and the blueprint that gave it (lost when Redis is down,
        as the scrape then fails too)."""
        self.add(self.count(SERVER_ERRORS, (str(status), area)))

    def reconciled(self, now: float, recovered: int) -> None:
        """A reconcile run completed at `now` and accepted `recovered` events."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(keys.metric(RECONCILE), "last_success", repr(now))
            pipe.hincrby(keys.metric(RECONCILE), "recovered", recovered)
            pipe.execute()
        except RedisError:  # as `add`: a lost value, never a failed run
            pass

    def read(self) -> dict[str, dict[str, str]]:
        """Every family's hash as text, plus the pending events' count and oldest score."""
        families: tuple[str, ...] = (WEBHOOKS, LAST_RECEIVED, EVENTS, EVENT_SECONDS, NOTICES)
        families += (EVENT_LATENCY, SENDGRID, NOTICE_SECONDS, RECONCILE, END_TO_END)
        families += (SERVER_ERRORS,)
        pipe = self.redis.pipeline(transaction=False)
        for family in families:
            pipe.hgetall(keys.metric(family))
        pipe.zcard(keys.EVENTS_PENDING)
        pipe.zrange(keys.EVENTS_PENDING, 0, 0, withscores=True)
        *hashes, pending, oldest = pipe.execute()
        out = {
            family: {k.decode(): v.decode() for k, v in raw.items()}
            for family, raw in zip(families, hashes, strict=True)
        }
        out["events_pending"] = {"count": str(pending)}
        if oldest:
            out["events_pending"]["oldest"] = repr(float(oldest[0][1]))
        return out

    def present(self, now: float) -> dict[str, str]:
        """What is true now rather than counted: workers seen, overdue notices, and what Redis
        says of its persistence and replicas (left out when a managed Redis refuses INFO)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(keys.NOTICES_PENDING, "-inf", now)
        pipe.zrange(keys.NOTICES_PENDING, 0, 0, withscores=True)
        pipe.info("persistence")
        pipe.info("replication")
        overdue, oldest, persistence, replication = pipe.execute(raise_on_error=False)
        out = {"workers_seen": str(workers_seen(self.redis, now))}
        out["overdue_notices"] = str(overdue)
        if overdue and oldest:
            out["oldest_overdue_notice_age_seconds"] = repr(max(0.0, now - float(oldest[0][1])))
        if isinstance(persistence, dict):
            out["redis_aof_enabled"] = str(int(persistence.get("aof_enabled", 0)))
            for status in ("aof_last_write", "rdb_last_bgsave"):
                ok = persistence.get(f"{status}_status") == "ok"
                out[f"redis_{status}_ok"] = "1" if ok else "0"
        if isinstance(replication, dict):
            out["redis_connected_replicas"] = str(int(replication.get("connected_slaves", 0)))
        return out
