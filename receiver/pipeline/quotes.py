"""Quote lookups: coverage events parked under a quote nobody has mapped get their contractor
from 1099Policy's API.

Policies never name their contractor, only their quote (docs/1099policy-domain.md), so a
`policy.*` event waits, parked, until another event maps the quote (or the policy) to a
contractor (coverage/store.py). When no such event comes (the platform created the quote
itself and no application event told us), the store schedules one `lookup_quote` task per
quote `QUOTE_LOOKUP_DELAY_SECONDS` after the first event parked under it. The task:

- does nothing if an event mapped the quote meanwhile (that mapping applied what was parked),
  or nothing is parked under it any more (expired, or erased);
- otherwise asks `GET /api/v1/quotes/{id}` through the official `ten99policy` client (with the
  safe process-wide settings of notices/ten99policy_client.py) and hands the contractor it
  names to `CoverageStore.adopt`, which maps the quote and applies the parked events in one
  transaction, exactly as an event naming both would have;
- on an API failure (network, timeout, 5xx, an unreadable answer) raises `QuoteLookupFailed`:
  nothing was written, the events stay parked, and RQ retries the task with backoff
  (`RETRY`). A 404, or a quote without a contractor, will not get better by asking again: the
  events stay parked (as they would have without lookups) and the outcome says why.

Only the error class, the status and the quote id are logged: answers may carry personal data.
"""

from __future__ import annotations

import logging
from typing import Any

import ten99policy
from rq import Retry

from ..coverage.store import CoverageStore
from ..logs import record
from ..store import keys

log = logging.getLogger(__name__)

# Backoff of a lookup whose API call failed: RQ's scheduler runs the retries.
RETRY = Retry(max=5, interval=[60, 300, 900, 1800, 3600])


class QuoteLookupFailed(Exception):
    """1099Policy's quote API did not answer usefully; the task is retried (class name only)."""


def _contractor_of(quote: Any) -> str | None:
    """The contractor id a quote object names (an id, or an embedded contractor)."""
    if not isinstance(quote, dict):
        return None
    value = quote.get("contractor")
    if isinstance(value, dict):
        value = value.get("id")
    return value.strip() if isinstance(value, str) and value.strip() else None


class QuoteLookups:
    """Runs the `lookup_quote` task (see the module docstring)."""

    def __init__(self, coverage: CoverageStore, api_key: str | None) -> None:
        self.coverage = coverage
        self.redis = coverage.redis
        self.api_key = api_key

    def resolve(self, quote_id: str) -> str:
        """Map `quote_id` to its contractor if events still wait for it; return the outcome:
        `applied`, `mapped` (an event did it first), `nothing_parked`, `off` (no API key),
        `not_found` or `no_contractor`. Raises QuoteLookupFailed when the API fails."""
        ref = f"quote:{quote_id}"
        outcome = self._resolve(quote_id, ref)
        record(log, "quote lookup", outcome=outcome, quote_id=quote_id)
        return outcome

    def _resolve(self, quote_id: str, ref: str) -> str:
        if self.redis.exists(keys.coverage_owner(ref)):
            return "mapped"
        if not self.redis.exists(keys.coverage_parked(ref)):
            return "nothing_parked"
        if not self.api_key:
            return "off"
        try:
            quote = ten99policy.Quotes.retrieve(quote_id, api_key=self.api_key)
            contractor = _contractor_of(dict(quote))
        except Exception as exc:  # the client's errors, timeouts, unreadable answers
            status = getattr(exc, "http_status", None)
            if status == 404:
                return "not_found"
            record(
                log,
                "quote lookup",
                logging.WARNING,
                outcome="retrying",
                error=type(exc).__name__,
                http_status=status,
                quote_id=quote_id,
            )
            raise QuoteLookupFailed(type(exc).__name__) from None
        if contractor is None:
            return "no_contractor"
        return self.coverage.adopt(ref, contractor).status
