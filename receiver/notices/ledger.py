"""The premium ledger: per invoice, the latest event applied, what it replaced, and its burst.

A premium change is a change to one bill, so the ledger is keyed by invoice id; a new invoice
of the same job is a new bill with an entry of its own. Written with a compare-and-set: an
entry is stored only if the ledger still holds the entry the decision was made from
(`expected`, compared by `Premium.version()`), so two workers applying events of one invoice at
once cannot both win; the loser re-reads and decides again (pipeline/handlers.py).

`close_burst()` is the send side of coalescing: the first notice of a burst to be sent marks
the burst closed in the same step as it reads the final amount. Closing changes the entry's
version, so a re-price decided from the open burst fails its compare-and-set and decides again
(starting the next burst): no re-price is left out of both the sent notice and the next one.

The re-prices each burst coalesced are kept beside the entry (`remember_reprice`, after the
entry is written): the console shows a change notice's events, amounts and window from them.
They are not in the entry itself, which every invoice event reads and the scripts re-encode.

Also kept here: each invoice's current premium (the amount a confirmation that names only the
invoice reports, and what a scheduled reminder compares its own amount with).
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from ..store import keys
from .plans import Premium

_CAS = """
-- Compare-and-set: store the new entry only if the ledger still holds the one decided from.
-- KEYS[1]: ledger:invoice:<invoice>
-- ARGV[1]: the expected entry's version ('' = no entry), ARGV[2]: new entry JSON, ARGV[3]: TTL
local current = redis.call('GET', KEYS[1])
local version = ''
if current then
  local entry = cjson.decode(current)
  version = entry['event_id']
  if type(entry['burst']) == 'table' and entry['burst']['closed'] == true then
    version = version .. '+closed'
  end
end
if version ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

_CLOSE = """
-- Close a burst (if it is still the entry's open one) and return the entry, in one step.
-- KEYS[1]: ledger:invoice:<invoice>; ARGV[1]: the burst's id
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local entry = cjson.decode(raw)
local burst = entry['burst']
if type(burst) == 'table' and burst['id'] == ARGV[1] and burst['closed'] ~= true then
  burst['closed'] = true
  raw = cjson.encode(entry)
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('SET', KEYS[1], raw, 'PX', ttl)
  else
    redis.call('SET', KEYS[1], raw)
  end
end
return raw
"""


class Ledger:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.ttl = retention_seconds
        self._cas = redis.register_script(_CAS)
        self._close = redis.register_script(_CLOSE)

    def get(self, invoice_id: str) -> Premium | None:
        raw = self.redis.get(keys.ledger(invoice_id))
        return Premium.from_json(json.loads(raw)) if raw else None

    def swap(self, invoice_id: str, expected: Premium | None, new: Premium) -> bool:
        """Store `new` if the ledger still holds `expected`; False means decide again."""
        if expected is not None and expected.event_id == new.event_id:
            return True  # a re-run: the entry is already there
        doc = json.dumps(new.to_json())
        version = expected.version() if expected else ""
        return bool(self._cas(keys=[keys.ledger(invoice_id)], args=[version, doc, self.ttl]))

    def close_burst(self, invoice_id: str, burst_id: str) -> Premium | None:
        """Mark the burst closed if it is the entry's open one; the entry as it then is."""
        raw = self._close(keys=[keys.ledger(invoice_id)], args=[burst_id])
        return Premium.from_json(json.loads(raw)) if raw else None

    def remember_reprice(self, entry: Premium, source: str, now: int) -> None:
        """Note the entry's event among its burst's re-prices, if it is a re-price (another
        amount than the one before). The first write wins, so a re-run changes nothing."""
        burst = entry.burst
        if burst is None or entry.previous is None or entry.previous == entry.cents:
            return
        key = keys.reprices(entry.invoice_id, burst.id)
        doc = {
            "source": source,
            "id": entry.event_id,
            "before": entry.previous,
            "after": entry.cents,
            "at": now,
            "created": entry.created,
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(key, f"{source}:{entry.event_id}", json.dumps(doc))
        pipe.expire(key, self.ttl)
        pipe.execute()

    def reprices(self, invoice_id: str, burst_id: str) -> list[dict[str, Any]]:
        """The re-prices of a burst as `remember_reprice` kept them, in the ledger's order
        (by `created`, ties broken by event id: the order they were applied in)."""
        out = []
        for raw in self.redis.hvals(keys.reprices(invoice_id, burst_id)):
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return sorted(out, key=_applied_order)

    def remember_invoice(self, invoice_id: str, cents: int) -> None:
        self.redis.set(keys.invoice_premium(invoice_id), cents, ex=self.ttl)

    def invoice_premium(self, invoice_id: str) -> int | None:
        raw = self.redis.get(keys.invoice_premium(invoice_id))
        return int(raw) if raw else None


def _applied_order(doc: dict[str, Any]) -> tuple[float, str]:
    """A kept re-price's place in the ledger's order (`Premium.order`)."""
    created = doc.get("created")
    if isinstance(created, bool) or not isinstance(created, int | float):
        created = 0
    return (float(created), str(doc.get("id", "")))
