"""Which notices an event causes (receiver/notices/rules.py): every row of docs/notifications.md."""

from __future__ import annotations

import pytest

from receiver.ingest.events import Event
from receiver.notices.rules import Decision, Facts, Premium, Timing, decide

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
    assert notices(d) == [("assignment_charge_failure", "contractor", "charge_failed:ev_1")]
    assert d.plans[0].fields["failure_reason"] == "card declined"
    assert d.plans[0].fields["amount_cents"] == 500


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


# --- invoices: payment_reminder and the premium ledger ------------------------------------


def inv(premium, invoice_id="in_1", **extra):
    return {"id": invoice_id, "premium_due": premium, "charge_at": 1_700_050_000, **extra}


def ledger(cents, created=1_699_000_000, event_id="ev_0", previous=None):
    return Premium(cents, created, event_id, "in_0", previous)


def test_first_invoice_without_history_starts_ledger_and_reminds_card_payer():
    d = decide(ev("invoice.created", inv(4325)), CARD)
    assert notices(d) == [("payment_reminder", "contractor", "invoice:in_1@4325")]
    assert d.ledger == Premium(4325, 1_700_000_000, "ev_1", "in_1", None)
    assert d.plans[0].fields["charge_at"] == 1_700_050_000


def test_first_invoice_without_history_remit_starts_ledger_and_schedules_rep_bill_reminder():
    d = decide(ev("invoice.created", inv(4325)), REMIT, now=1_700_000_000)
    assert notices(d) == [("remit_bill_reminder_rep", "rep", "remit_bill:in_1@4325")]
    assert d.ledger is not None and d.ledger.cents == 4325
    due = 1_700_000_000 + 30 * 86400
    plan = d.plans[0]
    assert plan.fields["due_at"] == due and plan.deadline == due
    assert plan.remind_at == due - 7 * 86400
    assert plan.guard == {"invoice": "in_1", "premium": 4325, "job": ""}


def test_first_invoice_compared_with_assignment_premium():
    d = decide(ev("invoice.created", inv(1500)), Facts(assignment_premium=1200))
    assert notices(d) == [
        ("payment_reminder", "contractor", "invoice:in_1@1500"),
        ("premium_increase_contractor", "contractor", "reprice:ev_1"),
        ("premium_increase_rep", "rep", "reprice:ev_1"),
    ]


def test_increase_card_payer_contractor_and_rep():
    d = decide(ev("invoice.updated", inv(5000)), Facts(ledger=ledger(4000)))
    assert notices(d) == [
        ("payment_reminder", "contractor", "invoice:in_1@5000"),
        ("premium_increase_contractor", "contractor", "reprice:ev_1"),
        ("premium_increase_rep", "rep", "reprice:ev_1"),
    ]
    fields = next(p.fields for p in d.plans if p.notice == "premium_increase_rep")
    assert fields == {
        "invoice_id": "in_1",
        "old_premium_cents": 4000,
        "new_premium_cents": 5000,
        "difference_cents": 1000,
        "payment_method": "card",
    }


def test_increase_remit_rep_only():
    d = decide(ev("invoice.updated", inv(5000)), Facts(withhold=True, ledger=ledger(4000)))
    assert notices(d) == [
        ("premium_increase_rep", "rep", "reprice:ev_1"),
        ("remit_bill_reminder_rep", "rep", "remit_bill:in_1@5000"),
    ]
    assert d.plans[0].fields["payment_method"] == "remit"


def test_decrease_card_payer_contractor_and_rep_with_refund():
    d = decide(ev("invoice.updated", inv(3000)), Facts(ledger=ledger(4000)))
    assert ("premium_decrease_contractor", "contractor", "reprice:ev_1") in notices(d)
    assert ("premium_decrease_rep", "rep", "reprice:ev_1") in notices(d)
    fields = next(p.fields for p in d.plans if p.notice == "premium_decrease_contractor")
    assert fields["difference_cents"] == 1000


def test_decrease_remit_rep_only():
    d = decide(ev("invoice.updated", inv(3000)), Facts(withhold=True, ledger=ledger(4000)))
    assert notices(d) == [
        ("premium_decrease_rep", "rep", "reprice:ev_1"),
        ("remit_bill_reminder_rep", "rep", "remit_bill:in_1@3000"),
    ]


def test_equal_premium_sends_no_change_notice():
    d = decide(ev("invoice.updated", inv(4000)), Facts(withhold=True, ledger=ledger(4000)))
    assert notices(d) == [("remit_bill_reminder_rep", "rep", "remit_bill:in_1@4000")]
    d = decide(ev("invoice.updated", inv(4000)), Facts(ledger=ledger(4000)))
    assert notices(d) == [("payment_reminder", "contractor", "invoice:in_1@4000")]


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
    first = decide(ev("invoice.updated", inv(5000)), Facts(ledger=ledger(4000)))
    again = decide(ev("invoice.updated", inv(5000)), Facts(ledger=first.ledger))
    assert notices(again) == notices(first)
    assert again.ledger == first.ledger


def test_paid_invoice_gets_no_payment_reminder():
    d = decide(ev("invoice.updated", inv(4000, status="paid")), Facts(ledger=ledger(4000)))
    assert d.plans == ()


def test_invoice_without_premium_sends_nothing():
    assert decide(ev("invoice.created", {"id": "in_1"}), CARD) == Decision()


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
    assert plan.guard == {"invoice": "in_1", "premium": 4325, "job": ""}
    later = decide(
        ev("invoice.created", obj, created=now), CARD, now=now, timing=Timing(lead=6 * 3600)
    )
    assert later.plans[0].remind_at == now + 3 * 86400 - 6 * 3600


def test_payment_reminder_for_a_charge_within_the_lead_goes_now():
    now = 1_700_000_000
    obj = {"id": "in_1", "premium_due": 4325, "charge_at": now + 3600}
    [plan] = decide(ev("invoice.created", obj, created=now), CARD, now=now).plans
    assert plan.remind_at is None and plan.deadline == now + 3600


def test_assignment_reminder_guard_names_assignment_and_job():
    now = 1_700_000_000
    obj = {"id": "an_1", "premium_due": 1200, "charge_at": now + 2 * 86400, "job": "jb_1"}
    [plan] = decide(ev("assignment.created", obj, created=now), CARD, now=now).plans
    assert plan.remind_at == now + 86400
    assert plan.guard == {"assignment": "an_1", "job": "jb_1"}


def test_confirmations_are_not_reminders():
    d = decide(ev("invoice.charge_card_succeeded", {"id": "in_1", "premium_due": 1}), CARD)
    assert d.plans[0].remind_at is None and d.plans[0].guard is None
