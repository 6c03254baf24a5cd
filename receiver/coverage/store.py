"""Coverage documents in Redis, one per contractor, updated atomically (WATCH/MULTI).

Keys (no expiry unless said; coverage outlives the events that built it):
- `coverage:doc:<contractor>`: the JSON document (coverage.py).
- `coverage:owner:<ref>`: the contractor a quote, policy, session, assignment, certificate or
  invoice id belongs to, learned from events that name both (coverage.attribute).
- `coverage:parked:<ref>`: hash event id -> event, for events whose contractor is not known
  yet; kept EVENT_RETENTION_DAYS.

An event parked under a quote nobody has mapped yet (the first one parked there) also
schedules, in the same transaction, one `lookup_quote` task `QUOTE_LOOKUP_DELAY_SECONDS` later
when 1099Policy's API is configured: `adopt(ref, contractor)` is how that task (pipeline/
quotes.py) maps the quote to the contractor the API names and applies what was parked, the
same merge an event naming both would have caused.

`apply(event)` in one optimistic transaction: WATCH the owner keys of the event's refs; if
no contractor is named or known, park the event under each ref and stop. Otherwise WATCH the
document and the parked hashes of every ref it teaches, merge the event *and every event parked
under those refs* (following the refs those bring, transitively), and in MULTI write the
document, the new owner keys, delete the parked hashes, and, when the current state changed,
queue its `coverage.updated` push. Any concurrent write to a watched key aborts EXEC and the
attempt starts over, so two workers cannot lose an update, an event cannot be parked after its
mapping was taken, and a change cannot be recorded without its push. Because merging is
order-independent (coverage.py), a policy event that waited for its contractor ends in the same
document as one that arrived after the mapping.

A ref is owned by the first contractor that claims it; a later conflicting claim is logged and
not recorded (1099Policy ids are unique, so a conflict means bad data, and the named
contractor's document still gets the event).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import WatchError
from rq import Queue, Retry

from ..clock import Clock
from ..ingest.envelopes import Event
from ..store import keys
from ..store.connection import text
from . import document as coverage
from .push import PUSH_TASK, RETRY, TIMEOUT_SECONDS, announcement

WATCH_ATTEMPTS = 20
QUOTE_LOOKUP_TASK = "receiver.pipeline.tasks.lookup_quote"
# A lookup whose API call failed is retried by RQ's scheduler with this backoff.
QUOTE_LOOKUP_RETRY = Retry(max=5, interval=[60, 300, 900, 1800, 3600])
log = logging.getLogger(__name__)


def load(redis: Redis, contractor: str) -> dict[str, Any] | None:
    """A contractor's document, or None if no coverage event has reached it."""
    raw = redis.get(keys.coverage_doc(contractor))
    return json.loads(raw) if raw else None


def _encode(event: Event) -> str:
    return json.dumps(
        {
            "source": event.source,
            "id": event.id,
            "type": event.type,
            "created": event.created,
            "object": event.object,
        }
    )


def _decode(raw: Any) -> Event:
    d = json.loads(raw)
    return Event(d["source"], d["id"], d["type"], d["created"], d["object"])


