"""Bursts of re-prices through the real pipeline: an invoice charged, re-priced, and the
notices that came due sent as RQ's scheduler would (tests/test_notify.py, the console's)."""

from __future__ import annotations

from typing import Any

from receiver.pipeline.tasks import send_notice
from receiver.store.keys import NOTICES_PENDING
from tests.events import charge_succeeded, invoice


def send_due(redis: Any, clock: Any) -> list[str]:
    """Run the send task of every notice due by the test's clock, as RQ's scheduler would."""
    out = []
    for key in redis.zrangebyscore(NOTICES_PENDING, "-inf", clock.now):
        out.append(send_notice(redis.hget(key, "id").decode()))
    return out


def reprices(send: Any, clock: Any, amounts: list[int], start: int = 1, **extra: Any) -> None:
    """`invoice.updated` of in_1, one a second apart, each at the test clock's time."""
    for n, premium in enumerate(amounts, start=start):
        clock.now += 1
        send.platform(invoice("invoice.updated", premium, int(clock.now), **extra), f"msg_u{n}")


def charged_invoice(send: Any, drain: Any, clock: Any, premium: int = 5000) -> None:
    """A card payer's invoice that 1099Policy charged (payment_confirmation sent)."""
    send.platform(invoice("invoice.created", premium, int(clock.now)), "msg_i1")
    send.ten99({**charge_succeeded("in_1", premium_due=premium), "created": int(clock.now)})
    drain()


def repriced_after_charge(send: Any, drain: Any, clock: Any, prices: dict[str, int]) -> None:
    """A charged $50.00 invoice re-priced by each platform event (id -> premium) in turn, a
    second apart, each processed before the next arrives: one burst, its notices scheduled."""
    charged_invoice(send, drain, clock)
    for event_id, premium in prices.items():
        clock.now += 1
        send.platform(invoice("invoice.updated", premium, int(clock.now)), event_id)
        drain()
