"""CreatorIQ's `creator.accepted` / `creator.updated` platform events: the sync check's findings
go to the rep once, and a creator who looked fine but never reached 1099Policy is reported
CREATORIQ_SYNC_WAIT_HOURS later unless they showed up first. Real Redis, RQ and SendGrid
stand-in; time moves on the test clock."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from receiver.creatoriq.checks import MESSAGES
from receiver.ingest.examples import example
from receiver.pipeline.processing import replay
from receiver.pipeline.tasks import send_notice
from tests.events import platform_event
from tests.records import at, records

REP = "campaigns@agency.example"
DAY = 86400


def creator_event(now: float, etype: str = "creator.accepted", **changes: Any) -> dict:
    """A creator the check finds nothing wrong with, accepted an hour before `now`; `changes`
    replace creator fields (None removes one)."""
    event = example(etype, "cn_1", int(now))  # send-test-event's sample creator
    creator = event["data"]["creator"]
    creator.update(id="ciq_1", email="Jordan.Rivera@example.com")
    creator.update(first_name="Jordan", last_name="Rivera")
    for key, value in changes.items():
        if value is None:
            creator.pop(key, None)
        else:
            creator[key] = value
    event["data"]["campaign"].update(id="camp_1", name="Spring glow launch")
    event["data"]["rep_email"] = REP
    return event


def mails(sendgrid, notice: str) -> list[dict[str, Any]]:
    return [m for m in sendgrid.accepted if m["body"]["categories"] == [notice]]


def text_of(mail: dict[str, Any]) -> str:
    return next(c["value"] for c in mail["body"]["content"] if c["type"] == "text/plain")


def blocked(now: float) -> dict:
    """Home state outside the US (so accepted too early), base pay typed with a dollar sign, no
    update after acceptance."""
    event = creator_event(now, base_pay="$4,500.00", profile_updated_at=int(now) - 7200)
    event["data"]["creator"]["home_address"]["state"] = "Ontario"
    return event


# --- creatoriq_sync_blocked_rep --------------------------------------------------------------


def test_problems_reach_the_rep_once_in_plain_words(send, rt, drain, sendgrid, redis, clock):
    clock.now = at(2026, 3, 2, 12)
    assert send.platform(blocked(clock.now), "msg_c1").status_code == 202
    drain()
    [mail] = mails(sendgrid, "creatoriq_sync_blocked_rep")
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == REP
    assert mail["body"]["subject"] == (
        "Jordan Rivera will not sync from CreatorIQ to 1099Policy: 4 things to fix"
    )
    text = text_of(mail)
    for code in (
        "home_state_not_us",
        "base_pay_not_numeric",
        "accepted_before_complete",  # accepted with the home state wrong
        "sync_not_triggered",
    ):
        assert MESSAGES[code] in text
    assert "Spring glow launch" in text and "creator ciq_1 · campaign camp_1" in text
    # Told again (a replay, a redelivery, another update with the same problems): no new email.
    assert replay(rt, "platform", "msg_c1") == "queued"
    send.platform(blocked(clock.now), "msg_c1_again")
    clock.now += 60
    send.platform(blocked(clock.now), "msg_c2")
    drain()
    assert len(records(redis, "creatoriq_sync_blocked_rep")) == 1
    assert len(mails(sendgrid, "creatoriq_sync_blocked_rep")) == 1
    # Base pay fixed, the rest not: a different set of problems is news.
    fixed = blocked(clock.now)
    fixed["data"]["creator"]["base_pay"] = "4500"
    send.platform(fixed, "msg_c3")
    drain()
    second = mails(sendgrid, "creatoriq_sync_blocked_rep")[1]
    assert "3 things to fix" in second["body"]["subject"]
    assert MESSAGES["base_pay_not_numeric"] not in text_of(second)


@pytest.fixture
def org_reps(config: dict[str, Any]) -> None:
    config["ORG_REP_EMAILS"] = "a@org.example,b@org.example"


def test_without_a_rep_email_the_org_reps_are_told(org_reps, send, rt, drain, sendgrid, clock):
    event = creator_event(clock.now, payment_amount=0)
    del event["data"]["rep_email"]
    send.platform(event, "msg_c1")
    drain()
    sent = mails(sendgrid, "creatoriq_sync_blocked_rep")
    assert sorted(m["body"]["personalizations"][0]["to"][0]["email"] for m in sent) == [
        "a@org.example",
        "b@org.example",
    ]
    assert MESSAGES["payment_amount_not_positive"] in text_of(sent[0])


def test_wrong_fields_inside_the_creator_are_findings_not_errors(
    send, rt, drain, sendgrid, redis, clock
):
    event = creator_event(clock.now, email=5, payment_amount="lots", accepted_at="yesterday")
    assert send.platform(event, "msg_c1").status_code == 202
    drain()
    assert redis.hget("event:platform:msg_c1", "status") == b"done"
    [mail] = mails(sendgrid, "creatoriq_sync_blocked_rep")
    text = text_of(mail)
    for code in ("email_invalid", "payment_amount_invalid", "accepted_at_invalid"):
        assert MESSAGES[code] in text
    assert "Creator ciq_1" not in mail["body"]["subject"]  # the names are there


@pytest.mark.parametrize(
    "data,detail",
    [
        ({"creator": "ciq_1", "campaign": {"id": "camp_1"}}, "data.creator is not an object"),
        ({"creator": {"id": "ciq_1"}}, "data.campaign is not an object"),
        ({"creator": {"email": "x@y.example"}, "campaign": {"id": "c"}}, "data.creator.id"),
        ({"creator": {"id": "ciq_1"}, "campaign": {"id": 7}}, "data.campaign.id"),
        (
            {"creator": {"id": "ciq_1"}, "campaign": {"id": "c"}, "rep_email": ["a@b.example"]},
            "data.rep_email is not a string",
        ),
    ],
)
def test_a_malformed_creator_event_is_a_400_naming_the_field(data, detail, send, redis):
    event = {"type": "creator.updated", "created": 1_700_000_000, "data": data}
    response = send.platform(event, "msg_bad")
    assert response.status_code == 400
    body = json.loads(response.get_data())
    assert body["error"] == "invalid_payload" and detail in body["detail"]
    assert not redis.exists("event:platform:msg_bad")


# --- creatoriq_sync_missing_rep --------------------------------------------------------------


def test_a_creator_who_never_reaches_1099policy_is_reported_after_the_wait(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    sent_at = clock.now
    send.platform(creator_event(clock.now), "msg_c1")
    drain()
    assert sendgrid.accepted == []  # nothing wrong: nothing to say yet
    [rec] = records(redis, "creatoriq_sync_missing_rep")
    assert rec["to_email"] == REP and float(rec["send_at"]) == sent_at + DAY
    # Another update without problems: the same wait, not a second alert.
    clock.now += 3600
    send.platform(creator_event(clock.now, etype="creator.updated"), "msg_c2")
    drain()
    assert len(records(redis, "creatoriq_sync_missing_rep")) == 1
    clock.now = sent_at + DAY - 60
    assert send_notice(rec["id"]) == "scheduled"
    clock.now = sent_at + DAY + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = mails(sendgrid, "creatoriq_sync_missing_rep")
    assert mail["body"]["subject"] == "Jordan Rivera has not reached 1099Policy from CreatorIQ"
    text = text_of(mail)
    assert "support@1099policy.com and copy your CreatorIQ rep" in text
    assert "Is the campaign start date set in the future?" in text
    assert "24 hours after we heard of it, 1099Policy has still not reported" in text
    assert replay(rt, "platform", "msg_c1") == "queued"
    drain()
    assert len(mails(sendgrid, "creatoriq_sync_missing_rep")) == 1


def application_with(email: str, now: float) -> dict:
    return {
        "id": "ev_app_1",
        "type": "application.created",
        "created": int(now),
        "data": {
            "id": "ias_1",
            "quote": "qt_1",
            "job": "jb_1",
            "contractor": {"id": "cn_9", "email": email, "first_name": "Jordan"},
        },
    }


@pytest.mark.parametrize("how", ["application", "contractor.updated"])
def test_no_missing_alert_when_the_creator_shows_up_first(
    how, send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    send.platform(creator_event(clock.now), "msg_c1")
    drain()
    clock.now += 3 * 3600
    email = "jordan.rivera@EXAMPLE.com "  # the same address, however it is written
    if how == "application":
        send.ten99(application_with(email, clock.now))
    else:
        person = {"id": "cn_9", "email": email, "first_name": "Jordan", "last_name": "Rivera"}
        send.platform(platform_event("contractor.updated", person, created=int(clock.now)), "c9")
    drain()
    [rec] = records(redis, "creatoriq_sync_missing_rep")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    [rec] = records(redis, "creatoriq_sync_missing_rep")
    assert rec["last_error"].startswith("synced:")
    assert sendgrid.accepted == []


def test_someone_elses_application_does_not_cancel_it(send, rt, drain, sendgrid, redis, clock):
    clock.now = at(2026, 3, 2, 12)
    send.platform(creator_event(clock.now), "msg_c1")
    send.ten99(application_with("someone.else@example.com", clock.now))
    drain()
    [rec] = records(redis, "creatoriq_sync_missing_rep")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "accepted"


def test_a_creator_not_yet_accepted_is_not_waited_for(send, rt, drain, sendgrid, redis, clock):
    event = creator_event(clock.now, etype="creator.updated", accepted_at=None)
    send.platform(copy.deepcopy(event), "msg_c1")
    drain()
    assert records(redis, "creatoriq_sync_missing_rep") == []
    assert records(redis, "creatoriq_sync_blocked_rep") == []
