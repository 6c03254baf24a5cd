"""Every notice end to end: signed events in, schema-checked SendGrid requests out.

Real Redis, RQ jobs run by SimpleWorker, the official `sendgrid` client over HTTP to the
SendGrid stand-in. The assertions are what the people receive.
"""

from __future__ import annotations

import time

import pytest

from receiver.notices.contacts import Contact
from receiver.pipeline.sweeper import sweep
from tests.events import (
    MAYA,
    assignment_created,
    charge_succeeded,
    invoice,
    platform_event,
)
from tests.records import records

T0 = int(time.time())


def received(sendgrid):
    """(notice, recipient, subject) of every accepted mail, in order."""
    out = []
    for mail in sendgrid.accepted:
        body = mail["body"]
        out.append(
            (body["categories"][0], body["personalizations"][0]["to"][0]["email"], body["subject"])
        )
    return out


def kinds(sendgrid):
    return sorted((n, to) for n, to, _ in received(sendgrid))


def text_of(mail):
    return mail["body"]["content"][0]["value"]


def test_assignment_charge_reminder_for_card_payer(send, rt, drain, sendgrid):
    assert send.platform(assignment_created(1200), "msg_a1").status_code == 202
    drain()
    [(notice, to, subject)] = received(sendgrid)
    assert (notice, to) == ("assignment_charge_reminder", "maya@example.com")
    assert "$12.00" in subject
    from receiver.delivery.emails import datetime_words

    charge_at = sendgrid.accepted[0]["time"] + 86400  # assignment_created charges 24 h later
    assert datetime_words(int(charge_at), MAYA["timezone"])[-9:] in text_of(sendgrid.accepted[0])


def test_remit_assignment_sends_nothing(send, rt, drain, sendgrid):
    send.platform(assignment_created(1200, withhold=True), "msg_a1")
    drain()
    assert sendgrid.accepted == []


def test_invoice_repriced_up_then_down(send, rt, drain, sendgrid):
    send.platform(assignment_created(4000), "msg_a")
    send.platform(invoice("invoice.created", 5000, T0 + 10), "msg_i1")
    drain()
    assert kinds(sendgrid) == [
        ("assignment_charge_reminder", "maya@example.com"),
        ("payment_reminder", "maya@example.com"),
        ("premium_increase_contractor", "maya@example.com"),
        ("premium_increase_rep", "rep@agency.example"),
    ]
    up = next(m for m in sendgrid.accepted if m["body"]["categories"] == ["premium_increase_rep"])
    assert "$10.00" in up["body"]["subject"]
    assert "Maya" in text_of(up) and "$40.00" in text_of(up) and "$50.00" in text_of(up)
    sendgrid.reset()
    send.platform(invoice("invoice.updated", 4500, T0 + 20), "msg_i2")
    drain()
    assert kinds(sendgrid) == [
        ("payment_reminder", "maya@example.com"),
        ("premium_decrease_contractor", "maya@example.com"),
        ("premium_decrease_rep", "rep@agency.example"),
    ]


def test_remit_reprice_goes_to_rep_only(send, rt, drain, sendgrid):
    send.platform(invoice("invoice.created", 5000, T0, withhold=True), "msg_i1")
    send.platform(invoice("invoice.updated", 6000, T0 + 5, withhold=True), "msg_i2")
    drain()
    assert kinds(sendgrid) == [("premium_increase_rep", "rep@agency.example")]


def test_equal_premium_sends_no_change_notice(send, rt, drain, sendgrid):
    send.platform(invoice("invoice.created", 5000, T0, withhold=True), "msg_i1")
    send.platform(invoice("invoice.updated", 5000, T0 + 5, withhold=True), "msg_i2")
    drain()
    assert sendgrid.accepted == []


