"""Purge: drop finished work older than an operator says, before Redis would expire it.

Events expire EVENT_RETENTION_DAYS after they arrive and notice records that long after their
send time; `purge(older_than)` removes earlier what is finished and older than that: events
`done`, `failed` or `ignored` received before the cutoff, notice records in a final state last
changed before it. Unfinished work (received, processing, pending, sending, waiting for a
contact) is never purged: a 2xx'd event is processed, whatever the operator types. A purged
event's id is no longer a de-duplication key, which is why the cutoff should stay above how
long senders retry (1099Policy's and the platform's retry windows are days, not weeks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..logs import record
from ..store import keys
from ..store.connection import text
from .runtime import Runtime

log = logging.getLogger(__name__)
FINISHED_EVENTS = ("done", "failed", "ignored")
FINISHED_NOTICES = ("accepted", "failed", "cancelled", "suppressed")


@dataclass(frozen=True)
class Purged:
    events: int
    notices: int


def _purge(
    rt: Runtime,
    pattern: str,
    time_field: str,
    state_field: str,
    finished: tuple[str, ...],
    cutoff: float,
) -> int:
    purged = 0
    for key in rt.redis.scan_iter(match=pattern, count=1000):
        at, state = rt.redis.hmget(key, time_field, state_field)
        try:
            old = float(at or 0) < cutoff
        except ValueError:
            old = False
        if old and text(state) in finished:
            purged += int(rt.redis.delete(key))
    return purged


def purge(rt: Runtime, older_than_seconds: float) -> Purged:
    """Delete finished events and notice records older than `older_than_seconds`."""
    if older_than_seconds <= 0:
        raise ValueError("the age must be positive")
    cutoff = rt.clock() - older_than_seconds
    purged = Purged(
        events=_purge(rt, keys.event("*", "*"), "received_at", "status", FINISHED_EVENTS, cutoff),
        notices=_purge(rt, keys.notice("*"), "updated_at", "state", FINISHED_NOTICES, cutoff),
    )
    record(log, "purge", events=purged.events, notices=purged.notices)
    return purged
