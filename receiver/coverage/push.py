"""`coverage.updated` to the platform: one Standard Webhooks push per coverage change.

The store queues the push task (`receiver.pipeline.tasks.push_coverage`) inside the transaction
that records a change (coverage/store.py),
with the body already built, so a re-run of the job sends the same bytes. The `webhook-id` is
a hash of the contractor's new current state: states never repeat (each carries the newest
event per object), so one change is one id, however often the job runs; the platform can
de-duplicate on it as Standard Webhooks intends. Each attempt is signed afresh (the timestamp
must be recent), with the `standardwebhooks` package. Any answer other than 2xx, a redirect
included, or a network error fails the job, and RQ retries it with backoff (`RETRY`), then
keeps it in the failed registry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import requests
from rq import Retry

from ..ingest.signing import standard_webhooks_headers
from . import document as coverage

PUSH_TASK = "receiver.pipeline.tasks.push_coverage"
EVENT_TYPE = "coverage.updated"
TIMEOUT_SECONDS = 10
RETRY = Retry(max=8, interval=[10, 30, 120, 600, 1800, 3600, 7200, 14400])


class CallbackFailed(Exception):
    """The platform did not accept a push; the message names the status, not the body."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def webhook_id(doc: dict[str, Any]) -> str:
    """The webhook id of the change that produced `doc` (no '.', as the scheme requires).

    It hashes the state together with which event gave each field (`_as_of`), so a field that
    goes X -> Y -> X (a late event filling it back) is a new change with a new id, while a
    re-run of the same job hashes the same document to the same id.
    """
    internal = {k: v for k, v in doc.items() if k != "history"}
    state = _canonical({"contractor": doc["contractor"], "state": internal})
    return "cov_" + hashlib.sha256(state.encode()).hexdigest()[:32]


def announcement(doc: dict[str, Any], now: int) -> tuple[str, str]:
    """The webhook id and JSON body announcing `doc`'s current state."""
    body = {
        "type": EVENT_TYPE,
        "timestamp": datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z"),
        "data": {**coverage.current(doc), "covered_now": coverage.covered_now(doc, now)},
    }
    return webhook_id(doc), _canonical(body)


def send(
    url: str, secret: str, msg_id: str, body: str, now: float, timeout: float = TIMEOUT_SECONDS
) -> int:
    """POST one signed push; return the status, or raise CallbackFailed."""
    headers = {
        "content-type": "application/json",
        **standard_webhooks_headers(secret, msg_id, body, int(now)),
    }
    try:
        response = requests.post(
            url, data=body.encode(), headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise CallbackFailed(f"{type(exc).__name__} posting {EVENT_TYPE}") from None
    if not 200 <= response.status_code < 300:
        raise CallbackFailed(f"platform answered {response.status_code} to {EVENT_TYPE}")
    return response.status_code
