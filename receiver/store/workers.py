"""Which workers are alive, by their own heartbeat records (Health, /readyz).

RQ's `Worker.all()` reads the `rq:workers` set and drops, for good, a worker whose key expired:
a worker stalled longer than its TTL (a paused VM, a SIGSTOP, a long GC) that resumes works on
and heartbeats again, but RQ's registry never lists it again, so a count by RQ stays 0 until it
restarts. Here each of our workers also writes its own record at every heartbeat: one member
of a sorted set, scored by the time until which it counts as alive. A worker that resumes is
counted again at its next heartbeat; one stopped cleanly leaves at once.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import SimpleWorker

from . import keys

# RQ's worker TTL for our workers. An idle RQ worker heartbeats when its blocking dequeue times
# out, every TTL - 15 s (at least every 1 s; RQ's default TTL of 420 s means every 405 s).
RQ_WORKER_TTL = 60
# A worker counts as alive for twice its TTL after each heartbeat (with the default 60 s:
# idle ones heartbeat every 45 s and a stopped one drops out within two minutes), or for as
# long as RQ gives the task in hand, which may take longer than the TTL between heartbeats.
SEEN_TTLS = 2
FORGET_SECONDS = 86400  # records of workers silent this long are removed as others write


class HeartbeatWorker(SimpleWorker):
    """RQ's SimpleWorker that also keeps its own heartbeat record (`keys.WORKERS_SEEN`)."""

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        at = self.last_heartbeat.timestamp() if self.last_heartbeat else 0.0
        until = at + max(SEEN_TTLS * self.worker_ttl, timeout or 0)
        connection: Any = pipeline if pipeline is not None else self.connection
        connection.zadd(keys.WORKERS_SEEN, {self.name: until})
        connection.zremrangebyscore(keys.WORKERS_SEEN, "-inf", at - FORGET_SECONDS)

    def register_death(self) -> None:
        super().register_death()  # type: ignore[no-untyped-call]
        self.connection.zrem(keys.WORKERS_SEEN, self.name)


def workers_seen(redis: Redis, now: float) -> int:
    """Our workers whose latest heartbeat still counts them alive at `now`."""
    return int(redis.zcount(keys.WORKERS_SEEN, now, "+inf"))
