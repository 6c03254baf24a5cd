"""Which notices an event causes (receiver/notices/rules.py): every row of docs/notifications.md."""

from __future__ import annotations

from dataclasses import replace

import pytest

from receiver.ingest.envelopes import Event
from receiver.notices.bills import burst_outcome
from receiver.notices.plans import DAY, Burst, Decision, Facts, Premium, Timing
from receiver.notices.rules import decide

CARD = Facts(withhold=False)
REMIT = Facts(withhold=True)


def ev(etype, obj, created=1_700_000_000, event_id="ev_1", source=None):
    if source is None:
        source = (
            "platform"
            if etype.split(".")[0] in ("assignment", "invoice", "contractor")
            and etype
            not in (
                "assignment.active",
                "invoice.charge_card_succeeded",
                "invoice.charge_card_failed",
            )
            else "1099policy"
        )
    return Event(source, event_id, etype, created, obj)


def notices(decision: Decision):
    return sorted((p.notice, p.audience, p.cause) for p in decision.plans)


# --- payment_confirmation ------------------------------------------------------------------


def test_charge_succeeded_confirms_the_charge():
    d = decide(ev("invoice.charge_card_succeeded", {"id": "in_1", "premium_due": 4325}), CARD)
    assert notices(d) == [("payment_confirmation", "contractor", "charge:in_1")]
    assert d.plans[0].fields == {
        "invoice_id": "in_1",
        "amount_cents": 4325,
        "paid_at": 1_700_000_000,
        "payment_method": "card",
    }


def test_charge_succeeded_is_card_even_if_settings_say_remit():
    d = decide(ev("invoice.charge_card_succeeded", {"id": "in_1", "premium_due": 100}), REMIT)
    assert notices(d) == [("payment_confirmation", "contractor", "charge:in_1")]


@pytest.mark.parametrize("etype", ["assignment.active", "application.complete"])
def test_coverage_event_naming_the_invoice_shares_the_charge_cause(etype):
    d = decide(ev(etype, {"id": "an_1", "invoice": "in_1"}), Facts(charge_amount=4325))
    assert notices(d) == [("payment_confirmation", "contractor", "charge:in_1")]
    d = decide(ev(etype, {"id": "an_1", "invoice": {"id": "in_1", "premium_due": 99}}), CARD)
    assert d.plans[0].fields["amount_cents"] == 99


@pytest.mark.parametrize(
    "obj,facts",
    [
        ({"id": "an_1"}, Facts(charge_amount=4325)),  # names no invoice
        ({"id": "an_1", "invoice": "in_1"}, Facts(withhold=True, charge_amount=4325)),  # remit
        ({"id": "an_1", "invoice": "in_1"}, CARD),  # amount unknown: the charge event confirms
    ],
)
def test_coverage_event_without_a_confirmable_charge_sends_nothing(obj, facts):
    assert decide(ev("assignment.active", obj), facts).plans == ()


# --- assignment_charge_failure -------------------------------------------------------------


def test_charge_failed_warns_the_contractor():
    d = decide(
        ev(
            "invoice.charge_card_failed",
            {"id": "in_1", "premium_due": 500, "failure_message": "card declined"},
        ),
        CARD,
    )
    assert notices(d) == [
        ("assignment_charge_failure", "contractor", "charge_failed:ev_1"),
        ("charge_unrecovered_rep", "rep", "charge_unrecovered:in_1"),
    ]
    assert d.plans[0].fields["failure_reason"] == "card declined"
    assert d.plans[0].fields["amount_cents"] == 500


@pytest.mark.parametrize("premium", [None, -500, 0], ids=["unknown", "negative", "zero"])
def test_a_failed_charge_of_unknown_or_impossible_amount_names_none(premium):
    obj = {"id": "in_1", "failure_message": "card declined"}
    if premium is not None:
        obj["premium_due"] = premium
    d = decide(ev("invoice.charge_card_failed", obj), CARD)
    assert [p.fields["amount_cents"] for p in d.plans] == [None, None]


