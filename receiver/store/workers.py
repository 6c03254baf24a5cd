"""Our RQ worker: which workers are alive, by their own heartbeat records (Health, /readyz),
and a failed task as one log line instead of RQ's traceback.

RQ's `Worker.all()` reads the `rq:workers` set and drops, for good, a worker whose key expired:
a worker stalled longer than its TTL (a paused VM, a SIGSTOP, a long GC) that resumes works on
and heartbeats again, but RQ's registry never lists it again, so a count by RQ stays 0 until it
restarts. Here each of our workers also writes its own record at every heartbeat: one member
of a sorted set, scored by the time until which it counts as alive. A worker that resumes is
counted again at its next heartbeat; one stopped cleanly leaves at once.

RQ logs every failed try of a task as its whole traceback inside the message (30 lines, and an
exception's message may quote a payload). Ours logs one line: the task, the error's class,
where it was raised and when it runs again; the traceback stays in the job RQ keeps (its failed
registry and the RQ dashboard show it). An event task says this itself, with the event's ids
(pipeline/processing.py), so the worker adds nothing for it.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import SimpleWorker
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers

from ..logs import record, where
from . import keys

# RQ's worker TTL for our workers. An idle RQ worker heartbeats when its blocking dequeue times
# out, every TTL - 15 s (at least every 1 s; RQ's default TTL of 420 s means every 405 s).
RQ_WORKER_TTL = 60
# A worker counts as alive for twice its TTL after each heartbeat (with the default 60 s:
# idle ones heartbeat every 45 s and a stopped one drops out within two minutes), or for as
# long as RQ gives the task in hand, which may take longer than the TTL between heartbeats.
SEEN_TTLS = 2
FORGET_SECONDS = 86400  # records of workers silent this long are removed as others write


EVENT_TASK = "receiver.pipeline.tasks.process_event"
log = logging.getLogger("receiver.worker")


class ReceiverWorker(SimpleWorker):
    """RQ's SimpleWorker that also keeps its own heartbeat record (`keys.WORKERS_SEEN`) and
    logs a failed task in one line."""

    def handle_exception(
        self,
        job: Job,
        *exc_info: type[BaseException] | BaseException | TracebackType | None,
    ) -> None:
        exc = exc_info[1] if len(exc_info) > 1 else None
        if not isinstance(exc, BaseException):
            super().handle_exception(job, *exc_info)
            return
        try:
            task = job.func_name
        except Exception:  # a job that cannot be read: RQ's own words say why
            super().handle_exception(job, *exc_info)
            return
        if task != EVENT_TASK:
            retries = (job.retries_left or 0) > 0
            record(
                log,
                "task failed",
                logging.WARNING,
                task=(task or "").rsplit(".", 1)[-1],
                error=type(exc).__name__,
                at=where(exc),
                outcome="retrying" if retries else "failed",
                **({"next_try_in": job.get_retry_interval()} if retries else {}),
            )
        call_exception_handlers(self._exc_handlers, job, *exc_info)  # as RQ's own method

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
