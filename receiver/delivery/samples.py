"""Realistic sample contexts for every notice, for previews and tests.

Each follows the contract in ``receiver.delivery.emails``. Copy before changing one
(``copy.deepcopy``): the dicts are shared. Times are Unix seconds; 1709667000 is
2024-03-05 19:30 UTC.
"""

from __future__ import annotations

from typing import Any

from ..creatoriq.checks import MESSAGES

_CONTRACTOR = {"id": "cn_Ehb3bYa", "first_name": "Maya", "last_name": "Thompson"}
# `entity` is whom the work is for, when an event embedded the job with its entity's name.
_JOB = {"id": "jb_jsb9KEcTpc", "name": "Deck repair", "entity": "Smith & Sons Builders"}
_MAYA = {"name": "Maya", "email": "maya.thompson@example.com", "timezone": "America/Chicago"}
# Reps are often known by address only (po_contact_email), hence no name and no zone.
_REP = {"name": None, "email": "ap-contact@smithandsons.example.com", "timezone": None}
_COVERAGE_URL = "https://app.example.com/coverage/eyJjIjoiY25fRWhiM2JZYSJ9.ZeeqGA.k3v9Xq2sTq"


def _contractor_notice(**fields: Any) -> dict[str, Any]:
    return {
        "recipient": dict(_MAYA),
        "contractor": dict(_CONTRACTOR),
        "job": dict(_JOB),
        "coverage_url": _COVERAGE_URL,
        **fields,
    }


def _rep_notice(**fields: Any) -> dict[str, Any]:
    return {**_contractor_notice(**fields), "recipient": dict(_REP)}


def _creator_notice(**fields: Any) -> dict[str, Any]:
    return {
        "recipient": dict(_REP),
        "contractor": {"id": "", "first_name": "Jordan", "last_name": "Rivera"},
        "job": {"id": "", "name": "Spring glow launch", "entity": None},
        "coverage_url": None,
        "creator_id": "ciq_8841",
        "creator_email": "jordan.rivera@example.com",
        "campaign_id": "camp_2024_spring",
        "campaign_start": 1710806400,
        **fields,
    }


SAMPLE_CONTEXTS: dict[str, dict[str, Any]] = {
    "assignment_charge_reminder": _contractor_notice(
        assignment_id="an_TzLQszJmoP", amount_cents=4325, charge_at=1709753400
    ),
    "payment_reminder": _contractor_notice(
        invoice_id="in_4fQ8rTz2Lk",
        amount_cents=123450,
        previous_amount_cents=None,
        charge_at=1709753400,
        payment_method="card",
    ),
    "payment_confirmation": _contractor_notice(
        invoice_id="in_4fQ8rTz2Lk",
        amount_cents=4325,
        paid_at=1709667000,
        payment_method="card",
    ),
    "premium_increase_contractor": _contractor_notice(
        invoice_id="in_9XcV2mPq7d",
        old_premium_cents=4325,
        new_premium_cents=5525,
        difference_cents=1200,
        payment_method="card",
        charge_at=1709753400,
    ),
    "premium_increase_rep": _rep_notice(
        invoice_id="in_9XcV2mPq7d",
        old_premium_cents=4325,
        new_premium_cents=5525,
        difference_cents=1200,
        payment_method="card",
        charged=True,
        charge_at=1709753400,
    ),
    "premium_decrease_contractor": _contractor_notice(
        invoice_id="in_7LmN3bQw8z",
        old_premium_cents=5525,
        new_premium_cents=4725,
        difference_cents=800,
        payment_method="card",
    ),
    "premium_decrease_rep": _rep_notice(
        invoice_id="in_7LmN3bQw8z",
        old_premium_cents=5525,
        new_premium_cents=4725,
        difference_cents=800,
        payment_method="card",
        charged=True,
    ),
    "remit_bill_reminder_rep": _rep_notice(
        invoice_id="in_2HdK8sLp4v",
        amount_cents=5525,
        previous_amount_cents=None,
        due_at=1712345678,
    ),
    "coverage_missing_rep": _rep_notice(assignment_id="an_TzLQszJmoP", starts_at=1709726400),
    "charge_unrecovered_rep": _rep_notice(
        invoice_id="in_4fQ8rTz2Lk",
        amount_cents=4325,
        failed_at=1709753412,
        failure_reason="Your card was declined.",
    ),
    "assignment_charge_failure": _contractor_notice(
        invoice_id="in_4fQ8rTz2Lk",
        amount_cents=4325,
        failed_at=1709753412,
        failure_reason="Your card was declined.",
    ),
    # CreatorIQ: the creator is not in 1099Policy yet (no contractor id, no link); the
    # campaign stands for the job. Not accepted yet, so no problem of order.
    "creatoriq_sync_blocked_rep": _creator_notice(
        problems=[
            {
                "code": code,
                "field": field,
                "message": MESSAGES[code],
            }
            for code, field in (
                ("home_state_not_us", "creator.home_address.state"),
                ("base_pay_not_numeric", "creator.base_pay"),
                ("campaign_start_not_future", "campaign.start_date"),
            )
        ]
    ),
    "creatoriq_sync_missing_rep": _creator_notice(accepted_at=1709580600, wait_hours=24),
    # Alerts carry no coverage link: the rep is asked to fix an address, not to read coverage.
    "address_suppressed_rep": {
        **_rep_notice(address=_MAYA["email"], reason="bounced", suppressed_at=1709667000),
        "coverage_url": None,
    },
}
