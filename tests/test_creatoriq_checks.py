"""check_creator: one test per rule of the CreatorIQ setup guide, the all-good case, bad types."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from receiver.creatoriq.checks import MESSAGES, Problem, check_creator
from receiver.ingest.examples import example

NOW = 1_750_000_000
DAY = 86400


def creator(**changes: Any) -> dict[str, Any]:
    """A complete, accepted creator whose email was updated after acceptance."""
    # send-test-event's sample creator (receiver/ingest/examples.py), accepted an hour ago.
    base: dict[str, Any] = example("creator.accepted", "cr_1", NOW)["data"]["creator"]
    for key, value in changes.items():
        if key.startswith("home_"):
            base["home_address"][key.removeprefix("home_")] = value
        else:
            base[key] = value
    return base


def campaign(**changes: Any) -> dict[str, Any]:
    return {"id": "cp_1", "name": "Spring launch", "start_date": NOW + DAY,
            "end_date": NOW + 30 * DAY, **changes}  # fmt: skip


def codes(c: Any = None, k: Any = None) -> list[tuple[str, str]]:
    problems = check_creator(creator() if c is None else c, campaign() if k is None else k, NOW)
    return [(p.code, p.field) for p in problems]


def test_a_complete_creator_has_no_problem():
    assert check_creator(creator(), campaign(), NOW) == []


def test_absent_base_pay_and_work_country_are_fine():
    c = creator()
    del c["base_pay"], c["work_country"]
    assert codes(c) == []
    assert codes(creator(base_pay=None)) == codes(creator(base_pay="")) == []


def test_not_yet_accepted_is_no_problem_the_check_runs_before_accepted():
    c = creator()
    del c["accepted_at"], c["profile_updated_at"]
    assert codes(c) == []


@pytest.mark.parametrize("email", [None, "", "   "])
def test_email_missing(email):
    assert codes(creator(email=email)) == [("email_missing", "creator.email")]
    c = creator()
    del c["email"]
    assert codes(c) == [("email_missing", "creator.email")]


@pytest.mark.parametrize("email", ["maya", "maya@", 42, ["maya@example.com"]])
def test_email_invalid(email):
    assert codes(creator(email=email)) == [("email_invalid", "creator.email")]


def test_home_address_missing_or_not_an_object():
    c = creator()
    del c["home_address"]
    # An incomplete profile of an accepted creator: it was accepted too early.
    assert codes(c) == [
        ("home_address_missing", "creator.home_address"),
        ("accepted_before_complete", "creator.accepted_at"),
    ]
    c["home_address"] = "1 Main St, Austin TX"
    assert codes(c)[0] == ("home_address_invalid", "creator.home_address")


def test_home_state_missing():
    assert codes(creator(home_state=None))[0] == (
        "home_state_missing",
        "creator.home_address.state",
    )
    assert codes(creator(home_state=""))[0][0] == "home_state_missing"


@pytest.mark.parametrize("state", ["ON", "Bavaria", 5, ["TX"]])
def test_home_state_not_a_us_state(state):
    assert codes(creator(home_state=state))[0] == (
        "home_state_not_us",
        "creator.home_address.state",
    )


@pytest.mark.parametrize("state", ["tx", "Texas", " CA ", "DC", "PR", "new york"])
def test_us_states_by_code_or_name(state):
    assert codes(creator(home_state=state, work_state=state)) == []


def test_home_country_missing_or_outside_the_us():
    assert codes(creator(home_country=None))[0] == (
        "home_country_missing",
        "creator.home_address.country",
    )
    assert codes(creator(home_country="CA"))[0] == (
        "home_country_not_us",
        "creator.home_address.country",
    )
    assert codes(creator(home_country=1))[0][0] == "home_country_not_us"
    assert codes(creator(home_country="United States")) == []


def test_work_state_missing_or_outside_the_us():
    assert codes(creator(work_state=None))[0] == ("work_state_missing", "creator.work_state")
    assert codes(creator(work_state="Ontario"))[0] == ("work_state_not_us", "creator.work_state")
    assert codes(creator(work_state=7))[0][0] == "work_state_not_us"


def test_work_country_outside_the_us():
    assert codes(creator(work_country="MX"))[0] == ("work_country_not_us", "creator.work_country")


def test_payment_amount_must_be_above_zero():
    for amount in (0, -100):
        assert codes(creator(payment_amount=amount))[0] == (
            "payment_amount_not_positive",
            "creator.payment_amount",
        )
    assert codes(creator(payment_amount=None))[0] == (
        "payment_amount_missing",
        "creator.payment_amount",
    )


@pytest.mark.parametrize("amount", ["4500", 45.5, True, {"cents": 1}])
def test_payment_amount_wrong_type(amount):
    assert codes(creator(payment_amount=amount))[0] == (
        "payment_amount_invalid",
        "creator.payment_amount",
    )


@pytest.mark.parametrize("base_pay", ["4500", "4500.00", "0"])
def test_base_pay_numeric_is_valid(base_pay):
    assert codes(creator(base_pay=base_pay)) == []


@pytest.mark.parametrize("base_pay", ["$4,500.00", "4,500", "4500 USD", " 4500", "4500."])
def test_base_pay_not_numeric(base_pay):
    # Base Pay is a custom field (step 5), not one of the fields Accepted waits for.
    assert codes(creator(base_pay=base_pay)) == [("base_pay_not_numeric", "creator.base_pay")]


@pytest.mark.parametrize("base_pay", [4500, ["4500"], True])
def test_base_pay_wrong_type(base_pay):
    assert codes(creator(base_pay=base_pay)) == [("base_pay_invalid", "creator.base_pay")]


def test_campaign_start_must_be_in_the_future():
    for start in (NOW, NOW - DAY):
        assert codes(k=campaign(start_date=start)) == [
            ("campaign_start_not_future", "campaign.start_date")
        ]
    assert codes(k=campaign(start_date=NOW + 1)) == []
    assert codes(k=campaign(start_date=None)) == [("campaign_start_missing", "campaign.start_date")]


@pytest.mark.parametrize("start", ["2030-01-01", True, -5, float("nan"), {}])
def test_campaign_start_wrong_type(start):
    assert codes(k=campaign(start_date=start)) == [
        ("campaign_start_invalid", "campaign.start_date")
    ]


def test_accepted_before_the_profile_was_complete():
    got = codes(creator(payment_amount=0, work_state=None))
    assert got == [
        ("work_state_missing", "creator.work_state"),
        ("payment_amount_not_positive", "creator.payment_amount"),
        ("accepted_before_complete", "creator.accepted_at"),
    ]
    # The same gaps before acceptance: only the gaps, the order is still to be followed.
    c = creator(payment_amount=0, work_state=None)
    del c["accepted_at"]
    assert [code for code, _ in codes(c)] == ["work_state_missing", "payment_amount_not_positive"]


def test_the_sync_needs_a_personal_data_update_after_acceptance():
    expected = [("sync_not_triggered", "creator.profile_updated_at")]
    assert codes(creator(profile_updated_at=NOW - 7200)) == expected  # updated, then accepted
    assert codes(creator(profile_updated_at=NOW - 3600)) == expected  # same second: not after
    c = creator()
    del c["profile_updated_at"]
    assert codes(c) == expected
    assert codes(creator(profile_updated_at=NOW - 3599)) == []


def test_wrong_times_of_acceptance_and_update():
    assert codes(creator(accepted_at="yesterday")) == [
        ("accepted_at_invalid", "creator.accepted_at")
    ]
    assert codes(creator(profile_updated_at=[1])) == [
        ("profile_updated_at_invalid", "creator.profile_updated_at")
    ]


@pytest.mark.parametrize("bad", [None, "creator", 42, ["x"], True])
def test_never_raises_on_inputs_that_are_not_objects(bad):
    got = [p.code for p in check_creator(bad, bad, NOW)]
    assert got == [
        "email_missing",
        "home_address_missing",
        "work_state_missing",
        "payment_amount_missing",
        "campaign_start_missing",
    ]


def test_every_problem_names_its_field_and_the_fix_and_inputs_are_untouched():
    c = creator(email=None, home_country="FR", work_state="", payment_amount=0, base_pay="$1")
    k = campaign(start_date=NOW - 1)
    before = copy.deepcopy((c, k))
    problems = check_creator(c, k, NOW)
    assert (c, k) == before
    assert all(isinstance(p, Problem) and p.message == MESSAGES[p.code] for p in problems)
    assert all(p.field.startswith(("creator.", "campaign.")) for p in problems)
    assert problems[0].as_dict() == {
        "code": "email_missing",
        "field": "creator.email",
        "message": MESSAGES["email_missing"],
    }
    assert "retroactive" in MESSAGES["campaign_start_not_future"]
    assert "4500 is valid, $4,500.00 is not" in MESSAGES["base_pay_not_numeric"]
