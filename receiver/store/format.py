"""The format of the data in Redis, so that a release never misreads another's.

`data:format` holds the format the data is in. The first process of a release to start on an
empty Redis writes this release's FORMAT. Web and worker processes check it as they start:

- newer than FORMAT: the data was written by a later release; this process refuses to start
  (DataFormatError names both), since it could misread or damage it. Run the later release.
- older: the steps in UPGRADES bring it to FORMAT, each one safe to run twice and by two
  processes at once, then the new format is written.

Formats:
1. Every release before 0.2.0 (no `data:format` key, but data present).
2. 0.2.0: RQ jobs name their task by its path in receiver.pipeline.tasks; the old paths
   (`receiver.processing.process_event` and three more, kept importable by one-line modules
   until 0.2.0) are rewritten in every stored job, and those modules are gone.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable

from redis import Redis

from ..logs import record
from . import keys

FORMAT = 2

# Task paths of releases before 0.2.0 -> today's (format 1 -> 2).
_OLD_TASK_PATHS = {
    "receiver.processing.process_event": "receiver.pipeline.tasks.process_event",
    "receiver.address_alerts.alert_job": "receiver.pipeline.tasks.alert_rep",
    "receiver.deliveries.send_notice_job": "receiver.pipeline.tasks.send_notice",
    "receiver.coverage_push.deliver": "receiver.pipeline.tasks.push_coverage",
}
# Keys that exist once the service has stored anything (format 1 had no format key).
_DATA_MARKERS = (keys.EVENTS_INDEX, keys.NOTICES_INDEX, "rq:queues")

log = logging.getLogger("receiver.format")


class DataFormatError(RuntimeError):
    """The data in Redis is in a format this release does not understand."""


def _rename_tasks(redis: Redis) -> int:
    """Format 1 -> 2: each stored RQ job naming an old task path names the new one. The job's
    `data` field is RQ's zlib-compressed (func, instance, args, kwargs), serialized as JSON by
    our queues (RQ's JSONSerializer, store/connection.py); only that field is written."""
    renamed = 0
    for key in redis.scan_iter(match="rq:job:*", count=1000, _type="HASH"):
        raw = redis.hget(key, "data")
        if not isinstance(raw, bytes):
            continue
        try:
            func, instance, args, kwargs = json.loads(zlib.decompress(raw))
        except (zlib.error, ValueError, TypeError):
            continue  # not a job of ours
        if func in _OLD_TASK_PATHS:
            data = json.dumps([_OLD_TASK_PATHS[func], instance, args, kwargs])
            redis.hset(key, "data", zlib.compress(data.encode()))
            renamed += 1
    return renamed


UPGRADES: dict[int, Callable[[Redis], int]] = {1: _rename_tasks}


def ensure(redis: Redis) -> int:
    """Check the stored format against this release's, upgrading older data; return the
    format now stored. Raises DataFormatError for data newer than this release."""
    from ..version import VERSION

    stored = redis.get(keys.DATA_FORMAT)
    if stored is None and not redis.exists(*_DATA_MARKERS):
        # An empty Redis: this release's format, unless another process got there first.
        redis.set(keys.DATA_FORMAT, FORMAT, nx=True)
        stored = redis.get(keys.DATA_FORMAT)
    if stored is None:
        current = 1  # data written before formats were recorded
    else:
        try:
            current = int(stored)
        except ValueError:
            message = f"{keys.DATA_FORMAT} holds {stored!r}, not a format number"
            raise DataFormatError(message) from None
    if current > FORMAT:
        raise DataFormatError(
            f"Redis holds data in format {current}, written by a later release; "
            f"ten99-receiver {VERSION} understands formats up to {FORMAT}. "
            "Run the release that wrote it (or a later one)."
        )
    while current < FORMAT:
        changed = UPGRADES[current](redis)
        current += 1
        redis.set(keys.DATA_FORMAT, current)
        record(log, "data format upgraded", logging.WARNING, data_format=current, jobs=changed)
    return current
