"""Reading notice records and building wall-clock times, for tests of timing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


def at(y: int, mo: int, d: int, h: int, mi: int = 0, zone: ZoneInfo = NY) -> float:
    """Unix seconds of a wall-clock time in `zone` (New York unless said)."""
    return datetime(y, mo, d, h, mi, tzinfo=zone).timestamp()


def records(redis, notice: str) -> list[dict[str, str]]:
    """Every notice record of one notice id, as strings."""
    out = []
    for key in redis.keys("notice:*"):
        if redis.hget(key, "notice") == notice.encode():
            out.append({k.decode(): v.decode() for k, v in redis.hgetall(key).items()})
    return out
