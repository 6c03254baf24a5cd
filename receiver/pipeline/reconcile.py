"""Reconcile: fetch the 1099Policy events that never arrived by webhook, and accept them.

1099Policy lists events at `GET /api/v1/events`, newest first (`limit` 1-100 is the only
documented parameter; `starting_after` pages its other lists and is used here while it pages).
A run pages back until it reaches an event already stored, or one created before `since`, or
the end of the list; then feeds every unknown event, **oldest first**, through the same store-
de-duplicate-queue path as the webhook (`Inbox.accept`) and marks the record
`trigger=reconcile`. Oldest first, so a run that stops half-way (Redis down) leaves no gap: the
next run pages back to the newest stored event, which is below whatever is still missing.
Nothing is accepted until the listing is complete, so an API failure mid-way stores nothing and
the next run starts over. A later webhook delivery of an event it recovered is a duplicate, as
any other.

Each worker tries a scheduled run every RECONCILE_INTERVAL_MINUTES (`run_scheduled`); a lock
lets one of them run per interval. Paging stops safely when `starting_after` does not page (the
API gives the same page again) and after MAX_PAGES. Calls go through the official `ten99policy`
client, with the timeout and safe settings notices/ten99policy_client.py installs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import ten99policy

from ..errors import PayloadError
from ..ingest import envelopes
from ..logs import record
from ..store import keys
from .runtime import Runtime

log = logging.getLogger(__name__)
PAGE_SIZE = 100
MAX_PAGES = 100  # 10,000 events a run; a longer outage takes more runs


class ReconcileFailed(Exception):
    """The events API did not answer; nothing was accepted (the class name says why)."""


@dataclass(frozen=True)
class Reconciled:
    pages: int
    listed: int  # events listed that were not stored yet
    recovered: int  # of those, accepted now (others arrived by webhook meanwhile)
    complete: bool  # reached a stored event, `since` or the end (False: MAX_PAGES or paging)


def _page(api_key: str, after: str | None, size: int) -> tuple[list[dict[str, Any]], bool]:
    params: dict[str, Any] = {"limit": size}
    if after:
        params["starting_after"] = after
    try:
        page = ten99policy.Events.list(api_key=api_key, **params)
    except Exception as exc:  # the client's errors, timeouts, unreadable answers
        raise ReconcileFailed(type(exc).__name__) from None
    data = page.get("data") if isinstance(page, dict) else None
    if not isinstance(data, list):
        raise ReconcileFailed("the events list has no data")
    return [dict(e) for e in data if isinstance(e, dict)], bool(page.get("has_more"))


def reconcile(rt: Runtime, since: int | None = None, page_size: int = PAGE_SIZE) -> Reconciled:
    """One run (see the module docstring); raises ReconcileFailed when the API fails."""
    api_key = rt.cfg.TEN99POLICY_API_KEY
    if not api_key:
        raise ReconcileFailed("TEN99POLICY_API_KEY is not set")
    missing: list[tuple[envelopes.Event, bytes]] = []
    after: str | None = None
    first_ids: set[str] = set()
    pages, complete = 0, False
    while pages < MAX_PAGES and not complete:
        data, has_more = _page(api_key, after, page_size)
        pages += 1
        if not data or data[0].get("id") in first_ids:
            complete = not data  # the same page again: `starting_after` does not page here
            break
        first_ids.add(str(data[0].get("id")))
        for raw in data:
            body = json.dumps(raw).encode()
            try:
                event = envelopes.parse(body, "1099policy")
            except PayloadError:
                continue  # not an event we could have accepted by webhook either
            stored = rt.redis.exists(keys.event("1099policy", event.id))
            if stored or (since is not None and (event.created or 0) < since):
                complete = True
                break
            missing.append((event, body))
        after = str(data[-1].get("id") or "") or None
        complete = complete or not has_more
    recovered = 0
    for event, body in reversed(missing):
        accepted = rt.inbox.accept(event, body, {"x-trigger": "reconcile"}, now=rt.clock())
        if accepted.status != "duplicate":
            rt.redis.hset(keys.event("1099policy", event.id), "trigger", "reconcile")
            recovered += 1
    if complete:
        rt.metrics.reconciled(rt.clock(), recovered)
    outcome = "complete" if complete else "partial"
    record(log, "reconcile", events=recovered, outcome=outcome)
    return Reconciled(pages, len(missing), recovered, complete)


def run_scheduled(rt: Runtime) -> Reconciled | None:
    """The worker's periodic run: at most one per RECONCILE_INTERVAL_MINUTES across all
    workers (a Redis lock that expires with the interval); None when it is not this worker's
    turn, or reconciling is off (no API key, or an interval of 0)."""
    interval = rt.cfg.RECONCILE_INTERVAL_MINUTES * 60
    if not interval or not rt.cfg.TEN99POLICY_API_KEY:
        return None
    if not rt.redis.set(keys.RECONCILE_LOCK, "1", nx=True, ex=interval):
        return None
    return reconcile(rt)