def test_a_negative_premium_is_no_amount_to_remind_of_or_confirm():
    now = 1_700_000_000
    assignment = {"id": "an_1", "premium_due": -500, "charge_at": now + 2 * DAY}
    assert decide(ev("assignment.created", assignment, created=now), CARD, now=now).plans == ()
    bill = {"id": "in_1", "premium_due": -500, "charge_at": now + 2 * DAY}
    assert decide(ev("invoice.created", bill, created=now), CARD, now=now) == Decision()
    paid = {"id": "in_1", "premium_due": -500}
    assert decide(ev("invoice.charge_card_succeeded", paid), CARD).plans == ()


# --- charge_unrecovered_rep ------------------------------------------------------------------


def test_failed_charge_plans_the_reps_lapse_alert_recovery_hours_later():
    now = 1_700_000_000
    obj = {
        "id": "in_1",
        "job": "jb_1",
        "contractor": "cn_1",
        "assignment": "an_1",
        "premium_due": 500,
    }
    d = decide(ev("invoice.charge_card_failed", obj, created=now), CARD, now=now)
    alert = d.plans[1]
    assert (alert.notice, alert.cause, alert.audience) == (
        "charge_unrecovered_rep",
        "charge_unrecovered:in_1",
        "rep",
    )
    assert alert.remind_at == now + 2 * DAY  # CHARGE_RECOVERY_HOURS defaults to 48
    assert alert.deadline is None
    # Settled by the assignment's cancellation, or by the contractor's on the job since the
    # failure; never by the job's alone (other contractors share it).
    assert alert.guard == {
        "invoice": "in_1",
        "assignment": "an_1",
        "job": "jb_1",
        "contractor": "cn_1",
        "since": now,
    }
    assert alert.fields == {
        "invoice_id": "in_1",
        "amount_cents": 500,
        "failed_at": now,
        "failure_reason": None,
    }
    later = decide(
        ev("invoice.charge_card_failed", obj, created=now),
        CARD,
        now=now,
        timing=Timing(charge_recovery=3600),
    )
    assert later.plans[1].remind_at == now + 3600


def test_lapse_alert_is_one_per_invoice_and_due_now_when_the_failure_is_old():
    now = 1_700_000_000
    first = decide(ev("invoice.charge_card_failed", {"id": "in_1"}, created=now - 3 * DAY), CARD)
    again = decide(
        ev("invoice.charge_card_failed", {"id": "in_1"}, created=now, event_id="ev_2"),
        CARD,
        now=now,
    )
    assert first.plans[1].cause == again.plans[1].cause == "charge_unrecovered:in_1"
    late = decide(
        ev("invoice.charge_card_failed", {"id": "in_1"}, created=now - 3 * DAY), CARD, now=now
    )
    assert late.plans[1].remind_at is None  # 48 h have passed already: due now


def test_failed_charge_without_an_invoice_id_plans_no_lapse_alert():
    d = decide(ev("invoice.charge_card_failed", {"premium_due": 500}), CARD)
    assert notices(d) == [("assignment_charge_failure", "contractor", "charge_failed:ev_1")]


# --- assignment_charge_reminder ------------------------------------------------------------


def test_assignment_created_card_payer_gets_reminder_with_charge_time():
    obj = {"id": "an_1", "premium_due": 1200, "charge_at": 1_700_086_400}
    d = decide(ev("assignment.created", obj), CARD)
    assert notices(d) == [("assignment_charge_reminder", "contractor", "assignment:an_1")]
    assert d.plans[0].fields == {
        "assignment_id": "an_1",
        "amount_cents": 1200,
        "charge_at": 1_700_086_400,
    }


def test_assignment_created_without_charge_at_defaults_to_24h_later():
    d = decide(ev("assignment.created", {"id": "an_1", "premium_due": 1200}), CARD)
    assert d.plans[0].fields["charge_at"] == 1_700_000_000 + 86400


