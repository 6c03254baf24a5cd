"""(e) The console's event list at scale: pages over N stored events (issue 9: fast with
1,000,000).

N event records are written straight into Redis in the shape the accept script and the
workers leave them (the fields a list reads, a short body), with `events:index` scored by
received time, 1 in 500 events `failed` (in `events:failed`), and 1,000 contractors with their
`events:contractor:<id>` indexes. Then receiver/console/events.py's `page` is timed, as
`GET /api/ops/events` calls it, for: the newest page; a type prefix; failed events; one
contractor's; a page deep in the list (by cursor); and a rare type, which hits the scan
budget. Reported: the median milliseconds of REPEAT calls each, and how many members a page
looked at. The receive path's cost of the index (one ZADD in the accept script) is what
`bench: receive path` measures.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import redis as redis_lib

from receiver.console import events
from receiver.console.paging import encode_cursor
from receiver.store import keys

REPEAT = 7
TYPES = (
    "invoice.created",
    "invoice.updated",
    "invoice.charge_card_succeeded",
    "assignment.created",
    "assignment.active",
    "policy.active",
)
RARE = "invoice.rare_type"  # 1 event in 100,000


def fill(r: redis_lib.Redis, n: int, t0: float) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        key = keys.event("1099policy", f"ev_{i:08d}")
        etype = RARE if i % 100_000 == 7 else TYPES[i % len(TYPES)]
        failed = i % 500 == 3
        contractor = f"cn_{i % 1000:04d}"
        received = t0 + i * 0.01
        pipe.hset(
            key,
            mapping={
                "source": "1099policy",
                "event_id": f"ev_{i:08d}",
                "type": etype,
                "status": "failed" if failed else "done",
                "received_at": received,
                "attempts": 1,
                "last_error": "PayloadError" if failed else "",
                "contractor": contractor,
                "body": "{}",
            },
        )
        pipe.zadd(keys.EVENTS_INDEX, {key: received})
        pipe.zadd(keys.events_of_contractor(contractor), {key: received})
        if failed:
            pipe.zadd(keys.EVENTS_FAILED, {key: received})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def _timed(r: redis_lib.Redis, f: events.EventFilter, cursor: str | None) -> tuple[float, Any]:
    samples = []
    page = None
    for _ in range(REPEAT):
        start = time.perf_counter()
        page = events.page(r, f, 50, cursor)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), page


def run(r: redis_lib.Redis, n: int) -> dict[str, Any]:
    r.flushall()
    t0 = 1_800_000_000.0
    started = time.perf_counter()
    fill(r, n, t0)
    fill_s = time.perf_counter() - started
    deep = events.page(r, events.EventFilter(), 1, None)
    # A cursor half way down the list: what "older events" pages after paging a while cost.
    middle_key = r.zrevrange(keys.EVENTS_INDEX, n // 2, n // 2, withscores=True)[0]
    deep_cursor = encode_cursor(middle_key[1], middle_key[0].decode())
    cases = {
        "newest": (events.EventFilter(), None),
        "type_prefix": (events.EventFilter(type="invoice.*"), None),
        "failed": (events.EventFilter(status="failed"), None),
        "contractor": (events.EventFilter(contractor="cn_0042"), None),
        "deep_cursor": (events.EventFilter(), deep_cursor),
        "rare_type_budget": (events.EventFilter(type=RARE), None),
    }
    out: dict[str, Any] = {"events": n, "fill_s": round(fill_s, 1)}
    ok = bool(deep.items)
    for name, (f, cursor) in cases.items():
        ms, page = _timed(r, f, cursor)
        out[name] = {"median_ms": round(ms, 2), "items": len(page.items), "scanned": page.scanned}
        ok = ok and (name == "rare_type_budget" or len(page.items) == 50)
    out["memory_mb"] = round(int(r.info("memory")["used_memory"]) / 1e6)
    out["verified"] = ok
    r.flushall()
    return out
