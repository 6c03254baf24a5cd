"""Regressions from a review of the pipeline: each test failed on a real defect (described
in its comment, with where it was) and passes since the fix.

Real Redis, real RQ jobs, the SendGrid stand-in; time injected through `rt.clock`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from receiver.notices.contacts import Contact
from receiver.notices.reminders import Guards
from receiver.pipeline.sweeper import sweep
from receiver.store.keys import notice as record_key
from tests.events import JOB, invoice, platform_event
from tests.records import at, records
from tests.signing import tv1_header

HNL = ZoneInfo("Pacific/Honolulu")


# --- 500s from signed but malformed bodies (receiver/events.py, views/webhooks.py) ----------


def _post_signed(app, body: bytes):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # see the 500 a sender would see
    client = app.test_client()
    return client.post(
        "/webhooks/1099policy", data=body, headers={"Ten99Policy-Signature": tv1_header(body)}
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "ev_\ud800", "type": "policy.active", "created": 1, "data": {"id": "pl_1"}},
        {"id": "ev_ok", "type": "policy.\ud800", "created": 1, "data": {"id": "pl_1"}},
        {"type": "policy.active", "created": 1, "data": {"id": "pl_\ud800"}},  # shape C
        # Anywhere else too: accepted, it would fail every processing retry (UnicodeEncodeError).
        {
            "id": "ev_c",
            "type": "invoice.charge_card_succeeded",
            "created": 1,
            "data": {"id": "in_1", "contractor": {"id": "cn_1", "email": "m\udc00@example.com"}},
        },
        {"id": "ev_k", "type": "policy.active", "created": 1, "data": {"id": "pl_1", "\ud800": 1}},
    ],
)
def test_lone_surrogate_anywhere_is_400_not_500(app, redis, doc):
    # Was: events.py:122-134,139 / inbox.py:150-153: JSON "\ud800" escapes are valid JSON and
    # json.loads yields a str with a lone surrogate; it passes every check, then encoding it
    # (the Redis key / HSET args in inbox.accept, or sha256 in derived_id) raises
    # UnicodeEncodeError (not RedisError / PayloadError) -> 500.
    # Expected: 400 invalid_payload (reject any text that is not encodable UTF-8).
    r = _post_signed(app, json.dumps(doc).encode())
    assert r.status_code == 400, r.status_code


def test_surrogate_encoded_in_the_bytes_is_400_and_nothing_is_stored(app, redis):
    # Python's JSON reader decodes bytes with "surrogatepass": no escape needed.
    body = (
        b'{"id": "ev_raw", "type": "policy.active", "created": 1, '
        b'"data": {"id": "pl_1", "note": "\xed\xa0\x80"}}'
    )
    r = _post_signed(app, body)
    assert r.status_code == 400 and "surrogate" in r.get_json()["detail"]
    assert not redis.keys("event:*")


def test_non_ascii_text_and_escaped_pairs_are_accepted(app, redis):
    doc = {
        "id": "ev_text",
        "type": "policy.active",
        "created": 1,
        "data": {"id": "pl_1", "holder": "Zoë Ñúñez 김", "mood": "\U0001f600"},
    }
    for body in (json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False).encode()):
        r = _post_signed(app, body)
        assert r.status_code in (200, 202), r.get_json()
    assert redis.hget("event:1099policy:ev_text", "status") == b"received"


def test_deeply_nested_json_is_400_not_500(app, redis):
    # Was: events.py:112-115: json.loads raises RecursionError (a RuntimeError) on deeply
    # nested input; only ValueError is caught -> 500. A 600 KB signed body is enough.
    # Expected: 400 invalid_payload.
    body = b'{"type": "policy.active", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    r = _post_signed(app, body)
    assert r.status_code == 400, r.status_code


# --- reminders at the wrong time ----------------------------------------------------------


def test_known_time_zone_is_used_when_the_event_embeds_a_contractor_without_one(
    send, rt, drain, sendgrid, redis, clock
):
    # Was: handlers.py:71-73 (notify): when the event embeds the contractor with an email,
    # that embedded Person is used as is. Embedded objects carry no time zone (contacts.py
    # even keeps the stored zone for that reason), so the zone stored from contractor.updated
    # is ignored: quiet hours and dates use US Eastern although the recipient's zone is known.
    # Expected: the stored zone (Pacific/Honolulu) is used: a reminder due at 05:00 Honolulu
    # time waits until 08:00 there.
    clock.now = at(2026, 3, 2, 12)
    maya = {
        "id": "cn_1",
        "email": "maya@example.com",
        "first_name": "Maya",
        "last_name": "Thompson",
    }
    send.platform(
        platform_event("contractor.updated", {**maya, "timezone": "Pacific/Honolulu"}), "msg_c1"
    )
    drain()
    charge_at = int(at(2026, 3, 4, 10))  # reminder 24 h before: 10:00 NY = 05:00 Honolulu
    send.platform(
        platform_event(
            "assignment.created",
            {
                "id": "an_1",
                "contractor": maya,
                "job": JOB,
                "premium_due": 1200,
                "withhold_premium": False,
                "charge_at": charge_at,
            },
        ),
        "msg_a1",
    )
    drain()
    [rec] = records(redis, "assignment_charge_reminder")
    assert rec["timezone"] == "Pacific/Honolulu"
    local = datetime.fromtimestamp(float(rec["send_at"]), HNL)
    assert 8 <= local.hour < 21, local


def test_reminder_released_from_awaiting_contact_respects_the_recipients_quiet_hours(
    send, rt, drain, sendgrid, redis, clock
):
    # Was: deliveries.py:75-84,193-206 (_RELEASE / release): a reminder created while the
    # contact was unknown gets send_at from US Eastern quiet hours; when contractor.updated
    # supplies the contact and its zone, the record's timezone is updated but send_at is not
    # recomputed, so it goes out at 05:00 in the recipient's zone.
    # Expected: on release, send_at is re-derived with the recipient's zone (08:00 Honolulu).
    clock.now = at(2026, 3, 2, 12)
    charge_at = int(at(2026, 3, 4, 10))
    send.platform(
        platform_event(
            "assignment.created",
            {
                "id": "an_2",
                "contractor": "cn_2",
                "job": JOB,
                "premium_due": 1200,
                "withhold_premium": False,
                "charge_at": charge_at,
            },
        ),
        "msg_a2",
    )
    drain()
    [rec] = records(redis, "assignment_charge_reminder")
    assert rec["state"] == "awaiting_contact"
    send.platform(
        platform_event(
            "contractor.updated",
            {
                "id": "cn_2",
                "email": "lee@example.com",
                "first_name": "Lee",
                "last_name": "Kai",
                "timezone": "Pacific/Honolulu",
            },
        ),
        "msg_c2",
    )
    drain()
    [rec] = records(redis, "assignment_charge_reminder")
    assert rec["state"] == "pending" and rec["timezone"] == "Pacific/Honolulu"
    local = datetime.fromtimestamp(float(rec["send_at"]), HNL)
    assert 8 <= local.hour < 21, local


@pytest.fixture
def short_retention(config):
    config["EVENT_RETENTION_DAYS"] = "14"
    return config


def test_scheduled_reminder_record_outlives_its_send_time(
    short_retention, send, rt, drain, sendgrid, redis, clock
):
    # Was: deliveries.py:181 (create): every notice record gets EXPIRE = EVENT_RETENTION_DAYS
    # whatever its send_at. A remit reminder is due 23 days out (30-day due date minus
    # REMIT_REMINDER_DAYS); with a valid EVENT_RETENTION_DAYS=14 the record is gone 9 days
    # before its scheduled job runs, which then finds it 'missing' and the sweeper drops it:
    # the reminder is silently lost. Expected: a record lives at least until it is sent
    # (e.g. TTL = max(retention, send_at - now + retention)).
    clock.now = now = at(2026, 3, 2, 12)
    send.platform(invoice("invoice.created", 9900, int(now), withhold=True), "msg_r1")
    drain()
    [rec] = records(redis, "remit_bill_reminder_rep")
    ttl = redis.ttl(record_key(rec["id"]))
    assert now + ttl > float(rec["send_at"]), (ttl / 86400, (float(rec["send_at"]) - now) / 86400)


# --- races and crash windows ----------------------------------------------------------------


def test_notice_created_while_release_runs_is_not_orphaned(rt, redis):
    # Was a defect: release() checked SCARD and then ZREM'd the contractor from
    # `notices:awaiting` in two commands; a notice created in between was orphaned (nothing
    # would ever look its contact up again). Now one script forgets the contractor only if
    # nothing waits. Interleaving: release has run its loop; another worker creates a
    # waiting notice; release's last step runs.
    from receiver.notices.contacts import Contact
    from receiver.store.keys import NOTICES_AWAITING as AWAITING_KEY
    from receiver.store.keys import awaiting as awaiting_key

    rt.contacts.remember(
        Contact(
            id="cn_3",
            email="sam@example.com",
            first_name="Sam",
            last_name="Ray",
            timezone=None,
            withhold_premium=None,
        ),
        1,
    )
    rt.records.create(
        "payment_confirmation",
        "charge:in_3",
        "contractor:cn_3",
        Contact(email=""),
        {"x": 1},
        waiting_for="cn_3",
    )
    rt.records._forget_if_done(keys=[awaiting_key("cn_3"), AWAITING_KEY], args=["cn_3"])
    assert redis.zscore(AWAITING_KEY, "cn_3") is not None
    for later in (60, 3600):
        redis.delete("sweeper:lock")
        sweep(rt, now=time.time() + later)
    [rec] = records(redis, "payment_confirmation")
    assert rec["state"] != "awaiting_contact", "stuck: nothing will ever release it"


def test_stale_moot_check_does_not_overwrite_a_concurrent_send(rt, redis, sendgrid):
    # Was: deliveries.py:255-258 (send): the guard check reads the record before any claim
    # and then writes `cancelled` unconditionally (_finish is a plain HSET). Two send jobs for
    # one record (a sweeper re-queue, or a released job next to the scheduled one): job B
    # reads `pending`, job A claims, sends, records `accepted`; B then cancels it, so the
    # record says `cancelled` for an email SendGrid accepted (or overwrites A's `sending`).
    # Expected: cancel only from `pending`, atomically (like suppressions' _HOLD script).
    rt.records.create(
        "payment_reminder",
        "invoice:in_4@100",
        "contractor:cn_4",
        Contact(email="kim@example.com", first_name="Kim", last_name="Lo"),
        {"x": 1},
        guard={"invoice": "in_4", "premium": 100},
    )
    [rec] = records(redis, "payment_reminder")
    key = record_key(rec["id"])

    class MeanwhileSent(Guards):
        def moot_reason(self, guard, now):
            # What job A did while job B was between its read and its cancel:
            redis.hset(key, mapping={"state": "accepted", "message_id": "msg-A"})
            return "settled: the invoice was paid"

    rt.sender.guards = MeanwhileSent(rt.settlements, rt.ledger)
    rt.sender.send(rec["id"])
    assert redis.hget(key, "state") == b"accepted"


def test_429_with_an_unusable_reset_does_not_leave_the_record_stuck(rt, redis, sendgrid, drain):
    # Was: deliveries.py:297-304 (_after_failure) + mailer.py:80-84 (classify): the 429
    # reset is trusted unbounded. A reset in milliseconds (or any far/invalid value) makes
    # `_enqueue` raise (datetime out of range) AFTER the record was set `pending` and scored
    # at that reset in notices:pending, so no job exists and the sweeper (which only looks
    # at scores <= now - SWEEP_AFTER) never sees it again: pending forever, never `failed`.
    # Expected: clamp retry_at (e.g. to now + a maximum wait) so the record is retried or
    # ends `failed`, visibly.
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


def test_an_older_event_arriving_late_does_not_redirect_rep_notices(
    send, rt, drain, sendgrid, redis
):
    # Was: handlers.py:69-70 -> jobs.py:23-41 (Jobs.remember): an embedded job overwrites
    # the stored one whatever the event's age (no newest-wins, unlike contacts.py). An older
    # event delivered late (routine: the spec's own out-of-order case) puts back a former
    # PO contact, and the next rep notice goes to that former address.
    # Expected: job fields are newest-wins by event `created`; the rep notice goes to new@.
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


def test_reminder_is_not_sent_after_the_charge_it_announces(
    send, rt, drain, sendgrid, redis, clock
):
    # Was: deliveries.py:250-258 (send) / reminders.py:70 (moot_reason): the send-time check
    # looks only at settlements and re-pricing, never at the reminder's deadline. A reminder
    # whose job runs late (worker backlog or outage, a sweeper recovery, a late release from
    # awaiting_contact) goes out after the charge moment, saying "we will charge it to your
    # card on <past time>; update it before then". reminders.py itself says "a reminder after
    # the charge is no reminder". Expected: past its deadline the record is `cancelled`.
    now = clock.now
    event = invoice("invoice.created", 4325, int(now))
    event["data"]["charge_at"] = int(now + 3 * 86400)
    send.platform(event, "msg_i1")
    drain()
    [rec] = records(redis, "payment_reminder")
    clock.now = now + 3 * 86400 + 3600  # the job finally runs an hour after the charge
    from receiver.pipeline.tasks import send_notice

    assert send_notice(rec["id"]) == "cancelled"
    assert sendgrid.accepted == []