@pytest.mark.parametrize(
    "obj,facts",
    [
        ({"id": "an_1", "premium_due": 1200}, REMIT),
        ({"id": "an_1", "premium_due": 1200, "bind": False}, CARD),
        ({"id": "an_1"}, CARD),
    ],
)
def test_assignment_created_no_reminder(obj, facts):
    assert decide(ev("assignment.created", obj), facts).plans == ()


# --- invoices: payment_reminder and the premium ledger (per invoice) -----------------------

NOW = 1_700_000_000  # the events below are decided as they arrive
CHARGE_AT = 1_700_050_000


def inv(premium, invoice_id="in_1", **extra):
    return {"id": invoice_id, "premium_due": premium, "charge_at": CHARGE_AT, **extra}


def ledger(cents, created=1_699_000_000, event_id="ev_0", previous=None, **bursts):
    return Premium(cents, created, event_id, "in_1", previous, **bursts)


def reprice(premium, facts, now=NOW, event_id="ev_1", timing=None, **extra):
    return decide(
        ev("invoice.updated", inv(premium, **extra), event_id=event_id),
        facts,
        now=now,
        timing=timing,
    )


def plan(decision, notice):
    [found] = [p for p in decision.plans if p.notice == notice]
    return found


def test_first_invoice_without_history_starts_ledger_and_reminds_card_payer():
    d = decide(ev("invoice.created", inv(4325)), CARD)
    assert notices(d) == [("payment_reminder", "contractor", "invoice:in_1@4325")]
    assert d.ledger == Premium(4325, 1_700_000_000, "ev_1", "in_1", None)
    assert d.plans[0].fields["charge_at"] == 1_700_050_000
    assert d.plans[0].fields["previous_amount_cents"] is None


def test_first_invoice_without_history_remit_starts_ledger_and_schedules_rep_bill_reminder():
    d = decide(ev("invoice.created", inv(4325)), REMIT, now=1_700_000_000)
    assert notices(d) == [("remit_bill_reminder_rep", "rep", "remit_bill:in_1@4325")]
    assert d.ledger is not None and d.ledger.cents == 4325
    due = 1_700_000_000 + 30 * 86400
    plan = d.plans[0]
    assert plan.fields["due_at"] == due and plan.deadline == due
    assert plan.remind_at == due - 7 * 86400
    assert plan.guard == {"invoice": "in_1", "premium": 4325}


def test_a_new_invoice_of_the_same_job_is_a_new_bill_not_a_change():
    # The ledger is per invoice: in_2 has no entry, whatever in_1 of the job was billed at
    # (and the assignment's premium is not compared either: it is another charge).
    d = decide(ev("invoice.created", inv(9000, invoice_id="in_2", job="jb_1")), CARD, now=NOW)
    assert notices(d) == [("payment_reminder", "contractor", "invoice:in_2@9000")]
    assert d.ledger == Premium(9000, NOW, "ev_1", "in_2", None)


def test_an_invoice_without_an_id_sends_nothing():
    assert decide(ev("invoice.created", {"premium_due": 100}), CARD) == Decision()


def test_reprice_before_the_charge_card_payer_gets_an_updated_reminder_not_a_change_notice():
    d = reprice(5500, Facts(ledger=ledger(5000)))
    cause = "reprice:in_1@ev_1"
    assert notices(d) == [
        ("payment_reminder", "contractor", cause),
        ("premium_increase_rep", "rep", cause),
    ]
    assert d.ledger.burst == Burst("ev_1", 5000, NOW + 300, charged=False)
    reminder = plan(d, "payment_reminder")
    assert reminder.fields == {
        "invoice_id": "in_1",
        "amount_cents": 5500,
        "previous_amount_cents": 5000,
        "charge_at": CHARGE_AT,
        "payment_method": "card",
    }
    # Due when the burst ends (the charge is within the reminder lead), guarded by the burst.
    assert (reminder.remind_at, reminder.deadline) == (NOW + 300, CHARGE_AT)
    assert reminder.guard == {"invoice": "in_1", "burst": "ev_1"}
    rep = plan(d, "premium_increase_rep")
    assert rep.fields == {
        "invoice_id": "in_1",
        "old_premium_cents": 5000,
        "new_premium_cents": 5500,
        "difference_cents": 500,
        "payment_method": "card",
        "charge_at": CHARGE_AT,
        "charged": False,
    }
    assert rep.remind_at == NOW + 300
    assert rep.guard == {"invoice": "in_1", "burst": "ev_1", "direction": "increase"}


