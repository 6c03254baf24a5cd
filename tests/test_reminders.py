"""Reminders on time: scheduled ahead, held through quiet hours, dropped when moot.

Time is injected (`rt.clock`), never slept: the test moves the clock to when a reminder is due
and runs the send job RQ's scheduler would run then.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rq.registry import ScheduledJobRegistry

from receiver.notices.contacts import Contact
from receiver.notices.reminders import Guards, after_quiet_hours, send_time
from receiver.pipeline.processing import replay
from receiver.pipeline.sweeper import sweep
from receiver.pipeline.tasks import send_notice
from receiver.store.keys import notice as record_key
from tests.events import JOB, MAYA, assignment_created, invoice, platform_event
from tests.records import at, records

HNL = ZoneInfo("Pacific/Honolulu")

# --- pure timing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "local,expected",
    [
        ((2026, 3, 2, 22, 30), (2026, 3, 3, 8, 0)),
        ((2026, 3, 2, 21, 0), (2026, 3, 3, 8, 0)),
        ((2026, 3, 3, 7, 59), (2026, 3, 3, 8, 0)),
        ((2026, 3, 3, 0, 5), (2026, 3, 3, 8, 0)),
        ((2026, 3, 3, 8, 0), (2026, 3, 3, 8, 0)),
        ((2026, 3, 3, 20, 59), (2026, 3, 3, 20, 59)),
        ((2026, 3, 7, 23, 0), (2026, 3, 8, 8, 0)),  # the night clocks spring forward
    ],
)
def test_quiet_hours_wait_until_eight(local, expected):
    assert after_quiet_hours(at(*local), "America/New_York") == at(*expected)


def test_quiet_hours_use_the_recipients_zone_and_default_to_eastern():
    ts = at(2026, 3, 2, 23, 0)  # 23:00 in New York is 20:00 in Los Angeles
    assert after_quiet_hours(ts, "America/Los_Angeles") == ts
    assert after_quiet_hours(ts, None) == at(2026, 3, 3, 8, 0)
    assert after_quiet_hours(ts, "Not/AZone") == at(2026, 3, 3, 8, 0)


def test_send_time_never_waits_past_what_it_reminds_about():
    now = at(2026, 3, 2, 12)
    due = at(2026, 3, 2, 23)
    assert send_time(due, at(2026, 3, 4, 12), "America/New_York", now) == at(2026, 3, 3, 8)
    assert send_time(due, at(2026, 3, 3, 1), "America/New_York", now) == due
    assert send_time(None, None, "America/New_York", now) == now


# --- scheduled reminders end to end ---------------------------------------------------------


def scheduled_at(rt):
    registry = ScheduledJobRegistry(queue=rt.notice_queue)
    return {
        job_id: registry.get_scheduled_time(job_id).timestamp() for job_id in registry.get_job_ids()
    }


def card_invoice(premium, created, charge_at, **extra):
    event = invoice("invoice.created", premium, created, **extra)
    event["data"]["charge_at"] = int(charge_at)
    return event


def test_payment_reminder_goes_out_lead_hours_before_a_distant_charge(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    send.platform(card_invoice(4325, int(now), now + 3 * 86400), "msg_i1")
    drain()
    assert sendgrid.accepted == []
    [rec] = records(redis, "payment_reminder")
    due = now + 2 * 86400  # MAYA lives where it is early afternoon now: no quiet hours
    assert (rec["state"], float(rec["send_at"])) == ("pending", due)
    assert due in scheduled_at(rt).values()  # RQ's scheduler holds it, in Redis
    clock.now = due - 3600
    assert send_notice(rec["id"]) == "scheduled"  # too early: re-scheduled, not sent
    clock.now = due + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = sendgrid.accepted
    assert mail["body"]["categories"] == ["payment_reminder"]
    assert "$43.25" in mail["body"]["subject"]


def test_reminder_not_sent_when_the_invoice_was_paid_meanwhile(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    send.platform(card_invoice(4325, int(now), now + 3 * 86400), "msg_i1")
    send.ten99(
        {
            "id": "ev_paid",
            "type": "invoice.charge_card_succeeded",
            "created": int(now),
            "data": {"id": "in_1", "premium_due": 4325, "contractor": MAYA},
        }
    )
    drain()
    [rec] = records(redis, "payment_reminder")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    [rec] = records(redis, "payment_reminder")
    assert rec["state"] == "cancelled" and "paid" in rec["last_error"]
    assert [m["body"]["categories"] for m in sendgrid.accepted] == [["payment_confirmation"]]


def test_repriced_invoice_cancels_the_old_reminder_and_schedules_an_updated_one(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    send.platform(card_invoice(4000, int(now), now + 3 * 86400), "msg_i1")
    updated = card_invoice(5000, int(now) + 60, now + 3 * 86400)
    updated["type"] = "invoice.updated"
    send.platform(updated, "msg_i2")
    drain()
    reminders = {r["cause"]: r for r in records(redis, "payment_reminder")}
    # The new bill's reminder, and the updated one of the re-price (before the charge: no
    # increase notice to the contractor), both due at the usual time before the charge.
    assert set(reminders) == {"invoice:in_1@4000", "reprice:in_1@msg_i2"}
    assert {float(r["send_at"]) for r in reminders.values()} == {now + 2 * 86400}
    clock.now = now + 2 * 86400 + 1
    assert send_notice(reminders["invoice:in_1@4000"]["id"]) == "cancelled"
    assert send_notice(reminders["reprice:in_1@msg_i2"]["id"]) == "accepted"
    sent = [m for m in sendgrid.accepted if m["body"]["categories"] == ["payment_reminder"]]
    assert len(sent) == 1 and "is now $50.00, was $40.00" in sent[0]["body"]["subject"]


def test_assignment_reminder_dropped_when_the_assignment_is_cancelled(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    send.platform(assignment_created(1200, charge_at=int(now) + 3 * 86400), "msg_a1")
    send.ten99(
        {
            "id": "ev_cancel",
            "type": "assignment.cancelled",
            "created": int(now),
            "data": {"id": "an_1", "job": JOB["id"], "cancelled": True},
        }
    )
    drain()
    [rec] = records(redis, "assignment_charge_reminder")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    assert sendgrid.accepted == []


def test_reminder_is_not_sent_after_the_charge_it_announces(
    send, rt, drain, sendgrid, redis, clock
):
    # A reminder whose job runs past the charge it announces (backlog, outage, a late
    # release) is cancelled, not sent.
    now = clock.now
    send.platform(card_invoice(4325, int(now), now + 3 * 86400), "msg_i1")
    drain()
    [rec] = records(redis, "payment_reminder")
    clock.now = now + 3 * 86400 + 3600  # the job finally runs an hour after the charge
    assert send_notice(rec["id"]) == "cancelled"
    assert sendgrid.accepted == []


def test_stale_moot_check_does_not_overwrite_a_concurrent_send(rt, redis, sendgrid):
    # A send job that finds its reminder moot cancels it only if still `pending`, atomically:
    # never over another job's `accepted` (or `sending`) for the same record.
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


def test_reminder_due_at_night_waits_until_eight_in_the_recipients_zone(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = now = at(2026, 3, 2, 12)
    update = platform_event("contractor.updated", {**MAYA, "timezone": "America/New_York"})
    send.platform(update, "msg_c1")
    # The charge is at 23:00 tomorrow: the 24-hour reminder would land at 23:00 tonight.
    send.platform(card_invoice(4325, int(now), at(2026, 3, 3, 23), contractor="cn_1"), "msg_i1")
    drain()
    [rec] = records(redis, "payment_reminder")
    assert float(rec["send_at"]) == at(2026, 3, 3, 8)


def test_known_time_zone_is_used_when_the_event_embeds_a_contractor_without_one(
    send, rt, drain, sendgrid, redis, clock
):
    # An embedded contractor carries no zone: the one stored from contractor.updated sets
    # the quiet hours (05:00 in Honolulu waits until 08:00 there).
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
    # A reminder created before its contact was known gets its send time again, in the
    # recipient's zone, when contractor.updated releases it.
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


def test_remit_bill_reminder_to_the_rep_seven_days_before_due(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = now = at(2026, 3, 2, 12)
    send.platform(invoice("invoice.created", 9900, int(now), withhold=True), "msg_r1")
    drain()
    [rec] = records(redis, "remit_bill_reminder_rep")
    due = now + 30 * 86400
    assert float(rec["send_at"]) == after_quiet_hours(due - 7 * 86400, None)
    assert rec["to_email"] == "rep@agency.example"
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = sendgrid.accepted
    assert "$99.00" in mail["body"]["subject"]


@pytest.fixture
def short_retention(config):
    config["EVENT_RETENTION_DAYS"] = "14"
    return config


def test_scheduled_reminder_record_outlives_its_send_time(
    short_retention, send, rt, drain, sendgrid, redis, clock
):
    # A notice record lives at least until it is sent, however short EVENT_RETENTION_DAYS:
    # a remit reminder due in 23 days survives a 14-day retention.
    clock.now = now = at(2026, 3, 2, 12)
    send.platform(invoice("invoice.created", 9900, int(now), withhold=True), "msg_r1")
    drain()
    [rec] = records(redis, "remit_bill_reminder_rep")
    ttl = redis.ttl(record_key(rec["id"]))
    assert now + ttl > float(rec["send_at"]), (ttl / 86400, (float(rec["send_at"]) - now) / 86400)


def test_a_lost_scheduled_reminder_is_sent_by_the_sweeper_when_due(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    send.platform(card_invoice(4325, int(now), now + 3 * 86400), "msg_i1")
    drain()
    [rec] = records(redis, "payment_reminder")
    registry = ScheduledJobRegistry(queue=rt.notice_queue)
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)  # e.g. a Redis failover lost the schedule
    assert sweep(rt, now=now + 3600) == (0, 0)  # not due yet: left alone
    redis.delete("sweeper:lock")
    due = float(rec["send_at"])
    clock.now = due + rt.cfg.SWEEP_AFTER_SECONDS + 1
    assert sweep(rt, now=clock.now) == (0, 1)
    drain()
    assert [m["body"]["categories"] for m in sendgrid.accepted] == [["payment_reminder"]]


def test_scheduled_reminder_goes_to_the_address_known_when_it_is_sent(
    send, rt, drain, sendgrid, redis, clock
):
    now = clock.now
    send.platform(card_invoice(4325, int(now), now + 3 * 86400), "msg_i1")
    drain()
    [rec] = records(redis, "payment_reminder")
    assert rec["to_email"] == "maya@example.com"
    moved = platform_event(
        "contractor.updated", {**MAYA, "email": "maya@new.example"}, created=int(now) + 60
    )
    send.platform(moved, "msg_c9")
    drain()
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = sendgrid.accepted
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "maya@new.example"
    assert records(redis, "payment_reminder")[0]["to_email"] == "maya@new.example"


# --- the reps' coverage-gap alert (coverage_missing_rep) ------------------------------------


def starting_assignment(effective_date: float, **extra):
    return platform_event(
        "assignment.created",
        {
            "id": "an_1",
            "contractor": MAYA,
            "job": JOB,
            "premium_due": 1200,
            "withhold_premium": False,
            "charge_at": int(effective_date),
            "effective_date": int(effective_date),
            **extra,
        },
    )


def alerts(sendgrid):
    return [m for m in sendgrid.accepted if m["body"]["categories"] == ["coverage_missing_rep"]]


def test_rep_is_alerted_once_when_an_assignment_starting_tomorrow_is_not_covered(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    starts = at(2026, 3, 3, 12)  # tomorrow noon, New York
    send.platform(starting_assignment(starts), "msg_a1")
    drain()
    [rec] = records(redis, "coverage_missing_rep")
    assert rec["cause"] == "coverage_missing:an_1" and rec["to_email"] == "rep@agency.example"
    # Due 12 h before the start (00:00), held to 08:00 by the rep's (Eastern) quiet hours.
    assert float(rec["send_at"]) == at(2026, 3, 3, 8)
    clock.now = at(2026, 3, 3, 7)
    assert send_notice(rec["id"]) == "scheduled"
    clock.now = at(2026, 3, 3, 8, 1)
    assert send_notice(rec["id"]) == "accepted"
    [mail] = alerts(sendgrid)
    subject = mail["body"]["subject"]
    assert subject == (
        "Maya Thompson starts Deck repair on Tuesday, March 3, 2026 at 12:00 PM EST"
        " and is not covered yet"
    )
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "rep@agency.example"
    # The same assignment again (a replay, a redelivery under a new id): still one alert.
    assert replay(rt, "platform", "msg_a1") == "queued"
    send.platform(starting_assignment(starts), "msg_a1_again")
    drain()
    assert len(records(redis, "coverage_missing_rep")) == 1
    assert send_notice(rec["id"]) in ("accepted", "sent")
    assert len(alerts(sendgrid)) == 1


def test_no_coverage_alert_when_the_assignment_became_active_first(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    starts = at(2026, 3, 3, 12)
    send.platform(starting_assignment(starts), "msg_a1")
    send.ten99(
        {
            "id": "ev_active",
            "type": "assignment.active",
            "created": int(clock.now),
            "data": {"id": "an_1", "contractor": MAYA["id"], "job": JOB["id"], "bind": True},
        }
    )
    drain()
    [rec] = records(redis, "coverage_missing_rep")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    [rec] = records(redis, "coverage_missing_rep")
    assert rec["state"] == "cancelled" and "active" in rec["last_error"]
    assert alerts(sendgrid) == []


def test_no_coverage_alert_when_the_assignment_was_cancelled(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    send.platform(starting_assignment(at(2026, 3, 3, 12)), "msg_a1")
    send.ten99(
        {
            "id": "ev_cancel",
            "type": "assignment.cancelled",
            "created": int(clock.now),
            "data": {"id": "an_1", "job": JOB["id"], "cancelled": True},
        }
    )
    drain()
    [rec] = records(redis, "coverage_missing_rep")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    assert alerts(sendgrid) == []


# --- the reps' alert of a failed charge still unpaid (charge_unrecovered_rep) -----------------


def charge_failed(event_id: str, created: float, invoice_id: str = "in_1") -> dict:
    return {
        "id": event_id,
        "type": "invoice.charge_card_failed",
        "created": int(created),
        "data": {
            "id": invoice_id,
            "object": "invoice",
            "premium_due": 4325,
            "job": JOB["id"],
            "contractor": MAYA,
            "failure_message": "Your card was declined.",
        },
    }


def lapse_alerts(sendgrid):
    return [m for m in sendgrid.accepted if m["body"]["categories"] == ["charge_unrecovered_rep"]]


def fail_a_charge(send, drain, clock):
    """The platform's bill (which names the job's rep), then 1099Policy's failed charge."""
    send.platform(card_invoice(4325, int(clock.now), clock.now + 3600), "msg_bill")
    assert send.ten99(charge_failed("ev_failed_1", clock.now)).status_code == 202
    drain()


