"""What ingestion keeps out (issue 19): event ids that could read as a path or forge a log
line are refused with a 400 naming the id; the stored request headers are an allowlist, so a
client's or proxy's credential header never reaches the console's viewers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.events import charge_succeeded
from tests.signing import tv1_header


@pytest.mark.parametrize(
    "event_id", ["../../notices/nt_x", "a/b", "ev..1", "ev_1\nforged line", "ev\x00", "", "é1"]
)
def test_an_event_id_of_another_shape_is_refused(send: Any, redis: Any, event_id: str) -> None:
    answer = send.ten99({**charge_succeeded("in_1"), "id": event_id})
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_payload"
    assert "id must be" in answer.get_json()["detail"]
    assert not redis.keys("event:*")


@pytest.mark.parametrize("event_id", ["ev_1", "evt-2026.12.06:abc_1", "A1:b.c-d"])
def test_the_senders_id_shapes_are_accepted(send: Any, event_id: str) -> None:
    assert send.ten99({**charge_succeeded("in_1"), "id": event_id}).status_code == 202


def test_only_the_allowed_request_headers_are_stored(client: Any, redis: Any) -> None:
    from tests.signing import body_of

    event = charge_succeeded("in_h")
    body = body_of(event)
    answer = client.post(
        "/webhooks/1099policy",
        data=body,
        headers={
            "Ten99Policy-Signature": tv1_header(body),
            "Content-Type": "application/json",
            "User-Agent": "1099Policy-Webhooks/1.0",
            "X-Api-Key": "secret-key-of-a-proxy",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    assert answer.status_code == 202
    stored = redis.hget(f"event:1099policy:{event['id']}", "headers").decode()
    assert "User-Agent" in stored and "application/json" in stored
    for gone in ("secret-key-of-a-proxy", "c2VjcmV0", "203.0.113.9", "Ten99Policy-Signature"):
        assert gone not in stored