def test_reprice_before_a_distant_charge_reminds_at_the_usual_time():
    far = NOW + 3 * 86400
    d = reprice(4500, Facts(ledger=ledger(5000)), charge_at=far)
    assert plan(d, "payment_reminder").remind_at == far - 86400
    assert plan(d, "premium_decrease_rep").remind_at == NOW + 300


def test_reprice_before_payment_remit_rep_only_with_an_updated_bill_reminder():
    d = reprice(4500, Facts(withhold=True, ledger=ledger(5000)))
    cause = "reprice:in_1@ev_1"
    assert notices(d) == [
        ("premium_decrease_rep", "rep", cause),
        ("remit_bill_reminder_rep", "rep", cause),
    ]
    due = NOW + 30 * 86400
    rep = plan(d, "premium_decrease_rep")
    assert rep.fields["charged"] is False and rep.fields["payment_method"] == "remit"
    assert rep.fields["charge_at"] == due  # a remitted bill's due date
    bill = plan(d, "remit_bill_reminder_rep")
    assert bill.fields == {
        "invoice_id": "in_1",
        "amount_cents": 4500,
        "previous_amount_cents": 5000,
        "due_at": due,
    }
    assert (bill.remind_at, bill.deadline) == (due - 7 * 86400, due)


def test_reprice_of_a_remitted_bill_due_soon_the_change_notice_is_the_reminder():
    d = reprice(
        4500, Facts(withhold=True, ledger=ledger(5000)), timing=Timing(remit_before=31 * DAY)
    )
    assert notices(d) == [("premium_decrease_rep", "rep", "reprice:in_1@ev_1")]


@pytest.mark.parametrize(
    "facts,extra",
    [
        (Facts(paid=True, ledger=ledger(5000)), {}),  # a settlement: charged or paid
        (Facts(ledger=ledger(5000)), {"status": "paid"}),  # the invoice object says so
    ],
)
def test_reprice_after_the_charge_increase_card_payer_contractor_and_rep(facts, extra):
    d = reprice(6000, facts, **extra)
    cause = "reprice:in_1@ev_1"
    assert notices(d) == [
        ("premium_increase_contractor", "contractor", cause),
        ("premium_increase_rep", "rep", cause),
    ]
    contractor = plan(d, "premium_increase_contractor")
    assert contractor.fields == {
        "invoice_id": "in_1",
        "old_premium_cents": 5000,
        "new_premium_cents": 6000,
        "difference_cents": 1000,
        "payment_method": "card",
        "charge_at": CHARGE_AT,  # the additional amount is charged when the object says
    }
    assert plan(d, "premium_increase_rep").fields["charged"] is True
    assert d.ledger.burst == Burst("ev_1", 5000, NOW + 300, charged=True)


def test_reprice_after_the_charge_the_difference_is_charged_a_day_later_by_default():
    d = reprice(6000, Facts(paid=True, ledger=ledger(5000)), charge_at=NOW - 3600)
    assert plan(d, "premium_increase_contractor").fields["charge_at"] == NOW + DAY


def test_reprice_after_the_charge_decrease_card_payer_refund():
    d = reprice(4000, Facts(paid=True, ledger=ledger(5000)))
    assert notices(d) == [
        ("premium_decrease_contractor", "contractor", "reprice:in_1@ev_1"),
        ("premium_decrease_rep", "rep", "reprice:in_1@ev_1"),
    ]
    assert plan(d, "premium_decrease_contractor").fields["difference_cents"] == 1000


