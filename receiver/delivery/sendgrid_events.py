"""What SendGrid did with our mail: its Event Webhook batches, applied to the notice records.

SendGrid's 202 only means "queued". What happened next arrives later as signed batches (a JSON
array) of events, each carrying our custom arg `notice_record` as a top-level key. Batches come
in any order, are retried for 24 hours on any non-2xx, and repeat events (sometimes dozens of
times, and a redelivery has been seen to carry a new `sg_event_id`).

Each delivery event moves the record's *delivery* field, kept apart from its send `state`
(pending/sending/accepted/failed/...) so the two machines never overwrite each other:

    processed (1) < deferred (2) < delivered (3) < bounced | dropped | spamreport (4, terminal)

A record only moves to a higher rank, so order does not matter: `delivered` then a late
`processed` ends `delivered`; `deferred` after `delivered` is ignored; `delivered` after
`deferred` moves on; a bounce after `delivered` (an asynchronous bounce) wins; nothing moves a
terminal record. Engagement events (open, click, unsubscribe, ...) are acknowledged and change
no rank.

Any event naming a record of ours, delivery or engagement, is also evidence that SendGrid took
the request. A record left `failed` ("interrupted": the worker died during the SendGrid call)
or `pending` for a retry after an ambiguous 5xx/timeout becomes `accepted`, with `accepted_by`
saying so; the scheduled retry, or the interrupted send's automatic resend
(delivery/records.py), then finds nothing to send, which closes the double-send window.

Duplicates: an event is applied once per `sg_event_id` *and* once per content fingerprint
(message id, record, event, timestamp, reason, type, attempt, address), both kept
DEDUPE_SECONDS (three days: SendGrid's 24 h of retries plus late duplicates). Re-applying an
event would be harmless to the ranks anyway; de-duplication keeps the counts honest.

Each event is one Lua call (de-duplicate, suppress the address, move the record, all or
nothing), and a batch is one pipelined round trip. That is fast enough to do inline in the
request, even for SendGrid's largest batches (docs/architecture.md, Delivery truth), so batches
are not stored: a stored batch would keep every recipient's address, IP and user agent.
Addresses are only hashed; reasons are kept with any email address in them masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from ..errors import PayloadError, Unavailable
from ..ingest.envelopes import is_text, load_json
from ..store import keys
from ..store.connection import text
from .suppressions import queue_alert, suppresses, suppression_key

log = logging.getLogger(__name__)

RANKS = {"processed": 1, "deferred": 2, "delivered": 3, "bounce": 4, "dropped": 4, "spamreport": 4}
# Engagement events change no rank; one naming a record of ours is still evidence (rank 0).
ENGAGEMENT = frozenset({"open", "click", "unsubscribe", "group_unsubscribe", "group_resubscribe"})
DELIVERY_STATES = {"bounce": "bounced"}  # SendGrid's event name -> ours, where they differ
DEDUPE_SECONDS = 3 * 86400
REASON_CHARS = 300
OUTCOMES = ("applied", "stale", "duplicate", "unmatched", "ignored")

_RECORD_ID = re.compile(r"nt_[0-9a-f]{32}")
# Bounded like real addresses (local part <= 64, domain <= 255 characters): unbounded `+` here
# made a long reason without an `@` cost quadratic time (200 KB held a worker past its timeout).
# An apostrophe is allowed in the local part (o'neil@...), so no part of such a name stays.
_ADDRESS = re.compile(r"<?[^\s<>()\[\]\",;:@]{1,64}@[^\s<>()\[\]\"',;:@]{1,255}>?")

_APPLY = """
-- One SendGrid event: de-duplicate, suppress the address, move the record (all or nothing).
-- KEYS[1]: id dedupe key, KEYS[2]: fingerprint dedupe key, KEYS[3]: notice record,
-- KEYS[4]: the address's suppression entry, KEYS[5]: notices:pending,
-- KEYS[6]: notices:interrupted
-- ARGV[1]: rank, ARGV[2]: delivery state, ARGV[3]: event time, ARGV[4]: reason,
-- ARGV[5]: bounce type, ARGV[6]: now, ARGV[7]: dedupe TTL, ARGV[8]: suppress (1/0),
-- ARGV[9]: record id, ARGV[10]: SendGrid's event name
local function evidence()
  -- Any event of ours proves SendGrid took the mail: an interrupted send, or one waiting to
  -- be retried after an ambiguous failure, is accepted (and not sent again).
  local r = redis.call('HMGET', KEYS[3], 'state', 'last_error', 'attempts')
  if (r[1] == 'failed' and string.sub(r[2] or '', 1, 11) == 'interrupted')
      or (r[1] == 'pending' and (tonumber(r[3] or '0') or 0) > 0) then
    redis.call('HSET', KEYS[3], 'state', 'accepted', 'updated_at', ARGV[6], 'resend_at', '',
               'accepted_by', 'evidence: SendGrid reported it ' .. ARGV[10])
    redis.call('ZREM', KEYS[5], KEYS[3])
    redis.call('ZREM', KEYS[6], KEYS[3])
    return true
  end
  return false
