"""The console's audit log: who did what, when, to which ids or filter, how many, and why.

One sorted set scored by time, each member a JSON entry with an id of its own (so two equal
actions in one second stay two entries). Entries older than EVENT_RETENTION_DAYS are dropped
on each write, so the log lives as long as the events it talks about.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from redis import Redis

from ..clock import Clock
from ..store import keys
from .paging import Page, newest_first


class AuditLog:
    def __init__(self, redis: Redis, retention_days: int, clock: Clock) -> None:
        self.redis = redis
        self.retention = retention_days * 86400
        self.clock = clock

    def record(
        self, user: str, action: str, target: dict[str, Any], affected: int, reason: str
    ) -> dict[str, Any]:
        """Keep one action; returns the entry."""
        now = self.clock()
        entry = {
            "id": "au_" + secrets.token_hex(8),
            "at": now,
            "user": user,
            "action": action,
            "target": target,
            "affected": affected,
            "reason": reason,
        }
        pipe = self.redis.pipeline()
        pipe.zadd(keys.AUDIT_LOG, {json.dumps(entry, sort_keys=True): now})
        pipe.zremrangebyscore(keys.AUDIT_LOG, "-inf", f"({now - self.retention}")
        pipe.execute()
        return entry

    def page(self, cursor: str | None, limit: int) -> Page:
        """Entries newest first (see console/paging.py for the cursor)."""

        def entries(chunk: Sequence[tuple[str, float]]) -> list[dict[str, Any]]:
            return [json.loads(member) for member, _score in chunk]

        return newest_first(self.redis, keys.AUDIT_LOG, entries, limit, cursor)
