"""Scheduled jobs onto their queues when due: RQ's scheduler's work, done by every worker.

RQ's own scheduler (`work(with_scheduler=True)`) runs in a process the worker forks, holds a
lock per queue for 61 s, stops at its first Redis error and is restarted by its worker only at
the worker's ten-minute maintenance: after a Redis restart or a SIGKILLed holder, SendGrid
retries and reminders waited 36-56 s, until the lock expired or the sweeper found them (issue
12). Here each worker runs `schedule_forever` on a thread of its own process: once a second
it takes or renews a short lock per queue it works (LOCK_SECONDS) and moves the due jobs of
the queues it holds with RQ's own code (`RQScheduler.enqueue_scheduled_jobs`). The holder dies
with its worker; another worker's thread takes its locks within LOCK_SECONDS. One mover per
queue at a time, so a due job is queued once (were a holder paused past its lock, a second
copy of a job would find its record claimed: every task claims first).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from rq import Queue
from rq.scheduler import RQScheduler

from ..logs import record
from ..store import keys
from .runtime import Runtime

TICK_SECONDS = 1.0
LOCK_SECONDS = 5

_HOLD = """
-- Take the scheduler lock if it is free, or renew it if it is ours.
-- KEYS[1]: scheduler:lock:<queue>; ARGV[1]: this mover's name, ARGV[2]: lifetime (ms)
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
-- Let the scheduler lock go if it is ours, so another worker takes over at its next tick.
-- KEYS[1]: scheduler:lock:<queue>; ARGV[1]: this mover's name
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class DueJobMover:
    """Moves the due scheduled jobs of each of `queues` onto it while it holds its lock."""

    def __init__(self, rt: Runtime, queues: list[Queue]) -> None:
        # Host and pid first: an operator (or a test) sees which process holds a queue.
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.queue_names = [q.name for q in queues]
        self._hold = rt.redis.register_script(_HOLD)
        self._release = rt.redis.register_script(_RELEASE)
        self._rq = RQScheduler(
            queues, connection=rt.redis, serializer=rt.queue.serializer, logging_level="WARNING"
        )

    def tick(self) -> list[str]:
        """Take or renew the lock of each queue; move the due jobs of those held. Returns the
        names of the queues this mover holds."""
        held = [
            name
            for name in self.queue_names
            if self._hold(keys=[keys.scheduler_lock(name)], args=[self.name, LOCK_SECONDS * 1000])
        ]
        if held:
            self._rq.prepare_registries(held)
            self._rq.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        return held

    def release(self) -> None:
        """Let this mover's locks go (a worker stopping), so another takes over at once."""
        for name in self.queue_names:
            self._release(keys=[keys.scheduler_lock(name)], args=[self.name])


def schedule_forever(mover: DueJobMover, stop: threading.Event) -> None:
    """A worker's scheduler thread: a tick a second until `stop` (worker.py lets the locks go)."""
    log = logging.getLogger("receiver.scheduler")
    while not stop.wait(TICK_SECONDS):
        try:
            mover.tick()
        except Exception as exc:  # the next tick tries again; the worker goes on
            record(log, "scheduler", logging.WARNING, outcome="failed", error=type(exc).__name__)