def test_older_invoice_arriving_late_changes_nothing(send, rt, drain, sendgrid):
    send.platform(invoice("invoice.created", 5000, T0, withhold=True), "msg_i1")
    drain()
    send.platform(invoice("invoice.updated", 7000, T0 + 20, withhold=True), "msg_new")
    drain()
    assert kinds(sendgrid) == [("premium_increase_rep", "rep@agency.example")]
    sendgrid.reset()
    send.platform(invoice("invoice.updated", 6000, T0 + 10, withhold=True), "msg_old")
    drain()
    assert sendgrid.accepted == []
    # And the ledger still compares with the newest: 7000 -> 6500 is a decrease of $5.
    send.platform(invoice("invoice.updated", 6500, T0 + 30, withhold=True), "msg_newest")
    drain()
    [(notice, _, subject)] = received(sendgrid)
    assert notice == "premium_decrease_rep" and "$5.00" in subject


def test_replayed_and_duplicate_events_send_once(send, rt, drain, sendgrid, redis):
    event = invoice("invoice.created", 5000, T0)
    assert send.platform(event, "msg_i1").status_code == 202
    assert send.platform(event, "msg_i1").status_code == 200
    drain()
    key = "event:platform:msg_i1"
    redis.hset(key, "status", "received")
    rt.inbox.enqueue(key)  # an operator replay
    drain()
    assert kinds(sendgrid) == [("payment_reminder", "maya@example.com")]


@pytest.mark.parametrize("first", ["charge", "assignment"])
def test_one_confirmation_per_charge_in_either_order(send, rt, drain, sendgrid, first):
    charge = charge_succeeded("in_9")
    active = {
        "id": "ev_active",
        "type": "assignment.active",
        "created": T0,
        "data": {
            "id": "an_1",
            "contractor": MAYA,
            "job": "jb_1",
            "invoice": {"id": "in_9", "premium_due": 4325},
        },
    }
    for event in [charge, active] if first == "charge" else [active, charge]:
        assert send.ten99(event).status_code == 202
        drain()
    assert kinds(sendgrid) == [("payment_confirmation", "maya@example.com")]
    assert "$43.25" in received(sendgrid)[0][2]


def test_charge_failure_warns_contractor(send, rt, drain, sendgrid):
    event = {
        "id": "ev_fail",
        "type": "invoice.charge_card_failed",
        "created": T0,
        "data": {
            "id": "in_3",
            "premium_due": 2500,
            "contractor": MAYA,
            "failure_message": "card declined",
        },
    }
    send.ten99(event)
    drain()
    [(notice, to, subject)] = received(sendgrid)
    assert (notice, to) == ("assignment_charge_failure", "maya@example.com")
    assert "$25.00" in subject
    assert "card declined" in text_of(sendgrid.accepted[0])


def test_missing_contact_waits_then_contractor_updated_sends(send, rt, drain, sendgrid, redis):
    send.ten99(charge_succeeded("in_wait", contractor="cn_2"))
    drain()
    assert sendgrid.accepted == []
    [key] = redis.keys("notice:*")
    assert redis.hget(key, "state") == b"awaiting_contact"
    update = platform_event(
        "contractor.updated",
        {"id": "cn_2", "email": "sam@example.com", "first_name": "Sam", "last_name": "Lee"},
    )
    send.platform(update, "msg_c1")
    drain()
    [(notice, to, _)] = received(sendgrid)
    assert (notice, to) == ("payment_confirmation", "sam@example.com")
    assert "Sam" in text_of(sendgrid.accepted[0])
    assert redis.hget(key, "state") == b"accepted"
    # A later update for the same contractor sends nothing more.
    send.platform({**update, "created": update["created"] + 5}, "msg_c2")
    drain()
    assert len(sendgrid.accepted) == 1


def test_stored_contact_is_used_for_events_naming_contractor_by_id(send, rt, drain, sendgrid):
    send.platform(
        platform_event(
            "contractor.updated",
            {
                "id": "cn_3",
                "email": "ana@example.com",
                "first_name": "Ana",
                "last_name": "Ruiz",
                "timezone": "Europe/Madrid",
            },
        ),
        "msg_c3",
    )
    send.ten99(charge_succeeded("in_ana", contractor="cn_3"))
    drain()
    assert kinds(sendgrid) == [("payment_confirmation", "ana@example.com")]


