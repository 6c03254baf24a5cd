"""Events left failed, as RQ leaves one whose last try raised: for the console's tests."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.errors import PayloadError
from receiver.pipeline.processing import process
from tests.events import charge_succeeded


def failed_event(rt: Any, send: Any, invoice: str) -> str:
    """Send a charge for `invoice`, fail its last try (the body unreadable while it runs),
    then put the body back; returns the event id. Nothing is left queued."""
    event = charge_succeeded(invoice)
    send.ten99(event)
    key = f"event:1099policy:{event['id']}"
    body = rt.redis.hget(key, "body")
    rt.redis.hset(key, "body", b"{broken")
    with pytest.raises(PayloadError):
        process(rt, key, retries_left=False)
    rt.redis.hset(key, "body", body)
    rt.queue.empty()
    return str(event["id"])
