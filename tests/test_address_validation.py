"""A contractor address that is not one email address (a comma making two recipients, a CR
or LF making a header) fails the notice with the reason, visible to an operator, and is
never sent or left half-way in `sending` (issue 19)."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.notices.contacts import Contact
from tests.events import charge_succeeded

BAD = ["maya@example.com, eve@example.com", "maya@example.com\r\nBcc: eve@example.com"]


def _records(redis: Any) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}
        for key in redis.keys("notice:nt_*")
    ]


@pytest.mark.parametrize("address", BAD)
def test_an_event_with_a_bad_address_fails_its_notice(
    rt: Any, send: Any, drain: Any, sendgrid: Any, redis: Any, address: str
) -> None:
    person = {"id": "cn_1", "email": address, "first_name": "Maya", "last_name": "T"}
    assert send.ten99(charge_succeeded("in_bad", contractor=person)).status_code == 202
    drain()
    [rec] = _records(redis)
    assert rec["state"] == "failed"
    assert rec["last_error"].startswith("invalid email address")
    assert sendgrid.requests == []


@pytest.mark.parametrize("address", BAD)
def test_a_bad_address_learned_later_fails_the_waiting_notice(
    rt: Any, drain: Any, sendgrid: Any, redis: Any, address: str
) -> None:
    rt.records.create(
        "payment_confirmation",
        "charge:in_w",
        "contractor:cn_9",
        Contact(),
        {"x": 1},
        waiting_for="cn_9",
    )
    rt.records.release("cn_9", Contact(id="cn_9", email=address, first_name="Sam"))
    drain()
    [rec] = _records(redis)
    assert rec["state"] == "failed" and "invalid email address" in rec["last_error"]
    assert sendgrid.requests == []