@pytest.mark.parametrize("premium,direction", [(6000, "increase"), (4000, "decrease")])
def test_reprice_after_payment_remit_rep_only(premium, direction):
    d = reprice(premium, Facts(withhold=True, paid=True, ledger=ledger(5000)))
    assert notices(d) == [(f"premium_{direction}_rep", "rep", "reprice:in_1@ev_1")]
    fields = d.plans[0].fields
    assert fields["charged"] is True and fields["payment_method"] == "remit"
    assert fields["charge_at"] is None  # paid: no money moves on a date we know


def test_equal_premium_sends_nothing():
    assert reprice(5000, Facts(withhold=True, ledger=ledger(5000))).plans == ()
    d = reprice(5000, Facts(ledger=ledger(5000)))
    assert d.plans == () and d.ledger.cents == 5000 and d.ledger.previous == 5000


OPEN = Burst("ev_0", 5000, NOW + 200, charged=False)


def test_a_reprice_within_the_window_joins_the_burst():
    d = reprice(5500, Facts(ledger=ledger(6000, burst=OPEN)), now=NOW + 10)
    assert d.ledger.burst == OPEN and d.ledger.previous == 6000
    cause = "reprice:in_1@ev_0"  # the burst's: the records made for its first re-price
    assert notices(d) == [
        ("payment_reminder", "contractor", cause),
        ("premium_increase_rep", "rep", cause),
    ]
    # Compared with the amount before the burst, not with the re-price it follows.
    assert plan(d, "premium_increase_rep").fields["old_premium_cents"] == 5000
    assert plan(d, "premium_increase_rep").remind_at == OPEN.due


def test_a_burst_that_turns_around_plans_the_other_direction_under_the_same_cause():
    d = reprice(4500, Facts(ledger=ledger(6000, burst=OPEN)), now=NOW + 10)
    assert ("premium_decrease_rep", "rep", "reprice:in_1@ev_0") in notices(d)


def test_a_burst_back_where_it_began_plans_nothing_new():
    d = reprice(5000, Facts(ledger=ledger(6000, burst=OPEN)), now=NOW + 10)
    assert d.plans == () and d.ledger.burst == OPEN and d.ledger.cents == 5000


@pytest.mark.parametrize(
    "burst,now,facts",
    [
        (replace(OPEN, closed=True), NOW + 10, {}),  # a notice of it went out
        (OPEN, OPEN.due, {}),  # its window is over
        (OPEN, NOW + 10, {"paid": True}),  # charged since: the next change is another story
    ],
)
def test_a_reprice_after_the_burst_begins_the_next_one(burst, now, facts):
    d = reprice(5500, Facts(ledger=ledger(6000, burst=burst), **facts), now=now)
    assert d.ledger.burst.id == "ev_1" and d.ledger.burst.start_cents == 6000
    assert d.ledger.prior == replace(burst, final_cents=6000)
    assert {p.cause for p in d.plans} == {"reprice:in_1@ev_1"}


@pytest.mark.parametrize(
    "charge_at,due",
    [
        (NOW + 100, NOW + 40),  # never past the charge: a minute before it
        (NOW + 30, NOW),  # too close to wait at all
        (NOW - 100, NOW),  # passed (no settlement yet): at once
    ],
)
def test_a_burst_ends_before_the_charge(charge_at, due):
    d = reprice(5500, Facts(ledger=ledger(5000)), charge_at=charge_at)
    assert d.ledger.burst.due == due
    assert plan(d, "premium_increase_rep").remind_at == due


def test_without_a_window_every_reprice_is_its_own_burst():
    d = reprice(5500, Facts(ledger=ledger(5000)), timing=Timing(coalesce=0))
    assert d.ledger.burst.due == NOW
    again = reprice(6000, Facts(ledger=d.ledger), event_id="ev_2", timing=Timing(coalesce=0))
    assert again.ledger.burst.id == "ev_2"


