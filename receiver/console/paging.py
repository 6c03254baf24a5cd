"""Newest-first pages over a sorted set, filtered, with an opaque cursor.

The console's lists (events, notices, the audit log) are sorted sets scored by time. A page is
read by rank, not by score: many members can share a score (a burst in one second, a frozen
test clock), and a cursor of (score, member) finds its place again with ZREVRANK (O(log N));
if its member has left the set meanwhile, the members scored above it are counted instead.
Each page looks at no more than `budget` members, so a rare filter over a million events
costs a bounded amount per request: the page may then hold fewer items than asked for, and
`next_cursor` continues where it stopped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import Redis

from ..errors import BadRequest
from ..store.connection import text

T = TypeVar("T")
CHUNK = 200
BUDGET = 5000
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None
    scanned: int


def encode_cursor(score: float, member: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([score, member]).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[float, str]:
    """A cursor this module made, or BadRequest naming it."""
    try:
        padded = raw + "=" * (-len(raw) % 4)
        score, member = json.loads(base64.urlsafe_b64decode(padded.encode()))
        # json reads NaN and Infinity, which Redis refuses as a score bound
        if not isinstance(member, str) or isinstance(score, bool) or not math.isfinite(score):
            raise ValueError
        return float(score), member
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API returned") from None


def parse_limit(raw: str | None, default: int = 50) -> int:
    if raw is None or raw == "":
        return default
    # isascii: "²" passes isdigit() but is no number int() reads
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _start(redis: Redis, key: str, cursor: str | None, until: float | None) -> int:
    if cursor:
        score, member = decode_cursor(cursor)
        rank: Any = redis.zrevrank(key, member)
        if rank is not None and redis.zscore(key, member) == score:
            return int(rank) + 1
        return int(redis.zcount(key, f"({score}", "+inf"))
    if until is not None:
        return int(redis.zcount(key, f"({until}", "+inf"))
    return 0


def newest_first(
    redis: Redis,
    key: str,
    keep: Callable[[Sequence[tuple[str, float]]], Sequence[T | None]],
    limit: int,
    cursor: str | None = None,
    since: float | None = None,
    until: float | None = None,
    budget: int = BUDGET,
) -> Page:
    """Up to `limit` items, newest first, of the members `keep` maps to an item (None: drop);
    `keep` gets a chunk of (member, score) at a time, so it can read their records in one
    round trip."""
    start = _start(redis, key, cursor, until)
    items: list[T] = []
    scanned = 0
    last: tuple[str, float] | None = None
    while scanned < budget:
        raw: list[Any] = redis.zrevrange(key, start, start + CHUNK - 1, withscores=True)
        chunk = [(text(m), float(s)) for m, s in raw]
        if since is not None:
            chunk = [(m, s) for m, s in chunk if s >= since]
        if not chunk:
            return Page(items, None, scanned)
        for (member, score), item in zip(chunk, keep(chunk), strict=True):
            scanned += 1
            last = (member, score)
            if item is not None:
                items.append(item)
                if len(items) == limit:
                    return Page(items, encode_cursor(score, member), scanned)
        if len(raw) < CHUNK or len(chunk) < len(raw):
            return Page(items, None, scanned)
        start += CHUNK
    assert last is not None
    return Page(items, encode_cursor(last[1], last[0]), scanned)