end
if ARGV[1] == '0' then
  -- Engagement (open, click, ...): no rank, no log, not de-duplicated; only evidence.
  if redis.call('EXISTS', KEYS[3]) == 1 and evidence() then return {'applied', 0, ''} end
  return {'ignored', 0, ''}
end
local seen = not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[7])
if KEYS[2] ~= KEYS[1] and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[7]) then
  seen = true
end
if seen then return {'duplicate', 0, ''} end
local newly = 0
if ARGV[8] == '1' then
  newly = redis.call('HSETNX', KEYS[4], 'reason', ARGV[2])
  if newly == 1 then redis.call('HSET', KEYS[4], 'at', ARGV[3], 'record', ARGV[9]) end
end
if ARGV[9] == '' or redis.call('EXISTS', KEYS[3]) == 0 then return {'unmatched', newly, ''} end
local recipient = redis.call('HGET', KEYS[3], 'recipient') or ''
redis.call('HINCRBY', KEYS[3], 'delivery_events', 1)
-- The newest DELIVERY_LOG events as [event, time, reason], for the operator's console.
local log = cjson.decode(redis.call('HGET', KEYS[3], 'delivery_log') or '[]')
table.insert(log, {ARGV[10], tonumber(ARGV[3]), ARGV[4]})
if #log > 20 then table.remove(log, 1) end
redis.call('HSET', KEYS[3], 'delivery_log', cjson.encode(log))
local outcome = 'stale'
local rank = tonumber(redis.call('HGET', KEYS[3], 'delivery_rank') or '0') or 0
if tonumber(ARGV[1]) > rank then
  redis.call('HSET', KEYS[3], 'delivery', ARGV[2], 'delivery_rank', ARGV[1],
             'delivery_at', ARGV[3], 'delivery_reason', ARGV[4], 'delivery_type', ARGV[5],
             'delivery_updated_at', ARGV[6])
  outcome = 'applied'
