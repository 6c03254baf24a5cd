"""Bulk replays: "replay every failed invoice.* event since yesterday 14:00".

A dry run counts what a real run would replay (console/events.py `replayable`: the matching
events a replay can reopen, newest first, at most CONSOLE_REPLAY_CAP) and shows a sample. A
real run records its filter in `replay:<id>` and queues one task on the notices queue, which
selects that same list when it runs and replays each event (pipeline/processing.py `replay`:
reopen and queue; handlers are idempotent and notice records once-only, so nothing already
sent goes out again), counting as it goes; `GET /api/ops/replays/<id>` reads the counts.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..pipeline import tasks
from ..pipeline.processing import replay
from ..pipeline.runtime import Runtime
from ..store import keys
from ..store.connection import text
from .audit import AuditLog
from .events import EventFilter, parse_filter, replayable

RUN_TASK = "receiver.console.replays.run_task"  # its dotted path is stored in RQ
SAMPLE = 20
# Stored events a preview looks at, at most (like a page of the event list): a filter that
# matches few of a million events answers "more than N" rather than scanning them all.
PREVIEW_BUDGET = 20_000


def dry_run(rt: Runtime, f: EventFilter) -> dict[str, Any]:
    found, more = replayable(rt.redis, f, rt.cfg.CONSOLE_REPLAY_CAP, PREVIEW_BUDGET)
    return {
        "dry_run": True,
        "count": len(found),
        "more": more,  # stopped at PREVIEW_BUDGET: at least `count`, maybe more
        "capped": len(found) >= rt.cfg.CONSOLE_REPLAY_CAP,
        "cap": rt.cfg.CONSOLE_REPLAY_CAP,
        "sample": [
            {k: e[k] for k in ("source", "id", "type", "status", "last_error")}
            for e in found[:SAMPLE]
        ],
        "same_error": same_error(found),
    }


def same_error(found: list[dict[str, Any]]) -> str | None:
    """The error all of `found` (two or more) last failed with, if it is one and the same."""
    errors = {e["last_error"] for e in found}
    return errors.pop() if len(found) > 1 and len(errors) == 1 and None not in errors else None


def start(rt: Runtime, f: EventFilter, user: str, reason: str) -> dict[str, Any]:
    """Record a run and queue its task; returns its progress."""
    replay_id = "rp_" + secrets.token_hex(8)
    key = keys.bulk_replay(replay_id)
    now = rt.clock()
    pipe = rt.redis.pipeline()
    pipe.hset(
        key,
        mapping={
            "id": replay_id,
            "filter": json.dumps(f.as_dict()),
            "cap": rt.cfg.CONSOLE_REPLAY_CAP,
            "user": user,
            "reason": reason,
            "state": "queued",
            "matched": 0,
            "queued": 0,
            "skipped": 0,
            "created_at": now,
            "finished_at": "",
        },
    )
    pipe.expire(key, rt.cfg.EVENT_RETENTION_DAYS * 86400)
    pipe.execute()
    rt.notice_queue.enqueue(RUN_TASK, replay_id, job_id=f"bulk-{replay_id}", job_timeout=3600)
    found = progress(rt, replay_id)
    assert found is not None
    return found


def run(rt: Runtime, replay_id: str) -> dict[str, Any] | None:
    """The task: select the events and replay each, counting (see the module docstring)."""
    key = keys.bulk_replay(replay_id)
    raw = rt.redis.hget(key, "filter")
    if raw is None or text(rt.redis.hget(key, "state")) != "queued":
        return progress(rt, replay_id)  # unknown, or a repeated task: run once
    rt.redis.hset(key, "state", "running")
    found, _ = replayable(rt.redis, parse_filter(json.loads(text(raw))), rt.cfg.CONSOLE_REPLAY_CAP)
    rt.redis.hset(key, "matched", len(found))
    for event in found:
        outcome = replay(rt, event["source"], event["id"])
        rt.redis.hincrby(key, "queued" if outcome == "queued" else "skipped", 1)
    rt.redis.hset(key, mapping={"state": "done", "finished_at": rt.clock()})
    done = progress(rt, replay_id)
    assert done is not None
    # The audit log's entry of the start could not say how many; this one does.
    AuditLog(rt.redis, rt.cfg.EVENT_RETENTION_DAYS, rt.clock).record(
        done["user"],
        "bulk_replay_done",
        {"filter": done["filter"], "replay": replay_id},
        done["queued"],
        done["reason"],
    )
    return done


def progress(rt: Runtime, replay_id: str) -> dict[str, Any] | None:
    raw = rt.redis.hgetall(keys.bulk_replay(replay_id))
    if not raw:
        return None
    rec = {text(k): text(v) for k, v in raw.items()}
    return {
        "id": rec["id"],
        "filter": json.loads(rec["filter"]),
        "cap": int(rec["cap"]),
        "user": rec["user"],
        "reason": rec["reason"],
        "state": rec["state"],
        "matched": int(rec["matched"]),
        "queued": int(rec["queued"]),
        "skipped": int(rec["skipped"]),
        "created_at": float(rec["created_at"]),
        "finished_at": float(rec["finished_at"]) if rec["finished_at"] else None,
    }


def run_task(replay_id: str) -> dict[str, Any] | None:
    """RQ's entry point of a run, in the worker's runtime (pipeline/tasks.py holds it)."""
    return run(tasks.current(), replay_id)
