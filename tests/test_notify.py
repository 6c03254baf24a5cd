"""Every notice end to end: signed events in, schema-checked SendGrid requests out.

Real Redis, RQ jobs run by SimpleWorker, the official `sendgrid` client over HTTP to the
SendGrid stand-in. The assertions are what the people receive.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from receiver.notices.contacts import Contact
from receiver.pipeline.sweeper import sweep
from receiver.pipeline.tasks import send_notice
from tests.bursts import charged_invoice, reprices, send_due
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


@pytest.fixture
def prompt(config):
    """Change notices at once (NOTICE_COALESCE_SECONDS=0), for tests not about coalescing."""
    config["NOTICE_COALESCE_SECONDS"] = "0"
    return config


def test_an_assignment_and_its_invoices_are_separate_bills(send, rt, drain, sendgrid):
    # A premium change is a change to one bill: neither the assignment's premium nor the
    # job's earlier invoice is compared with a new invoice (weekly pay that varies must not
    # read "your premium went up" every week).
    send.platform(assignment_created(4000), "msg_a")
    send.platform(invoice("invoice.created", 5000, T0 + 10), "msg_i1")
    send.platform(invoice("invoice.created", 6500, T0 + 20, invoice_id="in_2"), "msg_i2")
    drain()
    assert kinds(sendgrid) == [
        ("assignment_charge_reminder", "maya@example.com"),
        ("payment_reminder", "maya@example.com"),
        ("payment_reminder", "maya@example.com"),
    ]
    reminders = [
        subject for notice, _, subject in received(sendgrid) if notice == "payment_reminder"
    ]
    assert sorted(subject.split()[2] for subject in reminders) == ["$50.00", "$65.00"]


def test_remit_reprice_goes_to_rep_only(prompt, send, rt, drain, sendgrid):
    send.platform(invoice("invoice.created", 5000, T0, withhold=True), "msg_i1")
    send.platform(invoice("invoice.updated", 6000, T0 + 5, withhold=True), "msg_i2")
    drain()
    assert kinds(sendgrid) == [("premium_increase_rep", "rep@agency.example")]
    [(_, _, subject)] = received(sendgrid)
    assert subject == "Bill changed for Maya Thompson on Deck repair: now $60.00, was $50.00"


def test_equal_premium_sends_no_change_notice(send, rt, drain, sendgrid):
    send.platform(invoice("invoice.created", 5000, T0, withhold=True), "msg_i1")
    send.platform(invoice("invoice.updated", 5000, T0 + 5, withhold=True), "msg_i2")
    drain()
    assert sendgrid.accepted == []


def test_older_invoice_arriving_late_changes_nothing(prompt, send, rt, drain, sendgrid):
    send.platform(invoice("invoice.created", 5000, T0, withhold=True), "msg_i1")
    drain()
    send.platform(invoice("invoice.updated", 7000, T0 + 20, withhold=True), "msg_new")
    drain()
    assert kinds(sendgrid) == [("premium_increase_rep", "rep@agency.example")]
    sendgrid.reset()
    send.platform(invoice("invoice.updated", 6000, T0 + 10, withhold=True), "msg_old")
    drain()
    assert sendgrid.accepted == []
    # And the ledger still compares with the newest: 7000 -> 6500 is a decrease.
    send.platform(invoice("invoice.updated", 6500, T0 + 30, withhold=True), "msg_newest")
    drain()
    [(notice, _, subject)] = received(sendgrid)
    assert notice == "premium_decrease_rep" and "now $65.00, was $70.00" in subject


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


@pytest.mark.parametrize("amount", [None, -500], ids=["no premium_due", "negative"])
def test_charge_failure_of_unknown_amount_states_none(amount, send, rt, drain, sendgrid):
    # Not "your $0.00 insurance payment failed", not "-$5.00": the amount is left out.
    data = {"id": "in_4", "contractor": MAYA, "failure_message": "card declined"}
    if amount is not None:
        data["premium_due"] = amount
    send.ten99({"id": "ev_fail", "type": "invoice.charge_card_failed", "created": T0, "data": data})
    drain()
    [(notice, to, subject)] = received(sendgrid)
    assert (notice, subject) == (
        "assignment_charge_failure",
        "Action needed: your insurance payment failed",
    )
    assert "$" not in text_of(sendgrid.accepted[0])


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

    rt = build(
        load_config(
            {
                **config,
                "ORG_REP_EMAILS": "ops@org.example, b@org.example",
                "NOTICE_COALESCE_SECONDS": "0",
            }
        )
    )
    tasks.install(rt)
    try:
        job = {"id": "jb_2", "name": "Shoot"}
        for premium, created, msg in ((5000, T0, "m1"), (4000, T0 + 1, "m2")):
            send.platform(invoice("invoice.updated", premium, created, withhold=True, job=job), msg)
        SimpleWorker(rt.queues, connection=rt.redis, serializer=rt.queue.serializer).work(
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
    prompt, send, rt, drain, sendgrid, redis
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


# --- money messages follow the money: one bill, its charge, bursts of re-prices -------------


def mails(sendgrid, to):
    """(notice, subject, text) of every mail accepted for one address, in order."""
    return [
        (m["body"]["categories"][0], m["body"]["subject"], text_of(m))
        for m in sendgrid.accepted
        if m["body"]["personalizations"][0]["to"][0]["email"] == to
    ]


@pytest.mark.parametrize("order", ["worker_between", "backlog"])
def test_one_invoice_repriced_twice_within_seconds_before_the_charge(
    send, rt, drain, sendgrid, redis, clock, order
):
    """The story of issue 11: a card payer, one invoice of $50 re-priced to $60 then $55
    within seconds, an hour before its charge. Before: six emails to the contractor (three
    reminders, a "we will charge the difference" and a "we are refunding the difference"
    although nothing had been charged). Now: the reminder of the new bill (if it went out
    before the re-prices were processed), then one updated reminder; the rep gets one
    changed-bill notice.

    `backlog`: all three events wait when the worker starts; the first event's task sends the
    reminder it decided (due now) before the next event, the re-prices, is taken."""
    t0 = int(clock.now)
    created = invoice("invoice.created", 5000, t0)
    assert created["data"]["charge_at"] == t0 + 3600  # within the reminder lead: due now
    send.platform(created, "msg_i1")
    if order == "worker_between":
        drain()  # a live worker sends the new bill's reminder before the re-prices arrive
    reprices(send, clock, [6000, 5500])
    drain()
    first = [("payment_reminder", "Payment reminder: $50.00")]  # before the re-prices
    assert [(n, s.split(" due")[0]) for n, s, _ in mails(sendgrid, MAYA["email"])] == first
    assert mails(sendgrid, "rep@agency.example") == []  # the burst is still gathering

    clock.now += 300  # NOTICE_COALESCE_SECONDS after the first re-price was processed
    send_due(redis, clock)
    contractor = mails(sendgrid, MAYA["email"])
    rep = mails(sendgrid, "rep@agency.example")
    assert len(contractor) == len(first) + 1 and len(rep) == 1
    [(notice, subject, text)] = contractor[len(first) :]
    assert notice == "payment_reminder"
    assert subject.startswith("Updated payment reminder: your charge on ")
    assert subject.endswith(" is now $55.00, was $50.00")
    [(rep_notice, rep_subject, rep_text)] = rep
    assert rep_notice == "premium_increase_rep"
    assert rep_subject == "Bill changed for Maya Thompson on Deck repair: now $55.00, was $50.00"
    for body in (text, rep_text):
        assert "refund" not in body.lower() and "difference" not in body.lower()

    # Exactly once: replays of every event, and a second sweep of the due notices, add nothing.
    for msg in ("msg_i1", "msg_u1", "msg_u2"):
        redis.hset(f"event:platform:{msg}", "status", "received")
        rt.inbox.enqueue(f"event:platform:{msg}")
    drain()
    send_due(redis, clock)
    assert len(sendgrid.accepted) == len(first) + 2


@pytest.mark.parametrize(
    "amounts,notice,difference,wording",
    [
        ([6000], "increase", "$10.00", "An additional $10.00 will be charged to your card"),
        ([4000], "decrease", "$10.00", "A refund of $10.00 is being processed to your card"),
        # A burst after the charge: one email, final amount against the one before it.
        ([6000, 6500], "increase", "$15.00", "An additional $15.00 will be charged"),
        ([6000, 4500], "decrease", "$5.00", "A refund of $5.00 is being processed"),
    ],
)
def test_repriced_after_the_charge_contractor_and_rep_hear_of_the_money(
    send, rt, drain, sendgrid, redis, clock, amounts, notice, difference, wording
):
    charged_invoice(send, drain, clock)
    before = len(sendgrid.accepted)  # the reminder (possibly) and the confirmation
    reprices(send, clock, amounts)
    drain()
    assert len(sendgrid.accepted) == before  # gathering the burst
    clock.now += 300
    send_due(redis, clock)
    contractor = mails(sendgrid, MAYA["email"])[before - 1 :]
    [(c_notice, c_subject, c_text)] = [m for m in contractor if m[0].startswith("premium_")]
    assert c_notice == f"premium_{notice}_contractor"
    assert f"by {difference}" in c_subject
    assert wording in " ".join(c_text.split())
    assert [n for n, _, _ in contractor if n == "payment_reminder"] == []  # paid: no reminder
    [(r_notice, r_subject, r_text)] = mails(sendgrid, "rep@agency.example")
    assert r_notice == f"premium_{notice}_rep"
    assert r_subject.startswith(
        f"Premium {'up' if notice == 'increase' else 'down'} by {difference}"
    )
    assert "Maya" in r_text and "$50.00" in r_text


def test_repriced_after_payment_remit_goes_to_the_rep_only(send, rt, drain, sendgrid, redis, clock):
    t0 = int(clock.now)
    send.platform(invoice("invoice.created", 5000, t0, withhold=True), "msg_i1")
    send.platform(invoice("invoice.updated", 5000, t0, withhold=True, status="paid"), "msg_p")
    reprices(send, clock, [4000], withhold=True)
    drain()
    clock.now += 300
    send_due(redis, clock)
    assert kinds(sendgrid) == [("premium_decrease_rep", "rep@agency.example")]
    text = " ".join(text_of(sendgrid.accepted[0]).split())
    assert "$10.00 will be credited to your organization" in text


def test_a_reprice_after_the_bursts_notice_went_out_begins_the_next_burst(
    send, rt, drain, sendgrid, redis, clock
):
    # The first notice of a burst to be sent closes it in the ledger, in the same step as it
    # reads the final amount: a re-price decided meanwhile is in that notice or starts the
    # next burst, never lost between the two.
    t0 = int(clock.now)
    charged_invoice(send, drain, clock)
    reprices(send, clock, [6000])
    drain()
    [rep] = records(redis, "premium_increase_rep")
    clock.now = float(rep["send_at"]) - 0.5  # the send task may run up to a second early
    assert send_notice(rep["id"]) == "accepted"
    # Decided before the first burst's due time, so only the closing makes it a new burst.
    send.platform(invoice("invoice.updated", 5500, int(clock.now)), "msg_u2")
    drain()
    clock.now = t0 + 3600
    send_due(redis, clock)
    subjects = [s for n, s, _ in mails(sendgrid, "rep@agency.example")]
    assert subjects == [
        "Premium up by $10.00 for Maya Thompson on Deck repair",
        "Premium down by $5.00 for Maya Thompson on Deck repair",
    ]
    contractor = [s for n, s, _ in mails(sendgrid, MAYA["email"]) if n.startswith("premium_")]
    assert [s.split(":")[0] for s in contractor] == [
        "Your premium went up by $10.00",
        "Your premium went down by $5.00",
    ]


def test_a_retried_burst_notice_sends_what_it_first_worked_out(
    send, rt, drain, sendgrid, redis, clock
):
    # What a burst's notice says is kept in its record once worked out: a retry sends the
    # same email, even after two more bursts replaced the one it is about in the ledger.
    rt.sender.backoff_base = 1000  # the retry comes after both
    charged_invoice(send, drain, clock)
    for n, premium in enumerate([6000, 7500, 7000], start=1):
        reprices(send, clock, [premium], start=n)
        drain()
        clock.now += 300
        if n == 1:
            sendgrid.script(("status", 500))  # the first send of burst 1 fails
        send_due(redis, clock)
    clock.now += 2000
    send_due(redis, clock)
    for to in (MAYA["email"], "rep@agency.example"):
        changes = [s for n, s, _ in mails(sendgrid, to) if n.startswith("premium_")]
        said = sorted(re.search(r"(up|down) by (\$\S+?)[: ]", s).groups() for s in changes)
        assert said == [("down", "$5.00"), ("up", "$10.00"), ("up", "$15.00")], changes
    [retried] = [
        r
        for notice in ("premium_increase_contractor", "premium_increase_rep")
        for r in records(redis, notice)
        if r["attempts"] == "2"
    ]
    assert retried["state"] == "accepted"
    assert json.loads(retried["context"])["new_premium_cents"] == 6000


@pytest.mark.parametrize(
    "notice,fields,says",
    [
        (
            "payment_reminder",
            {"amount_cents": 5000, "charge_at": T0 + 86400, "payment_method": "card"},
            "$50.00 is due",
        ),
        (
            "premium_increase_contractor",
            {"old_premium_cents": 4000, "new_premium_cents": 5000, "difference_cents": 1000},
            "An additional $10.00 will be charged to your card on file.",
        ),
        (
            "premium_decrease_rep",
            {"old_premium_cents": 5000, "new_premium_cents": 4000, "difference_cents": 1000},
            "A refund of $10.00 is being processed",
        ),
    ],
)
def test_a_record_stored_by_the_previous_release_still_sends(
    rt, drain, sendgrid, notice, fields, says
):
    # Scheduled reminders and notices awaiting a contact outlive a deploy; their stored
    # context lacks the fields added since (previous_amount_cents, charged, charge_at).
    context = {
        "invoice_id": "in_old",
        "contractor": {"id": "cn_1", "first_name": "Maya", "last_name": "Thompson"},
        "job": {"id": "jb_1", "name": "Deck repair"},
        "coverage_url": None,
        **fields,
    }
    if notice != "payment_reminder":
        context["payment_method"] = "card"
    rt.records.create(
        notice, "old:1", "contractor:cn_1", Contact(email="maya@example.com"), context
    )
    drain()
    [mail] = sendgrid.accepted
    assert says in " ".join(text_of(mail).split())


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
                SimpleWorker(rt.queues, connection=rt.redis, serializer=rt.queue.serializer).work(
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