end
evidence()
return {outcome, newly, recipient}
"""


@dataclass(frozen=True)
class SendGridEvent:
    """One SendGrid delivery event, reduced to what the record and the list need."""

    event: str  # SendGrid's name: processed, deferred, delivered, bounce, dropped, spamreport
    record_id: str  # "" when the event names no record of ours
    timestamp: int | None
    email: str  # only ever hashed
    reason: str  # addresses masked
    kind: str  # a bounce's type: bounce, blocked or expired
    id_key: str
    fingerprint_key: str

    @property
    def state(self) -> str:
        return DELIVERY_STATES.get(self.event, self.event)

    @property
    def suppresses(self) -> bool:
        return bool(self.email) and suppresses(self.event, self.reason, self.kind)


def _string(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    return value if isinstance(value, str) else ""


def mask_addresses(value: str) -> str:
    """The text with every email address replaced by `<address>`, cut to REASON_CHARS.

    Only a prefix is searched: what lies past three times the kept length is cut anyway, and an
    address (at most 320 characters) that starts inside the kept part is still matched."""
    return _ADDRESS.sub("<address>", value[: REASON_CHARS * 3])[:REASON_CHARS]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def sendgrid_event(raw: Any) -> SendGridEvent | None:
    """Read one array item; None for what we do not track (junk, engagement events that name
    no record of ours)."""
    if not isinstance(raw, dict) or not is_text(raw):  # a lone surrogate: unusable
        return None
    name = _string(raw, "event")
    if name in ENGAGEMENT and _RECORD_ID.fullmatch(_string(raw, "notice_record")):
        # Only ever evidence (see _APPLY): nothing of it is stored or de-duplicated.
        return SendGridEvent(
            event=name,
            record_id=raw["notice_record"],
            timestamp=None,
            email="",
            reason="",
            kind="",
            id_key="",
            fingerprint_key="",
        )
    if name not in RANKS:
        return None
    timestamp = raw.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        timestamp = None
    record_id = _string(raw, "notice_record")
    reason = _string(raw, "reason") or _string(raw, "response")
    fingerprint = json.dumps(
        [
            _string(raw, "sg_message_id"),
            record_id,
            raw["event"],
            timestamp,
            reason,
            _string(raw, "type"),
            str(raw.get("attempt", "")),
            _string(raw, "email").lower(),
        ]
    )
    fingerprint_key = keys.sendgrid_event_fingerprint(_digest(fingerprint))
    event_id = _string(raw, "sg_event_id")
    return SendGridEvent(
        event=raw["event"],
        record_id=record_id if _RECORD_ID.fullmatch(record_id) else "",
        timestamp=timestamp,
        email=_string(raw, "email").strip(),
        reason=mask_addresses(reason),
        kind=_string(raw, "type")[:40],
        id_key=keys.sendgrid_event_id(_digest(event_id)) if event_id else fingerprint_key,
        fingerprint_key=fingerprint_key,
    )


def parse_batch(body: bytes) -> list[Any]:
    """The events of a verified body, which must be a JSON array."""
    doc = load_json(body)
    if not isinstance(doc, list):
        raise PayloadError("body is not a JSON array of events")
    return doc


class SendGridEvents:
    """Apply verified Event Webhook batches to notice records and the suppression list."""

    def __init__(self, redis: Redis, queue: Queue, dedupe_seconds: int = DEDUPE_SECONDS) -> None:
        self.redis = redis
        self.queue = queue
        self.dedupe_seconds = dedupe_seconds
        self._apply = redis.register_script(_APPLY)

    def apply(self, body: bytes, now: float) -> dict[str, int]:
        """Apply one batch; return how many events ended in each outcome (see OUTCOMES).

        Raises:
            PayloadError: the body is not a JSON array.
            Unavailable: Redis failed; the sender retries and de-duplication absorbs
                whatever part of the batch was already applied.
        """
        raws = parse_batch(body)
        events = [e for e in map(sendgrid_event, raws) if e is not None]
        tally: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})
        tally["events"] = len(raws)
        tally["ignored"] = len(raws) - len(events)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for event in events:
                self._apply(keys=self._keys(event), args=self._args(event, now), client=pipe)
            results = pipe.execute() if events else []
        except RedisError as exc:
            raise Unavailable("storage unavailable") from exc
        alerts = []
        for event, (outcome, newly, recipient) in zip(events, results, strict=True):
            tally[text(outcome)] += 1
            if newly and text(recipient).startswith("contractor:"):
                alerts.append(event.record_id)
        self._queue_alerts(alerts)
        log.info("sendgrid events: %s", " ".join(f"{k}={v}" for k, v in sorted(tally.items())))
        return dict(tally)

    def _queue_alerts(self, record_ids: list[str]) -> None:
        """Queue the rep alert for each newly suppressed contractor address.

        The events are applied by now, so a failure here must not turn into a 503: the
        retried batch would be all duplicates and queue nothing. The next notice held back
        for that address queues the alert again (Suppressions.held).
        """
        for rid in record_ids:
            try:
                queue_alert(self.queue, rid)
            except RedisError:
                log.warning("could not queue the address alert for notice %s", rid)

    def _keys(self, event: SendGridEvent) -> list[str]:
        return [
            event.id_key,
            event.fingerprint_key,
            keys.notice(event.record_id),
            suppression_key(event.email),
            keys.NOTICES_PENDING,
            keys.NOTICES_INTERRUPTED,
        ]

    def _args(self, event: SendGridEvent, now: float) -> list[Any]:
        at = event.timestamp if event.timestamp is not None else int(now)
        return [
            RANKS.get(event.event, 0),
            event.state,
            at,
            event.reason,
            event.kind,
            now,
            self.dedupe_seconds,
            "1" if event.suppresses else "0",
            event.record_id,
            event.event,
        ]