def test_rep_is_told_once_that_a_charge_still_unpaid_48_hours_later_will_lapse(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    failed_at = clock.now
    fail_a_charge(send, drain, clock)
    [rec] = records(redis, "charge_unrecovered_rep")
    assert rec["cause"] == "charge_unrecovered:in_1" and rec["to_email"] == "rep@agency.example"
    assert float(rec["send_at"]) == failed_at + 48 * 3600
    # A retried charge that fails again a day later is the same unpaid bill: no second alert,
    # and the alert still counts from the first failure.
    clock.now = at(2026, 3, 3, 12)
    send.ten99(charge_failed("ev_failed_2", clock.now))
    drain()
    [rec] = records(redis, "charge_unrecovered_rep")
    assert float(rec["send_at"]) == failed_at + 48 * 3600
    clock.now = failed_at + 47 * 3600
    assert send_notice(rec["id"]) == "scheduled"
    assert lapse_alerts(sendgrid) == []
    clock.now = failed_at + 48 * 3600 + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = lapse_alerts(sendgrid)
    assert mail["body"]["subject"] == (
        "Maya Thompson's coverage on Deck repair will lapse: the premium of $43.25 is still unpaid"
    )
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "rep@agency.example"
    text = next(c["value"] for c in mail["body"]["content"] if c["type"] == "text/plain")
    assert "failed on Monday, March 2, 2026 at 12:00 PM EST" in text
    assert "Your card was declined." in text
    # Replayed and redelivered under a new id: still the one alert.
    assert replay(rt, "1099policy", "ev_failed_1") == "queued"
    send.ten99({**charge_failed("ev_failed_1_again", failed_at)})
    drain()
    assert len(records(redis, "charge_unrecovered_rep")) == 1
    assert send_notice(rec["id"]) == "accepted"
    assert len(lapse_alerts(sendgrid)) == 1


def test_no_lapse_alert_when_the_charge_succeeds_within_the_recovery_window(
    send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    fail_a_charge(send, drain, clock)
    clock.now = at(2026, 3, 3, 9)
    paid = {
        "id": "ev_paid_in_1",
        "type": "invoice.charge_card_succeeded",
        "created": int(clock.now),
        "data": {"id": "in_1", "premium_due": 4325, "job": JOB["id"], "contractor": MAYA},
    }
    send.ten99(paid)
    drain()
    [rec] = records(redis, "charge_unrecovered_rep")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    [rec] = records(redis, "charge_unrecovered_rep")
    assert rec["last_error"] == "settled: the invoice was paid"
    assert lapse_alerts(sendgrid) == []


@pytest.mark.parametrize(
    "settling",
    [
        lambda now: platform_event(
            "invoice.updated",
            {"id": "in_1", "job": JOB, "premium_due": 4325, "status": "void"},
            created=int(now),
        ),
        lambda now: {
            "id": "ev_cancel",
            "type": "assignment.cancelled",
            "created": int(now),
            "data": {"id": "an_1", "contractor": MAYA["id"], "job": JOB["id"], "cancelled": True},
        },
    ],
    ids=["invoice voided", "the contractor's assignment on the job cancelled"],
)
def test_no_lapse_alert_when_the_bill_is_voided_or_the_work_cancelled(
    settling, send, rt, drain, sendgrid, redis, clock
):
    clock.now = at(2026, 3, 2, 12)
    fail_a_charge(send, drain, clock)
    clock.now = at(2026, 3, 3, 9)
    event = settling(clock.now)
    if "id" in event:
        send.ten99(event)
    else:
        send.platform(event, "msg_settle")
    drain()
    [rec] = records(redis, "charge_unrecovered_rep")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "cancelled"
    assert lapse_alerts(sendgrid) == []


# --- what a cancellation settles: one contractor's assignment, never the shared job ----------

LEO = {**MAYA, "id": "cn_2", "email": "leo@example.com", "first_name": "Leo", "last_name": "Park"}


def cancelled(assignment_id: str, contractor: dict, created: float) -> dict:
    """1099Policy's `assignment.cancelled`: the assignment object names its contractor."""
    return {
        "id": f"ev_cancel_{assignment_id}",
        "type": "assignment.cancelled",
        "created": int(created),
        "data": {
            "id": assignment_id,
            "contractor": contractor["id"],
            "job": JOB["id"],
            "cancelled": True,
        },
    }


def test_one_contractors_cancellation_settles_only_their_notices_on_a_shared_job(
    send, rt, drain, sendgrid, redis, clock
):
    # Maya and Leo both work on the job: each has an assignment (its charge reminder and the
    # reps' coverage alert) and a bill (its payment reminder). Leo's assignment is cancelled.
    clock.now = at(2026, 3, 2, 12)
    moment = int(at(2026, 3, 4, 12))
    for who, aid, inv in ((MAYA, "an_1", "in_1"), (LEO, "an_2", "in_2")):
        send.platform(starting_assignment(moment, id=aid, contractor=who), f"msg_{aid}")
        bill = card_invoice(4325, int(clock.now), moment, invoice_id=inv, contractor=who)
        send.platform(bill, f"msg_{inv}")
    send.ten99(cancelled("an_2", LEO, clock.now + 60))
    drain()
    pending = [
        rec
        for notice in ("assignment_charge_reminder", "payment_reminder", "coverage_missing_rep")
        for rec in records(redis, notice)
    ]
    assert len(pending) == 6
    clock.now = max(float(rec["send_at"]) for rec in pending) + 1
    outcome = {(rec["notice"], rec["cause"]): send_notice(rec["id"]) for rec in pending}
    assert outcome == {
        ("assignment_charge_reminder", "assignment:an_1"): "accepted",
        ("payment_reminder", "invoice:in_1@4325"): "accepted",
        ("coverage_missing_rep", "coverage_missing:an_1"): "accepted",
        ("assignment_charge_reminder", "assignment:an_2"): "cancelled",
        ("payment_reminder", "invoice:in_2@4325"): "cancelled",
        ("coverage_missing_rep", "coverage_missing:an_2"): "cancelled",
    }
    [leos_bill] = [
        r for r in records(redis, "payment_reminder") if r["cause"].startswith("invoice:in_2")
    ]
    assert (
        leos_bill["last_error"] == "cancelled: the contractor's assignment on the job was cancelled"
    )
    to = {m["body"]["personalizations"][0]["to"][0]["email"] for m in sendgrid.accepted}
    assert "leo@example.com" not in to and "maya@example.com" in to


def test_a_bill_made_after_the_cancellation_is_reminded_of(send, rt, drain, sendgrid, redis, clock):
    # Leo's assignment on the job is cancelled, then he is assigned to it again and billed:
    # the earlier cancellation does not settle the new bill.
    clock.now = at(2026, 3, 2, 12)
    send.ten99(cancelled("an_2", LEO, clock.now))
    drain()
    clock.now += 3600
    bill = card_invoice(4325, int(clock.now), at(2026, 3, 4, 12), invoice_id="in_3", contractor=LEO)
    send.platform(bill, "msg_in_3")
    drain()
    [rec] = records(redis, "payment_reminder")
    clock.now = float(rec["send_at"]) + 1
    assert send_notice(rec["id"]) == "accepted"
    [mail] = sendgrid.accepted
    assert mail["body"]["personalizations"][0]["to"][0]["email"] == "leo@example.com"