def test_rep_falls_back_to_org_rep_emails(send, config, redis, sendgrid):
    from rq import SimpleWorker

    from receiver.config import load_config
    from receiver.pipeline import tasks
    from receiver.pipeline.runtime import build

    rt = build(load_config({**config, "ORG_REP_EMAILS": "ops@org.example, b@org.example"}))
    tasks.install(rt)
    try:
        job = {"id": "jb_2", "name": "Shoot"}
        for premium, created, msg in ((5000, T0, "m1"), (4000, T0 + 1, "m2")):
            send.platform(invoice("invoice.updated", premium, created, withhold=True, job=job), msg)
        SimpleWorker([rt.queue], connection=rt.redis, serializer=rt.queue.serializer).work(
            burst=True
        )
    finally:
        tasks.install(None)
    assert kinds(sendgrid) == [
        ("premium_decrease_rep", "b@org.example"),
        ("premium_decrease_rep", "ops@org.example"),
    ]


def test_no_rep_address_is_a_visible_failed_record(send, rt, drain, sendgrid, redis):
    job = {"id": "jb_2", "name": "Shoot"}
    send.platform(invoice("invoice.updated", 5000, T0, withhold=True, job=job), "m1")
    send.platform(invoice("invoice.updated", 4000, T0 + 1, withhold=True, job=job), "m2")
    drain()
    assert sendgrid.accepted == []
    [key] = [
        k for k in redis.keys("notice:*") if redis.hget(k, "notice") == b"premium_decrease_rep"
    ]
    assert redis.hget(key, "state") == b"failed"
    assert b"ORG_REP_EMAILS" in redis.hget(key, "last_error")


def test_an_older_event_arriving_late_does_not_redirect_rep_notices(
    send, rt, drain, sendgrid, redis
):
    # A job's fields are newest-wins by event `created`: an older event delivered late does
    # not put back a former PO contact, and the next rep notice goes to the current one.
    t0 = int(time.time())
    job_new = {
        "id": "jb_9",
        "name": "Deck",
        "custom_metadata": {"po_contact_email": "new@agency.example"},
    }
    job_old = {
        "id": "jb_9",
        "name": "Deck",
        "custom_metadata": {"po_contact_email": "old@agency.example"},
    }
    maya = {"id": "cn_1", "email": "maya@example.com", "first_name": "Maya", "last_name": "T"}
    send.platform(
        platform_event(
            "invoice.created",
            {
                "id": "in_9",
                "contractor": maya,
                "job": job_new,
                "premium_due": 5000,
                "withhold_premium": True,
            },
            created=t0 + 20,
        ),
        "msg_i1",
    )
    drain()
    send.platform(
        platform_event(
            "assignment.created",
            {  # older, delivered late
                "id": "an_9",
                "contractor": maya,
                "job": job_old,
                "premium_due": 4000,
                "withhold_premium": True,
            },
            created=t0 + 10,
        ),
        "msg_a_late",
    )
    drain()
    send.platform(
        platform_event(
            "invoice.updated",
            {
                "id": "in_9",
                "contractor": "cn_1",
                "job": "jb_9",
                "premium_due": 6000,
                "withhold_premium": True,
            },
            created=t0 + 30,
        ),
        "msg_i2",
    )
    drain()
    reps = [
        m["body"]["personalizations"][0]["to"][0]["email"]
        for m in sendgrid.accepted
        if m["body"]["categories"] == ["premium_increase_rep"]
    ]
    assert reps == ["new@agency.example"], reps


# --- SendGrid's answers, through both transports ------------------------------------------


@pytest.fixture(params=["session", "client"])
def transport(request, rt):
    rt.mailer.transport = request.param
    return request.param


