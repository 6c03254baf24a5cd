"""The embedded mailer of `make run`: one readable .eml file per email, as a real mail would be."""

from __future__ import annotations

import email
import email.policy
import re
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

from rq import SimpleWorker

from receiver.config import load_config
from receiver.pipeline import tasks
from receiver.pipeline.runtime import build
from tests.events import charge_succeeded
from tests.records import at


def test_each_email_is_a_dated_file_named_by_time_and_notice(send, config, redis, clock):
    clock.freeze(at(2026, 3, 2, 15, 4, zone=ZoneInfo("UTC")) + 5)
    rt = build(load_config({**config, "BRAND_NAME": "Acme Cover"}), clock=clock)
    tasks.install(rt)
    try:
        for invoice in ("in_a", "in_b"):
            assert send.ten99(charge_succeeded(invoice)).status_code == 202
        SimpleWorker(rt.queues, connection=rt.redis, serializer=rt.queue.serializer).work(
            burst=True, logging_level="WARNING"
        )
    finally:
        tasks.install(None)
    files = sorted(p.name for p in rt.mailer.directory.iterdir())  # type: ignore[attr-defined]
    assert len(files) == 2
    for name in files:
        assert re.fullmatch(r"20260302T150405Z-payment_confirmation-nt_[0-9a-f]{32}\.eml", name)
    raw = (rt.mailer.directory / files[0]).read_bytes()  # type: ignore[attr-defined]
    mail: Any = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsedate_to_datetime(mail["Date"]).timestamp() == clock()
    assert mail["From"].addresses[0].display_name == "Acme Cover"
    assert mail["From"].addresses[0].addr_spec == config["EMAIL_FROM"]
    assert mail["To"].addresses[0].addr_spec == "maya@example.com"
    assert mail.get_body(("plain",)) is not None and mail.get_body(("html",)) is not None


def test_sendgrid_mail_carries_the_brand_as_sender_name(send, rt, drain, sendgrid):
    assert send.ten99(charge_succeeded("in_brand")).status_code == 202
    drain()
    [mail] = sendgrid.accepted
    assert mail["body"]["from"] == {"email": "notices@example.com", "name": "Coverage Notices"}
