"""Why a creator would not sync from CreatorIQ to 1099Policy, and what to fix (pure).

The rules are those of the CreatorIQ setup guide: the profile needs an email, a home address
with a US state, a US work state and a payment amount above zero; "Base Pay", when filled in,
holds digits only; the campaign starts in the future (no retroactive coverage); the creator is
moved to Accepted only once the profile is complete, and the sync is triggered by updating the
email (or other personal data) *after* that acceptance.

`check_creator` never raises: the input is what a platform sent (any field may be missing or of
the wrong type), and a wrong field is reported as a problem like any other. Times are Unix
seconds. No Flask, no Redis: the API view and (later) the event handler both call it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

_US_COUNTRIES = {"US", "USA", "U.S.", "U.S.A.", "UNITED STATES", "UNITED STATES OF AMERICA"}
_US_STATES = {
    "AL": "ALABAMA", "AK": "ALASKA", "AZ": "ARIZONA", "AR": "ARKANSAS", "CA": "CALIFORNIA",
    "CO": "COLORADO", "CT": "CONNECTICUT", "DE": "DELAWARE", "DC": "DISTRICT OF COLUMBIA",
    "FL": "FLORIDA", "GA": "GEORGIA", "HI": "HAWAII", "ID": "IDAHO", "IL": "ILLINOIS",
    "IN": "INDIANA", "IA": "IOWA", "KS": "KANSAS", "KY": "KENTUCKY", "LA": "LOUISIANA",
    "ME": "MAINE", "MD": "MARYLAND", "MA": "MASSACHUSETTS", "MI": "MICHIGAN", "MN": "MINNESOTA",
    "MS": "MISSISSIPPI", "MO": "MISSOURI", "MT": "MONTANA", "NE": "NEBRASKA", "NV": "NEVADA",
    "NH": "NEW HAMPSHIRE", "NJ": "NEW JERSEY", "NM": "NEW MEXICO", "NY": "NEW YORK",
    "NC": "NORTH CAROLINA", "ND": "NORTH DAKOTA", "OH": "OHIO", "OK": "OKLAHOMA", "OR": "OREGON",
    "PA": "PENNSYLVANIA", "RI": "RHODE ISLAND", "SC": "SOUTH CAROLINA", "SD": "SOUTH DAKOTA",
    "TN": "TENNESSEE", "TX": "TEXAS", "UT": "UTAH", "VT": "VERMONT", "VA": "VIRGINIA",
    "WA": "WASHINGTON", "WV": "WEST VIRGINIA", "WI": "WISCONSIN", "WY": "WYOMING",
    "PR": "PUERTO RICO", "GU": "GUAM", "VI": "U.S. VIRGIN ISLANDS", "AS": "AMERICAN SAMOA",
    "MP": "NORTHERN MARIANA ISLANDS",
}  # fmt: skip
_US_STATE_WORDS = set(_US_STATES) | set(_US_STATES.values())
# Digits, optionally with decimals: "4500" and "4500.00" are numbers; "$4,500.00" is not.
_NUMERIC = re.compile(r"[0-9]+(\.[0-9]+)?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

_STEPS = (
    "move the creator out of Accepted, complete their address, work state and payment amount, "
    "move them to Accepted again, then update their email to trigger the sync"
)

# code -> the fix, in the guide's words; `field` is where the problem is.
MESSAGES: dict[str, str] = {
    "email_missing": "Add the creator's email address in CreatorIQ; without it the sync fails.",
    "email_invalid": "The creator's email is not an email address; correct it in CreatorIQ.",
    "home_address_missing": "Add the creator's home address (city, state and country of "
    "residence) in CreatorIQ; without it the sync fails.",
    "home_address_invalid": "The creator's home address is not an address; enter their city, "
    "state and country of residence in CreatorIQ.",
    "home_state_missing": "Add the creator's home state to their address in CreatorIQ; "
    "without it the sync fails.",
    "home_state_not_us": "The creator's home state is not a US state; 1099Policy only syncs "
    "creators in the US. Update their city, state and country of residence in CreatorIQ.",
    "home_country_missing": "Add the creator's country of residence to their address in "
    "CreatorIQ (it must be the US).",
    "home_country_not_us": "The creator's home address is outside the US, so they will not "
    "sync to 1099Policy. Update their city, state and country of residence in CreatorIQ.",
    "work_state_missing": "Add the creator's work state in the 'Creator Attributes' tab in "
    "CreatorIQ; without it the sync fails.",
    "work_state_not_us": "The creator's work state is not a US state, so they will not sync "
    "to 1099Policy. Update it in the 'Creator Attributes' tab in CreatorIQ.",
    "work_country_not_us": "The creator's work country is outside the US, so they will not "
    "sync to 1099Policy. Update it in the 'Creator Attributes' tab in CreatorIQ.",
    "payment_amount_missing": "Fill in the 'Payment Amount' in CreatorIQ: the payment is the "
    "basis of the creator's premium, and the sync fails without it.",
    "payment_amount_invalid": "The 'Payment Amount' is not a whole number of cents; enter the "
    "amount the creator will be paid in CreatorIQ.",
    "payment_amount_not_positive": "The 'Payment Amount' must be greater than zero: the "
    "payment is the basis of the creator's premium, and the sync fails on zero.",
    "base_pay_not_numeric": "Enter only digits in 'Base Pay' under 'Creator Attributes' "
    "(4500 is valid, $4,500.00 is not), or leave it empty.",
    "base_pay_invalid": "'Base Pay' must be the text typed in CreatorIQ, digits only "
    "(4500 is valid, $4,500.00 is not), or absent.",
    "campaign_start_missing": "Set the campaign start date in CreatorIQ: 1099Policy uses the "
    "campaign's start and end dates as the coverage dates.",
    "campaign_start_invalid": "The campaign start date is not a time; set it in CreatorIQ "
    "(1099Policy uses it as the coverage start date).",
    "campaign_start_not_future": "Set the campaign start date in the future: 1099Policy uses "
    "it as the coverage start date and cannot issue retroactive coverage.",
    "accepted_at_invalid": "The time the creator was moved to Accepted is not a time.",
    "profile_updated_at_invalid": "The time the creator's profile was last updated is not a time.",
    "accepted_before_complete": "The creator was moved to Accepted before their profile was "
    f"complete, so 1099Policy will not sync them: {_STEPS}.",
    "sync_not_triggered": "The creator's personal data has not been updated since they were "
    "moved to Accepted, and that update is what triggers the sync: update their email (or "
    "address) in CreatorIQ now.",
}

# Problems that mean the creator's profile was incomplete (steps 1 to 4 of the guide).
_PROFILE_CODES = frozenset(
    code for code in MESSAGES if code.startswith(("home_", "work_", "payment_amount_"))
)


@dataclass(frozen=True)
class Problem:
    """One reason the creator would not sync: a code, where it is, and the fix in plain words."""

    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _problem(code: str, field: str) -> Problem:
    return Problem(code, field, MESSAGES[code])


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _time(value: Any) -> float | None:
    """Unix seconds, or None when `value` is not a usable time (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value) if value >= 0 else None