def wait_and_drain(drain, sendgrid, count, timeout=15):
    """Run due retries (RQ's scheduler goes by the wall clock) until `count` mails are
    accepted; `timeout` only bounds a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    while len(sendgrid.accepted) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        drain(scheduler=True)


def the_record(redis):
    [key] = redis.keys("notice:*")
    return {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}


def test_429_waits_for_rate_limit_reset_then_sends_once(
    send, rt, drain, sendgrid, redis, transport
):
    reset = int(time.time()) + 1
    sendgrid.script(("status", 429, {"X-RateLimit-Reset": str(reset)}))
    send.ten99(charge_succeeded("in_429"))
    drain()
    record = the_record(redis)
    assert record["state"] == "pending" and sendgrid.accepted == []
    wait_and_drain(drain, sendgrid, 1)
    assert len(sendgrid.accepted) == 1
    assert sendgrid.accepted[0]["time"] >= reset
    assert the_record(redis)["state"] == "accepted"


def test_500_then_success_sends_one_email(send, rt, drain, sendgrid, redis, config, transport):
    sendgrid.script(("status", 500), ("status", 503))
    send.ten99(charge_succeeded("in_500"))
    rt.sender.backoff_base = 0.2
    wait_and_drain(drain, sendgrid, 1)
    assert len(sendgrid.accepted) == 1
    record = the_record(redis)
    assert record["state"] == "accepted" and record["attempts"] == "3"


def test_timeout_is_retried(send, rt, drain, sendgrid, redis, transport):
    rt.mailer.client.client.timeout = rt.mailer.timeout = 0.3
    rt.sender.backoff_base = 0.2
    sendgrid.script(("delay", 1.0))
    send.ten99(charge_succeeded("in_slow"))
    wait_and_drain(drain, sendgrid, 1)
    assert len(sendgrid.accepted) == 1
    assert the_record(redis)["state"] == "accepted"


def test_400_fails_permanently_with_errors_kept(send, rt, drain, sendgrid, redis, transport):
    sendgrid.script(
        (
            "status",
            400,
            {},
            {
                "errors": [
                    {
                        "message": "The from address does not match a verified Sender Identity.",
                        "field": "from",
                        "help": None,
                    }
                ]
            },
        )
    )
    send.ten99(charge_succeeded("in_400"))
    drain()
    time.sleep(0.3)
    drain(scheduler=True)
    record = the_record(redis)
    assert record["state"] == "failed"
    assert "verified Sender Identity" in record["errors"]
    assert len(sendgrid.requests) == 1  # not retried


def test_no_personal_data_or_api_key_in_logs(send, rt, drain, sendgrid, caplog, capsys):
    import logging

    caplog.set_level(logging.DEBUG)
    sendgrid.script(("status", 500))
    send.ten99(charge_succeeded("in_log"))
    send.platform(invoice("invoice.created", 5000, T0), "msg_log")
    rt.sender.backoff_base = 0.1
    drain()
    wait_and_drain(drain, sendgrid, 2)
    assert len(sendgrid.accepted) == 2
    logged = caplog.text + "".join(capsys.readouterr())
    assert logged  # the worker did log (job starts, retries)
    for secret in ("maya@example.com", "Maya", "Thompson", "SG.test-key", "rep@agency"):
        assert secret not in logged


def test_newlines_in_a_name_never_reach_a_header(send, rt, drain, sendgrid):
    person = {**MAYA, "first_name": "Maya\r\nBcc: evil@example.com", "last_name": "T\nX"}
    send.ten99(charge_succeeded("in_nl", contractor=person))
    drain()
    [mail] = sendgrid.accepted
    to = mail["body"]["personalizations"][0]["to"][0]
    assert "\n" not in to["name"] and "\r" not in to["name"]
    assert "\n" not in mail["body"]["subject"]
    assert [t["email"] for p in mail["body"]["personalizations"] for t in p["to"]] == [
        "maya@example.com"
    ]


@pytest.mark.parametrize("mode,connections", [("session", 1), ("client", 3)])
def test_session_transport_reuses_one_connection(send, rt, drain, sendgrid, mode, connections):
    rt.mailer.transport = mode
    before = sendgrid.connections
    for n in range(3):
        send.ten99(charge_succeeded(f"in_conn{n}"))
    drain()
    assert len(sendgrid.accepted) == 3
    assert sendgrid.connections - before == connections


def test_contact_from_1099policy_api_when_no_event_names_it(send, config, redis, sendgrid):
    """Nothing stored, API down at first: the notice waits; a later sweep finds the contact."""
    from rq import SimpleWorker

    from receiver.config import load_config
    from receiver.pipeline import tasks
    from receiver.pipeline.runtime import build
    from tests.ten99policy_server import Ten99PolicyServer

    with Ten99PolicyServer() as api:
        api.fail_with(500)
        rt = build(
            load_config(
                {
                    **config,
                    "TEN99POLICY_API_KEY": "t9sk_test_key",
                    "TEN99POLICY_API_BASE": api.url,
                    # Only a bound: the stand-in answers at once, however loaded the machine.
                    "TEN99POLICY_API_TIMEOUT_SECONDS": "5",
                }
            )
        )
        tasks.install(rt)
        try:

            def work():
                SimpleWorker([rt.queue], connection=rt.redis, serializer=rt.queue.serializer).work(
                    burst=True
                )

            send.ten99(charge_succeeded("in_api", contractor="cn_api"))
            work()
            [key] = redis.keys("notice:*")
            assert redis.hget(key, "state") == b"awaiting_contact"
            api.reset()
            api.contractors["cn_api"] = {
                "id": "cn_api",
                "email": "lee@example.com",
                "first_name": "Lee",
                "last_name": "Wong",
            }
            redis.delete("sweeper:lock")
            sweep(rt, now=time.time() + rt.cfg.SWEEP_AFTER_SECONDS + 1)
            work()
        finally:
            tasks.install(None)
    assert kinds(sendgrid) == [("payment_confirmation", "lee@example.com")]
    assert "Lee" in text_of(sendgrid.accepted[0])


def test_sustained_throttling_is_not_a_failure(send, rt, drain, sendgrid, redis):
    """Six 429s in a row (more than the 5xx budget) still end in one accepted email."""
    reset = str(int(time.time()))
    sendgrid.script(*[("status", 429, {"X-RateLimit-Reset": reset})] * 7)
    send.ten99(charge_succeeded("in_throttle"))
    wait_and_drain(drain, sendgrid, 1, timeout=30)
    record = the_record(redis)
    assert record["state"] == "accepted" and record["attempts"] == "8"
    assert len(sendgrid.accepted) == 1


def test_429_with_an_unusable_reset_does_not_leave_the_record_stuck(rt, redis, sendgrid, drain):
    # A 429 whose reset is unusable (milliseconds, far off, garbage) still ends in a retry
    # the sweeper can see, so the record is sent or visibly `failed`, never pending forever.
    ms_reset = str(int(time.time() * 1000))
    sendgrid.script(("status", 429, {"X-RateLimit-Reset": ms_reset}))
    rt.records.create(
        "payment_confirmation",
        "charge:in_5",
        "contractor:cn_5",
        Contact(email="ana@example.com", first_name="Ana", last_name="Li"),
        {
            "invoice_id": "in_5",
            "amount_cents": 100,
            "paid_at": 1,
            "payment_method": "card",
            "contractor": {"id": "cn_5", "first_name": "Ana", "last_name": "Li"},
            "job": {"id": "jb_1", "name": "x"},
            "coverage_url": None,
        },
    )
    drain()
    [rec] = records(redis, "payment_confirmation")
    assert rec["state"] == "pending"
    for later in (3600, 86400):
        redis.delete("sweeper:lock")
        sweep(rt, now=time.time() + later)
    drain()
    [rec] = records(redis, "payment_confirmation")
    assert rec["state"] in ("accepted", "failed"), rec["state"]