def test_older_invoice_arriving_late_changes_nothing():
    newer = ledger(5000, created=1_800_000_000, event_id="ev_9")
    d = decide(ev("invoice.updated", inv(3000)), Facts(ledger=newer))
    assert d == Decision()


def test_same_created_ties_broken_by_event_id():
    current = ledger(5000, created=1_700_000_000, event_id="ev_5")
    assert (
        decide(ev("invoice.updated", inv(3000), event_id="ev_4"), Facts(ledger=current))
        == Decision()
    )
    assert (
        decide(
            ev("invoice.updated", inv(3000), event_id="ev_6"), Facts(ledger=current)
        ).ledger.cents
        == 3000
    )


def test_rerun_after_ledger_written_rederives_the_same_notices():
    first = reprice(5000, Facts(ledger=ledger(4000)))
    # Re-run later, after the invoice was charged and the window passed: the stored entry
    # decides, so the same records (identities) are planned again, and nothing else.
    again = reprice(5000, Facts(ledger=first.ledger, paid=True), now=NOW + 3600)
    assert notices(again) == notices(first)
    assert again.ledger == first.ledger


def test_paid_invoice_gets_no_payment_reminder():
    d = decide(ev("invoice.created", inv(4000, status="paid")), CARD)
    assert d.plans == () and d.ledger.cents == 4000


def test_invoice_without_premium_sends_nothing():
    assert decide(ev("invoice.created", {"id": "in_1"}), CARD) == Decision()


# --- what a burst's notice says when it is sent ---------------------------------------------

CHANGE = {"invoice": "in_1", "burst": "ev_0", "direction": "increase"}
REMINDER = {"invoice": "in_1", "burst": "ev_0", "job": ""}


def test_a_burst_notice_states_the_final_amount_and_the_one_before():
    entry = ledger(5500, burst=replace(OPEN, closed=True))
    assert burst_outcome(entry, CHANGE) == (
        None,
        {"old_premium_cents": 5000, "new_premium_cents": 5500, "difference_cents": 500},
    )
    assert burst_outcome(entry, REMINDER) == (
        None,
        {"amount_cents": 5500, "previous_amount_cents": 5000},
    )


def test_the_other_direction_of_a_burst_that_turned_around_is_not_sent():
    reason, fields = burst_outcome(ledger(4500, burst=OPEN), CHANGE)
    assert reason.startswith("superseded") and "decrease" in reason and fields == {}


@pytest.mark.parametrize("guard", [CHANGE, REMINDER])
def test_a_burst_back_where_it_began_sends_nothing(guard):
    reason, _ = burst_outcome(ledger(5000, burst=OPEN), guard)
    assert reason.startswith("re-priced back")


def test_a_replaced_burst_still_tells_how_it_ended_but_its_reminder_gives_way():
    entry = ledger(
        7000,
        event_id="ev_3",
        burst=Burst("ev_2", 5500, NOW + 900, charged=False),
        prior=replace(OPEN, final_cents=5500),
    )
    assert burst_outcome(entry, CHANGE)[1]["new_premium_cents"] == 5500
    reason, _ = burst_outcome(entry, REMINDER)
    assert reason.startswith("superseded")


@pytest.mark.parametrize("entry", [None, ledger(5000)])
def test_a_burst_the_ledger_no_longer_knows_is_not_sent(entry):
    reason, _ = burst_outcome(entry, CHANGE)
    assert reason.startswith("superseded")


@pytest.mark.parametrize(
    "etype",
    [
        "policy.active",
        "certificate.flagged",
        "contractor.updated",
        "assignment.cancelled",
        "application.started",
        "category_code.added",
    ],
)
def test_other_events_send_nothing(etype):
    assert (
        decide(ev(etype, {"id": "x", "invoice": "in_1", "premium_due": 5}), Facts(charge_amount=5))
        == Decision()
    )