def _is_us_country(value: Any) -> bool:
    return isinstance(value, str) and value.strip().upper() in _US_COUNTRIES


def _is_us_state(value: Any) -> bool:
    return isinstance(value, str) and value.strip().upper() in _US_STATE_WORDS


def _state(value: Any, code: str, field: str) -> list[Problem]:
    """`<code>_missing` or `<code>_not_us` unless `value` is a US state."""
    if _absent(value):
        return [_problem(f"{code}_missing", field)]
    if not _is_us_state(value):
        return [_problem(f"{code}_not_us", field)]
    return []


def _email(creator: Mapping[str, Any]) -> list[Problem]:
    email = creator.get("email")
    if _absent(email):
        return [_problem("email_missing", "creator.email")]
    if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()):
        return [_problem("email_invalid", "creator.email")]
    return []


def _home(creator: Mapping[str, Any]) -> list[Problem]:
    address = creator.get("home_address")
    if address is None:
        return [_problem("home_address_missing", "creator.home_address")]
    if not isinstance(address, Mapping):
        return [_problem("home_address_invalid", "creator.home_address")]
    problems = _state(address.get("state"), "home_state", "creator.home_address.state")
    country = address.get("country")
    if _absent(country):
        problems.append(_problem("home_country_missing", "creator.home_address.country"))
    elif not _is_us_country(country):
        problems.append(_problem("home_country_not_us", "creator.home_address.country"))
    return problems


