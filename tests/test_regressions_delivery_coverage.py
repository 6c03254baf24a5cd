"""Regressions from a review of coverage and delivery truth: each test failed on a real
defect (described in its comment) and passes since the fix."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests
from rq import Queue
from rq.serializers import JSONSerializer

from receiver.coverage import document as coverage
from receiver.coverage.links import LinkExpired, make_token, read_token
from receiver.coverage.store import CoverageStore
from tests.coverage_events import DAY, T0, assignment, envelope, parse, policy, session
from tests.events import assignment_created, charge_succeeded
from tests.test_sendgrid_events import (  # noqa: F401  (fixtures: signed SendGrid batches)
    _webhook_key,
    post,
    record,
    sg_event,
    sg_key,
)

TOKEN = "tok_" + "a" * 28
SECRET_KEY = "review-secret-key-0123456789"


def store_for(client: Any, url: str | None = None) -> CoverageStore:
    queue = Queue("events", connection=client, serializer=JSONSerializer)
    return CoverageStore(client, queue, url, 86400, clock=lambda: T0)


# --- 1. A 500 from a query parameter --------------------------------------------------------
# coverage_api._at -> events.to_unix: `str.isdigit()` is true for non-ASCII digits such as
# "²", but `int("²")` raises ValueError, which nobody catches (only PayloadError is). The
# issue asks for 400 on bad parameters; the API answers 500.


def test_api_at_with_a_superscript_digit_is_400_not_500(config, app, live_server):
    assert app.config["RECEIVER"].API_TOKENS == (TOKEN,)
    store_for(app.extensions["redis"]).apply(parse(session("application.complete", T0)))
    response = requests.get(
        f"{live_server}/api/contractors/cn_1/coverage",
        params={"job": "jb_1", "at": "²"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert response.status_code == 400


@pytest.fixture(autouse=True)
def _api_tokens(config: dict[str, Any]) -> None:
    config.update(API_TOKENS=TOKEN)


# Same root cause in the worker: coverage._when promises None for an unreadable timestamp but
# only catches PayloadError, so one odd date string makes `coverage.apply` raise; the coverage
# handler runs before the notice handler (_with_coverage), so the event's notices are never
# created either and the event job fails until RQ gives up.


def test_coverage_ignores_an_unreadable_date_instead_of_raising():
    env = assignment("assignment.active", T0, end_date="²")
    doc = coverage.apply(coverage.empty("cn_1"), parse(env))
    assert doc["assignments"]["an_1"]["end_date"] is None


# And on the webhook itself: a signed 1099Policy event whose `created` is "²" gets a 500
# (events.parse lets the ValueError out) instead of 400 invalid_payload.


def test_webhook_with_a_superscript_created_is_400_not_500(app, send):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = send.ten99(
        {"id": "ev_sup", "type": "policy.active", "created": "²", "data": {"id": "pl_1"}}
    )
    assert response.status_code == 400


# --- 2. A 500 on the contractor's coverage page ---------------------------------------------
# coverage_page._day: datetime.fromtimestamp() raises ValueError/OverflowError for a date
# outside Python's range (e.g. a millisecond timestamp, year 55840). coverage._when accepts
# any integer, so such a value is stored and every visit to the page is a 500 trace instead
# of a page (dates shown as unknown).


def test_page_survives_a_date_out_of_range(config, app, live_server):
    assert app.config["RECEIVER"].SECRET_KEY == SECRET_KEY
    store = store_for(app.extensions["redis"])
    store.apply(parse(session("application.complete", T0 - 10)))
    store.apply(parse(policy("policy.active", T0, effective_date=1_700_000_000_000)))
    token = make_token(SECRET_KEY, "cn_1", now=time.time())
    response = requests.get(f"{live_server}/coverage/{token}", timeout=5)
    assert response.status_code == 200


@pytest.fixture(autouse=True)
def _page_config(config: dict[str, Any]) -> None:
    config.update(SECRET_KEY=SECRET_KEY, PUBLIC_BASE_URL="https://coverage.example.com")


# --- 3. An email sent twice despite SendGrid's evidence --------------------------------------
# delivery_events._APPLY turns a record `accepted` on evidence only when it is `failed`
# (interrupted) or `pending` with attempts. A processed event that arrives while the record is
# still `sending` (our HTTP call to SendGrid is open and then times out) moves `delivery` but
# not the state; the timeout then makes it `pending` for a retry and nothing looks at the
# evidence already on the record, so the retry sends the mail a second time. Expected: the
# retry sends nothing (the record's delivery_rank proves SendGrid took it).


def test_evidence_received_during_the_send_call_prevents_the_resend(
    send,
    rt,
    drain,
    sendgrid,
    redis,
    post,  # noqa: F811
):
    from receiver.pipeline.tasks import send_notice

    rt.mailer.timeout = 0.5
    sendgrid.script(("delay", 1.5))  # SendGrid takes it, but answers after our timeout
    assert send.ten99(charge_succeeded("in_race")).status_code == 202
    posted: list[Any] = []

    def sendgrid_reports_it() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for key in redis.keys("notice:*"):
                if redis.hget(key, "state") == b"sending":
                    rid = key.decode().removeprefix("notice:")
                    posted.append((rid, post([sg_event("processed", rid)]).json))
                    return
            time.sleep(0.01)

    reporter = threading.Thread(target=sendgrid_reports_it)
    reporter.start()
    drain()  # the send times out: ambiguous, a retry is scheduled
    reporter.join(10)
    [(rid, answer)] = posted
    assert answer["applied"] == 1
    assert record(redis, rid)["delivery"] == "processed"
    send_notice(rid)  # the scheduled retry comes due
    time.sleep(1.6)  # let the delayed first request finish too
    assert len(sendgrid.requests) == 1, "the mail SendGrid already reported was sent again"


# --- 4. Two different changes pushed with the same webhook-id --------------------------------
# coverage_push.webhook_id hashes the *public* current state and assumes "states never
# repeat". They can: an older event may fill a field the newest event did not give (by
# design), so with the newest event fixed, the field can go X -> Y -> X as older events
# arrive out of order. The third change then carries the same webhook-id as the first, and
# a platform de-duplicating on webhook-id (as Standard Webhooks intends) drops it, keeping Y
# although the current state is X. Expected: a new id per change (e.g. hash the `_as_of` keys
# or a per-document version too).


def _policy_active(created: int, end: int | None, eid: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": "pl_1", "quote": "qt_1", "status": "active", "effective_date": T0}
    if end is not None:
        obj["expiration_date"] = end
    return envelope("policy.active", obj, created, eid)


def test_every_change_gets_its_own_webhook_id(redis):
    store = store_for(redis, url="https://platform.example/hooks")
    store.apply(parse(session("application.complete", T0 - 10)))
    x, y = T0 + 30 * DAY, T0 + 60 * DAY
    store.apply(parse(_policy_active(T0 + 90, None, "ev_p9")))  # newest, abbreviated
    first = store.apply(parse(_policy_active(T0 + 10, x, "ev_p1")))  # end X
    second = store.apply(parse(_policy_active(T0 + 50, y, "ev_p5")))  # end Y
    third = store.apply(parse(_policy_active(T0 + 70, x, "ev_p7")))  # end X again
    assert first.changed and second.changed and third.changed
    assert store.get("cn_1")["policies"]["pl_1"]["end_date"] == x
    assert len({first.pushed, second.pushed, third.pushed}) == 3


# --- 5. `covered` false for a contractor who was covered ------------------------------------
# coverage.window documents "Start is effective_date, else the time 1099Policy *first* told
# us the status", but uses `_as_of["status"]`, the time of the *newest* event that gave a
# status. An assignment announced active at T0 and re-announced at T0+5d (no dates in either
# payload) is answered "not covered" for T0+1d. The same makes a cancelled object without
# dates cover nothing at all (start == end == the cancellation's time).


def test_coverage_starts_when_first_reported_active():
    first = assignment("assignment.active", T0, effective_date=None, end_date=None)
    again = assignment("assignment.active", T0 + 5 * DAY, effective_date=None, end_date=None)
    doc = coverage.empty("cn_1")
    for env in (first, again):
        doc = coverage.apply(doc, parse(env))
    assert coverage.covered(doc, "jb_2", T0 + DAY)["covered"] is True


# --- 6. A coverage link that is already expired when the email is sent ------------------------
# The link's age counts from when the notice was created (handlers.notify signs it with the
# processing time), but a scheduled reminder is rendered and sent much later: an
# assignment charged in 40 days gets its reminder 39 days from now carrying a link that expired
# after COVERAGE_LINK_MAX_AGE_DAYS (30). The issue wants a working link in every contractor
# email. Expected: sign the link when the email is rendered/sent (or count from send_at).


def test_a_scheduled_reminder_carries_a_link_valid_when_it_is_sent(
    send, rt, drain, redis, sendgrid, clock
):
    import re

    from receiver.pipeline.tasks import send_notice

    now = int(clock.now)
    assert send.platform(assignment_created(charge_at=now + 40 * DAY), "msg_far").status_code == 202
    drain()
    [rec] = [
        r
        for k in redis.keys("notice:*")
        if (r := record(redis, k.decode().removeprefix("notice:")))["notice"]
        == "assignment_charge_reminder"
    ]
    send_at = float(rec["send_at"])
    assert send_at > now + 35 * DAY
    assert json.loads(rec["context"])["coverage_url"] is None  # not signed yet
    clock.now = send_at + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = sendgrid.accepted
    text = mail["body"]["content"][0]["value"]
    token = re.search(r"/coverage/(\S+)", text).group(1)
    try:
        read_token(SECRET_KEY, token, 30 * DAY, now=send_at + 2)
    except LinkExpired:
        pytest.fail("the reminder's coverage link is already expired when the email goes out")