# --- reminder timing and guards --------------------------------------------------------------


def test_payment_reminder_scheduled_lead_hours_before_a_distant_charge():
    now = 1_700_000_000
    obj = {"id": "in_1", "premium_due": 4325, "charge_at": now + 3 * 86400}
    d = decide(ev("invoice.created", obj, created=now), CARD, now=now)
    [plan] = d.plans
    assert plan.remind_at == now + 2 * 86400 and plan.deadline == now + 3 * 86400
    assert plan.guard == {"invoice": "in_1", "premium": 4325}
    later = decide(
        ev("invoice.created", obj, created=now), CARD, now=now, timing=Timing(lead=6 * 3600)
    )
    assert later.plans[0].remind_at == now + 3 * 86400 - 6 * 3600


def test_payment_reminder_for_a_charge_within_the_lead_goes_now():
    now = 1_700_000_000
    obj = {"id": "in_1", "premium_due": 4325, "charge_at": now + 3600}
    [plan] = decide(ev("invoice.created", obj, created=now), CARD, now=now).plans
    assert plan.remind_at is None and plan.deadline == now + 3600


def test_assignment_reminder_guard_names_the_assignment_not_the_shared_job():
    now = 1_700_000_000
    obj = {"id": "an_1", "premium_due": 1200, "charge_at": now + 2 * 86400, "job": "jb_1"}
    [plan] = decide(ev("assignment.created", obj, created=now), CARD, now=now).plans
    assert plan.remind_at == now + 86400
    assert plan.guard == {"assignment": "an_1"}


def test_confirmations_are_not_reminders():
    d = decide(ev("invoice.charge_card_succeeded", {"id": "in_1", "premium_due": 1}), CARD)
    assert d.plans[0].remind_at is None and d.plans[0].guard is None


# --- coverage_missing_rep --------------------------------------------------------------------


def test_assignment_with_a_start_plans_the_reps_coverage_alert_before_it():
    now = 1_700_000_000
    starts = now + 2 * DAY
    obj = {"id": "an_1", "job": "jb_1", "effective_date": starts}
    event = ev("assignment.created", obj, created=now)
    d = decide(event, REMIT, now=now, timing=Timing(coverage_alert=3600))
    [plan] = d.plans  # remit: no charge reminder, but the alert all the same
    assert (plan.notice, plan.audience, plan.cause) == (
        "coverage_missing_rep",
        "rep",
        "coverage_missing:an_1",
    )
    assert plan.fields == {"assignment_id": "an_1", "starts_at": starts}
    assert (plan.remind_at, plan.deadline) == (starts - 3600, starts)
    assert plan.guard == {"assignment": "an_1", "uncovered": True}


def test_coverage_alert_defaults_to_twelve_hours_and_is_due_now_when_that_has_passed():
    now = 1_700_000_000
    far = {"id": "an_1", "premium_due": 1200, "effective_date": now + DAY}
    d = decide(ev("assignment.created", far, created=now), CARD, now=now)
    assert notices(d) == [
        ("assignment_charge_reminder", "contractor", "assignment:an_1"),
        ("coverage_missing_rep", "rep", "coverage_missing:an_1"),
    ]
    assert d.plans[1].remind_at == now + DAY - 12 * 3600
    near = {"id": "an_1", "effective_date": now + 3600}
    [plan] = decide(ev("assignment.created", near, created=now), CARD, now=now).plans
    assert plan.remind_at is None and plan.deadline == now + 3600


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "an_1"},  # no effective_date: no alert
        {"id": "an_1", "effective_date": "2026-03-03T12:00:00"},  # not Unix seconds
        {"id": "an_1", "effective_date": 1_699_999_000},  # already started
        {"id": "an_1", "effective_date": 1_700_086_400, "bind": False},  # not to be bound
    ],
)
def test_no_coverage_alert(obj):
    now = 1_700_000_000
    d = decide(ev("assignment.created", obj, created=now), REMIT, now=now)
    assert d.plans == ()