def _work(creator: Mapping[str, Any]) -> list[Problem]:
    problems = _state(creator.get("work_state"), "work_state", "creator.work_state")
    country = creator.get("work_country")
    # The work country is optional (a US work state says it); when given it must be the US.
    if not _absent(country) and not _is_us_country(country):
        problems.append(_problem("work_country_not_us", "creator.work_country"))
    return problems


def _pay(creator: Mapping[str, Any]) -> list[Problem]:
    problems = []
    amount = creator.get("payment_amount")
    if amount is None:
        problems.append(_problem("payment_amount_missing", "creator.payment_amount"))
    elif isinstance(amount, bool) or not isinstance(amount, int):
        problems.append(_problem("payment_amount_invalid", "creator.payment_amount"))
    elif amount <= 0:
        problems.append(_problem("payment_amount_not_positive", "creator.payment_amount"))
    base = creator.get("base_pay")
    if base is None or base == "":
        pass  # absent: Base Pay is optional
    elif not isinstance(base, str):
        problems.append(_problem("base_pay_invalid", "creator.base_pay"))
    elif not _NUMERIC.fullmatch(base):
        problems.append(_problem("base_pay_not_numeric", "creator.base_pay"))
    return problems


def _campaign(campaign: Mapping[str, Any], now: float) -> list[Problem]:
    start = campaign.get("start_date")
    if start is None:
        return [_problem("campaign_start_missing", "campaign.start_date")]
    at = _time(start)
    if at is None:
        return [_problem("campaign_start_invalid", "campaign.start_date")]
    if at <= now:
        return [_problem("campaign_start_not_future", "campaign.start_date")]
    return []


def _order(creator: Mapping[str, Any], profile_incomplete: bool) -> list[Problem]:
    """Accepted only once complete; then a personal-data update after acceptance (the trigger).

    Not yet accepted is no problem: the check is also asked before a rep presses Accepted.
    """
    raw_accepted, raw_updated = creator.get("accepted_at"), creator.get("profile_updated_at")
    accepted, updated = _time(raw_accepted), _time(raw_updated)
    problems = []
    if raw_accepted is not None and accepted is None:
        problems.append(_problem("accepted_at_invalid", "creator.accepted_at"))
    if raw_updated is not None and updated is None:
        problems.append(_problem("profile_updated_at_invalid", "creator.profile_updated_at"))
    if accepted is None:
        return problems
    if profile_incomplete:
        problems.append(_problem("accepted_before_complete", "creator.accepted_at"))
    if raw_updated is None or (updated is not None and updated <= accepted):
        problems.append(_problem("sync_not_triggered", "creator.profile_updated_at"))
    return problems


def check_creator(creator: Any, campaign: Any, now: float) -> list[Problem]:
    """Every reason this creator would not sync for this campaign at `now`; [] when none.

    `creator` and `campaign` are the shapes of the CreatorIQ platform events (see the module
    doc); anything that is not a mapping counts as an empty one.
    """
    person: Mapping[str, Any] = creator if isinstance(creator, Mapping) else {}
    work: Mapping[str, Any] = campaign if isinstance(campaign, Mapping) else {}
    problems = _email(person) + _home(person) + _work(person) + _pay(person)
    incomplete = any(p.code in _PROFILE_CODES for p in problems)
    return problems + _campaign(work, now) + _order(person, incomplete)
