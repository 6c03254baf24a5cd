"""The premium ledger: the latest invoice applied per contractor and job, and what it replaced.

Written with a compare-and-set: an entry is stored only if the ledger still holds the entry the
decision was made from (`expected`), so two workers applying invoice events of one job at once
cannot both win; the loser re-reads and decides again (pipeline/handlers.py). Also kept here,
as facts a later decision needs: the premium of a job's assignment (what the first invoice is
compared with) and each invoice's premium (the amount of a confirmation that names only the
invoice).
"""

from __future__ import annotations

import json

from redis import Redis

from ..store import keys
from .rules import Premium

_CAS = """
-- Compare-and-set: store the new entry only if the ledger still holds the one decided from.
-- KEYS[1]: ledger:<contractor>:<job>
-- ARGV[1]: the expected entry's event id ('' = no entry), ARGV[2]: new entry JSON, ARGV[3]: TTL
local current = redis.call('GET', KEYS[1])
local current_id = ''
if current then current_id = cjson.decode(current)['event_id'] end
if current_id ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class Ledger:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.ttl = retention_seconds
        self._cas = redis.register_script(_CAS)

    def get(self, contractor_id: str, job_id: str) -> Premium | None:
        raw = self.redis.get(keys.ledger(contractor_id, job_id))
        return Premium(**json.loads(raw)) if raw else None

    def swap(self, contractor_id: str, job_id: str, expected: Premium | None, new: Premium) -> bool:
        """Store `new` if the ledger still holds `expected`; False means decide again."""
        if expected is not None and expected.event_id == new.event_id:
            return True  # a re-run: the entry is already there
        doc = json.dumps(new.__dict__)
        expected_id = expected.event_id if expected else ""
        return bool(
            self._cas(keys=[keys.ledger(contractor_id, job_id)], args=[expected_id, doc, self.ttl])
        )

    def remember_assignment_premium(self, contractor_id: str, job_id: str, cents: int) -> None:
        self.redis.set(keys.assignment_premium(contractor_id, job_id), cents, ex=self.ttl)

    def assignment_premium(self, contractor_id: str, job_id: str) -> int | None:
        raw = self.redis.get(keys.assignment_premium(contractor_id, job_id))
        return int(raw) if raw else None

    def remember_invoice(self, invoice_id: str, cents: int) -> None:
        self.redis.set(keys.invoice_premium(invoice_id), cents, ex=self.ttl)

    def invoice_premium(self, invoice_id: str) -> int | None:
        raw = self.redis.get(keys.invoice_premium(invoice_id))
        return int(raw) if raw else None
