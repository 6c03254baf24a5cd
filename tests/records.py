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


def process_without_sending(rt, key: str) -> list[str]:
    """Process the stored event at `key` as its task does, but stop before the task sends the
    emails it decided: a task that died right after recording its event `done`. Returns the
    ids of the records it left pending, with no send task."""
    from receiver.ingest import envelopes
    from receiver.pipeline.handlers import handler_for

    source, event_id, body = rt.redis.hmget(key, "source", "event_id", "body")
    assert rt.leases.claim(key) == "claimed"
    parsed = envelopes.parse(body, source.decode(), event_id.decode())
    with rt.records.holding() as held:
        handler_for(parsed.type)(parsed, rt)
    rt.leases.finish(key, "done", last_error="")
    return held