@dataclass(frozen=True)
class _Read:
    """What a transaction watched and read up front: owners and parked events by ref, and
    the contractor's document."""

    owners: dict[str, str | None]
    doc: dict[str, Any] | None
    parked: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What `apply` did: `applied`, `parked` or `skipped`; `pushed` is the webhook id."""

    status: str
    contractor: str | None = None
    changed: bool = False
    pushed: str | None = None


class CoverageStore:
    """Applies events to documents; queues `coverage.updated` when a URL is configured."""

    def __init__(
        self,
        redis: Redis,
        queue: Queue,
        callback_url: str | None,
        retention_seconds: int,
        clock: Clock,
        doc_ttl: int | None = None,
        quote_lookup_delay: int | None = None,
    ) -> None:
        self.redis = redis
        # QUOTE_LOOKUP_DELAY_SECONDS when 1099Policy's API is configured; None: no lookups.
        self.quote_lookup_delay = quote_lookup_delay
        # CONTRACTOR_RETENTION_DAYS: a document (and its owner mappings) lives this long after
        # the contractor's last coverage event; None keeps it.
        self.doc_ttl = doc_ttl
        self.queue = queue
        self.callback_url = callback_url
        self.retention = retention_seconds
        self.clock = clock
        self.push_retry = RETRY  # tests shorten the backoff

    def get(self, contractor: str) -> dict[str, Any] | None:
        return load(self.redis, contractor)

    def apply(self, event: Event) -> Outcome:
        """Apply one event (see the module docstring); raises after WATCH_ATTEMPTS conflicts,
        which fails the event job and lets RQ retry it."""
        who = coverage.attribute(event)
        if (
            event.source != "1099policy"
            or not who.refs
            or not who.refs[0].startswith(f"{coverage.family(event.type)}:")
        ):
            return Outcome("skipped")  # not a coverage event, or an object without an id
        for _ in range(WATCH_ATTEMPTS):
            with self.redis.pipeline() as pipe:
                try:
                    return self._attempt(pipe, event, who)
                except WatchError:
                    continue
        raise RuntimeError("coverage document kept changing; retrying the event")

    def adopt(self, ref: str, contractor: str) -> Outcome:
        """Map `ref` (a `quote:` ref) to `contractor`, as 1099Policy's API says, and apply every
        event parked under it in one transaction; `skipped` when an event mapped it first."""
        for _ in range(WATCH_ATTEMPTS):
            with self.redis.pipeline() as pipe:
                try:
                    owners = self._owners(pipe, [ref])
                    if owners[ref] is not None:
                        return Outcome("skipped", owners[ref])
                    return self._commit(pipe, contractor, (ref,), owners, None)
                except WatchError:
                    continue
        raise RuntimeError("coverage document kept changing; retrying the lookup")

    def _attempt(self, pipe: Any, event: Event, who: coverage.Attribution) -> Outcome:
        if who.contractor:  # the usual case: every key it touches is known before reading
            read = self._watch_and_read(pipe, who.contractor, who.refs)
            return self._commit(pipe, who.contractor, who.refs, read.owners, event, read)
        owners = self._owners(pipe, who.refs)
        contractor = next((owners[r] for r in who.refs if owners[r]), None)
        if contractor is None:
            return self._park(pipe, event, who.refs)
        return self._commit(pipe, contractor, who.refs, owners, event)

    def _park(self, pipe: Any, event: Event, refs: tuple[str, ...]) -> Outcome:
        """Keep the event under each of its refs until one is mapped; the first event parked
        under an unmapped quote schedules that quote's lookup."""
        quote = next((r for r in refs if r.startswith("quote:")), None)
        first = quote is not None and not pipe.exists(keys.coverage_parked(quote))
        pipe.multi()
        for ref in refs:
            pipe.hset(keys.coverage_parked(ref), event.id, _encode(event))
            pipe.expire(keys.coverage_parked(ref), self.retention)
        if first and quote is not None and self.quote_lookup_delay is not None:
            self._schedule_lookup(pipe, quote.removeprefix("quote:"))
        pipe.execute()
        return Outcome("parked")

    def _schedule_lookup(self, pipe: Any, quote_id: str) -> None:
        job = self.queue.create_job(
            QUOTE_LOOKUP_TASK,
            args=[quote_id],
            job_id=f"quote-lookup-{quote_id}",
            retry=QUOTE_LOOKUP_RETRY,
            result_ttl=3600,
            failure_ttl=self.retention,
        )
        at = datetime.fromtimestamp(self.clock() + (self.quote_lookup_delay or 0), tz=UTC)
        self.queue.schedule_job(job, at, pipeline=pipe)

    def _watch_and_read(self, pipe: Any, contractor: str, refs: tuple[str, ...]) -> _Read:
        """WATCH every key the event touches in one call, then read them all in one round
        trip on another connection (the WATCH guards them whoever reads): 3 round trips for
        an event that names its contractor instead of 7, a twentieth of its task's time."""
        owner_keys = [keys.coverage_owner(r) for r in refs]
        doc_key = keys.coverage_doc(contractor)
        parked_keys = [keys.coverage_parked(r) for r in refs]
        pipe.watch(*owner_keys, doc_key, *parked_keys)
        with self.redis.pipeline(transaction=False) as reader:
            reader.mget([*owner_keys, doc_key])
            for key in parked_keys:
                reader.hgetall(key)
            values, *parked = reader.execute()
        return _Read(
            owners={r: (text(v) or None) for r, v in zip(refs, values[:-1], strict=True)},
            doc=json.loads(values[-1]) if values[-1] else None,
            parked=dict(zip(refs, parked, strict=True)),
        )

    def _commit(
        self,
        pipe: Any,
        contractor: str,
        refs: tuple[str, ...],
        owners: dict[str, str | None],
        event: Event | None,
        read: _Read | None = None,
    ) -> Outcome:
        """Write the contractor's document with `event` (None: only what is parked under
        `refs`) and every event parked under the refs it teaches; map those refs to them.
        `read`: the document and parked events already watched and read."""
        if read is None:
            pipe.watch(keys.coverage_doc(contractor))
            before = load(pipe, contractor) or coverage.empty(contractor)
        else:
            before = read.doc or coverage.empty(contractor)
        start = before if event is None else coverage.apply(before, event)
        doc, taught = self._merge(
            pipe, start, refs, owners, contractor, read.parked if read else {}
        )
        changed = coverage.current(doc) != coverage.current(before)
        pipe.multi()
        if doc != before:
            pipe.set(keys.coverage_doc(contractor), json.dumps(doc), ex=self.doc_ttl)
        elif self.doc_ttl:
            pipe.expire(keys.coverage_doc(contractor), self.doc_ttl)
        for ref in taught:
            if owners[ref] is None:
                pipe.set(keys.coverage_owner(ref), contractor, ex=self.doc_ttl)
            elif self.doc_ttl:
                pipe.expire(keys.coverage_owner(ref), self.doc_ttl)
            pipe.delete(keys.coverage_parked(ref))
        pushed = self._push(pipe, doc) if changed and self.callback_url else None
        pipe.execute()
        return Outcome("applied", contractor, changed, pushed)

    def _owners(self, pipe: Any, refs: tuple[str, ...] | list[str]) -> dict[str, str | None]:
        names = [keys.coverage_owner(r) for r in refs]
        pipe.watch(*names)
        return {r: (text(v) or None) for r, v in zip(refs, pipe.mget(names), strict=True)}

    def _merge(
        self,
        pipe: Any,
        doc: dict[str, Any],
        refs: tuple[str, ...],
        owners: dict[str, str | None],
        contractor: str,
        parked_read: dict[str, Any],
    ) -> tuple[dict[str, Any], list[str]]:
        """Merge the events parked under `refs`, and under the refs those teach, in turn
        (`parked_read`: refs whose parked events were already watched and read)."""
        taught: list[str] = []
        queue = list(refs)
        while queue:
            ref = queue.pop(0)
            if ref in taught:
                continue
            if ref not in owners:
                owners.update(self._owners(pipe, [ref]))
            if owners[ref] not in (None, contractor):
                log.warning("coverage ref %s claimed by two contractors; keeping the first", ref)
                continue
            taught.append(ref)
            if ref in parked_read:
                found = parked_read[ref]
            else:
                pipe.watch(keys.coverage_parked(ref))
                found = pipe.hgetall(keys.coverage_parked(ref))
            for _, raw in sorted(found.items()):
                parked = _decode(raw)
                doc = coverage.apply(doc, parked)
                queue.extend(coverage.attribute(parked).refs)
        return doc, taught

    def _push(self, pipe: Any, doc: dict[str, Any]) -> str:
        """Queue the push of this change inside the transaction that records it."""
        webhook_id, body = announcement(doc, int(self.clock()))
        job = self.queue.create_job(
            PUSH_TASK,
            args=[webhook_id, body],
            job_id=f"push-{webhook_id}",
            timeout=TIMEOUT_SECONDS * 3,
            retry=self.push_retry,
            result_ttl=3600,
            failure_ttl=self.retention,
        )
        self.queue.enqueue_job(job, pipeline=pipe)
        return webhook_id
