"""The console's view of stored events: filtered pages, one event with its outcome, and the
selection a bulk replay acts on.

Pages read an index newest first (console/paging.py): `events:contractor:<id>` when a
contractor is asked for, `events:failed` for failed events, else `events:index` (one ZADD in
the accept script, the only cost on the receive path). The other filters are checked against
each event's hash, a chunk per round trip, within the page's scan budget.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from ..coverage.store import load
from ..errors import BadRequest, PayloadError
from ..ingest.envelopes import SOURCES, to_unix
from ..store import keys
from ..store.connection import text
from .paging import Page, newest_first

STATUSES = ("received", "processing", "done", "failed", "ignored")
REPLAYABLE = ("received", "done", "failed")  # pipeline/leases.py's reopen accepts these
_FIELDS = (
    "source",
    "event_id",
    "type",
    "status",
    "received_at",
    "attempts",
    "last_error",
    "retry_at",
)
_TYPE = re.compile(r"[a-z_]{1,40}(\.[a-z_]{1,40}){0,3}(\.\*)?|\*")
ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


@dataclass(frozen=True)
class EventFilter:
    source: str = ""
    type: str = ""  # exact, or a prefix ending in `.*` (invoice.*)
    status: str = ""
    contractor: str = ""
    since: float | None = None
    until: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}

    def matches(self, row: Mapping[str, str]) -> bool:
        if self.source and row["source"] != self.source:
            return False
        if self.status and row["status"] != self.status:
            return False
        if self.type.endswith("*"):
            return row["type"].startswith(self.type[:-1])
        return not self.type or row["type"] == self.type


def _time(raw: Any, name: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = to_unix(raw, name)
    except PayloadError:
        raise BadRequest(f"{name} must be Unix seconds or an ISO-8601 time") from None
    return None if value is None else float(value)


def parse_filter(raw: Mapping[str, Any]) -> EventFilter:
    """A filter from query parameters or a JSON object; BadRequest names a bad field."""
    known = {"source", "type", "status", "contractor", "since", "until"}
    extra = sorted(set(raw) - known - {"cursor", "limit"})
    if extra:
        raise BadRequest(f"unknown filter {extra[0]}")
    values = {k: raw.get(k) for k in ("source", "type", "status", "contractor")}
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
    source, etype = values["source"] or "", values["type"] or ""
    status, contractor = values["status"] or "", values["contractor"] or ""
    if source and source not in SOURCES:
        raise BadRequest(f"source must be one of {', '.join(SOURCES)}")
    if status and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    if etype and not _TYPE.fullmatch(etype):
        raise BadRequest("type must be an event type, or a prefix like invoice.*")
    if contractor and not ID.fullmatch(contractor):
        raise BadRequest("contractor must be a contractor id")
    since, until = _time(raw.get("since"), "since"), _time(raw.get("until"), "until")
    if since is not None and until is not None and since > until:
        raise BadRequest("since is after until")
    return EventFilter(source, "" if etype == "*" else etype, status, contractor, since, until)


def _index(f: EventFilter) -> str:
    if f.contractor:
        return keys.events_of_contractor(f.contractor)
    if f.status == "failed":
        return keys.EVENTS_FAILED
    return keys.EVENTS_INDEX


def _rows(redis: Redis, members: Sequence[str]) -> list[dict[str, str] | None]:
    """The list fields of each event key (None for one that expired or was purged)."""
    pipe = redis.pipeline(transaction=False)
    for member in members:
        pipe.hmget(member, *_FIELDS, "contractor")
    rows: list[dict[str, str] | None] = []
    for values in pipe.execute():
        if values[0] is None:
            rows.append(None)
            continue
        row = dict(zip((*_FIELDS, "contractor"), (text(v) for v in values), strict=True))
        rows.append(row)
    return rows


def summary(row: Mapping[str, str]) -> dict[str, Any]:
    """An event as lists show it (no body: bodies hold personal data)."""
    return {
        "source": row["source"],
        "id": row["event_id"],
        "type": row["type"],
        "status": row["status"],
        "received_at": float(row["received_at"] or 0),
        "attempts": int(row["attempts"] or 0),
        "last_error": row["last_error"] or None,
        "contractor": row["contractor"] or None,
        # `received` after a failed try: RQ runs it again at `retry_at` (pipeline/leases.py).
        "retry_at": retry_at(row),
    }


def retry_at(row: Mapping[str, str]) -> float | None:
    """When an event waiting for a retry is tried again; None when it is not waiting for one
    (or waits from a release that did not keep the time: its last error says it failed)."""
    if row["status"] != "received" or not row["last_error"] or not row.get("retry_at"):
        return None
    return float(row["retry_at"])


def page(
    redis: Redis, f: EventFilter, limit: int, cursor: str | None, budget: int | None = None
) -> Page:
    """A page of event summaries, newest first."""

    def keep(chunk: Sequence[tuple[str, float]]) -> list[dict[str, Any] | None]:
        rows = _rows(redis, [member for member, _score in chunk])
        return [summary(r) if r is not None and f.matches(r) else None for r in rows]

    extra = {} if budget is None else {"budget": budget}
    return newest_first(
        redis, _index(f), keep, limit, cursor, since=f.since, until=f.until, **extra
    )


def replayable(
    redis: Redis, f: EventFilter, cap: int, budget: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The events a bulk replay of `f` acts on, newest first, at most `cap`: those matching
    that a replay would reopen (see REPLAYABLE). A dry run counts this very list, looking at
    no more than `budget` stored events; the flag says it stopped there with more to look at
    (the count is then a lower bound)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    scanned = 0
    while len(found) < cap:
        left = None if budget is None else budget - scanned
        if left is not None and left <= 0:
            return found[:cap], True
        got = page(redis, f, min(200, cap - len(found)), cursor, left)
        scanned += got.scanned
        found += [item for item in got.items if item["status"] in REPLAYABLE]
        cursor = got.next_cursor
        if cursor is None:
            break
    return found[:cap], False


def _decoded(raw: bytes | str) -> Any:
    """A body as JSON when it is (every accepted one is), else as text."""
    if isinstance(raw, str):
        return json.loads(raw)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def detail(redis: Redis, source: str, event_id: str) -> dict[str, Any] | None:
    """One stored event in full, with its outcome: the notice records it decided on and the
    coverage history entries it wrote; None when it is not stored."""
    raw = redis.hgetall(keys.event(source, event_id))
    if not raw:
        return None
    fields = {text(k): v for k, v in raw.items()}
    row = {k: text(fields.get(k, b"")) for k in (*_FIELDS, "contractor")}
    out = summary(row)
    out.update(
        created=int(text(fields["created"])) if text(fields.get("created", b"")) else None,
        updated_at=float(text(fields.get("updated_at", b"0")) or 0),
        duplicates=int(text(fields.get("duplicates", b"0")) or 0),
        replays=int(text(fields.get("replays", b"0")) or 0),
        headers=json.loads(text(fields.get("headers", b"{}")) or "{}"),
        body=_decoded(fields.get("body", b"")),
    )
    notices = sorted(text(r) for r in redis.smembers(keys.event_notices(source, event_id)))
    coverage: list[dict[str, Any]] = []
    if out["contractor"]:
        doc = load(redis, out["contractor"]) or {}
        coverage = [h for h in doc.get("history", []) if h.get("event") == event_id]
    out["outcome"] = {"notices": notices, "coverage": coverage}
    return out
