"""What the reps hear about a creator from CreatorIQ's `creator.accepted` / `creator.updated`
platform events (pure).

The event's `data` is `{"creator": {...}, "campaign": {...}, "rep_email"}` (docs/event-
contract.md); the receiver has checked that `creator` and `campaign` are objects with an id.
`decide_creator` runs `check_creator` as of the event's `created` (so a replay decides the same)
and plans at most one rep notice:

- problems: `creatoriq_sync_blocked_rep`, now, listing each problem's fix; cause
  `creatoriq_blocked:<creator>:<campaign>:<digest of the problem codes>`, so the same problems
  told again (a replay, another `creator.updated`) send nothing, and a different set is news;
- no problems and the creator accepted: `creatoriq_sync_missing_rep`, due
  `CREATORIQ_SYNC_WAIT_HOURS` after the event, cause `creatoriq_missing:<creator>:<campaign>`,
  guarded by the creator's email (as `email_digest`): a 1099Policy contractor or application
  event carrying that email before then (the `creator_synced` settlement) cancels it;
- not accepted yet and nothing wrong: nothing (the sync starts only after acceptance).

The notices go to `rep_email` when it is an address, else to the organization's reps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..ingest.envelopes import Event
from ..notices.plans import Plan, ahead
from .checks import check_creator

BLOCKED = "creatoriq_sync_blocked_rep"
MISSING = "creatoriq_sync_missing_rep"


def email_digest(email: str) -> str:
    """How a creator's email is named in a Redis key: never the address itself."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CreatorDecision:
    plans: tuple[Plan, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)  # what every notice of it shows
    reps: tuple[str, ...] = ()  # `rep_email`, when the event gives an address


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _time(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _context(creator: dict[str, Any], campaign: dict[str, Any]) -> dict[str, Any]:
    """The creator as the notice's `contractor` (no 1099Policy id yet: no coverage link) and
    the campaign as its `job` (1099Policy insures the creator for the campaign)."""
    email = _text(creator.get("email"))
    first, last = _text(creator.get("first_name")), _text(creator.get("last_name"))
    if not (first or last):  # names are not checked: say who it is all the same
        first, last = "Creator", email or _text(creator.get("id"))
    return {
        "contractor": {"id": "", "first_name": first, "last_name": last},
        "job": {"id": "", "name": _text(campaign.get("name")) or None, "entity": None},
        "coverage_url": None,
        "creator_id": _text(creator.get("id")),
        "creator_email": email,
        "campaign_id": _text(campaign.get("id")),
        "campaign_start": _time(campaign.get("start_date")),
    }


def decide_creator(event: Event, now: int, wait_seconds: int) -> CreatorDecision:
    """The rep notice a CreatorIQ creator event causes (see the module docstring)."""
    obj = event.object
    creator, campaign = _object(obj.get("creator")), _object(obj.get("campaign"))
    rep = _text(obj.get("rep_email"))
    context = _context(creator, campaign)
    reps = (rep,) if "@" in rep else ()
    at = event.created or now
    who = f"{context['creator_id']}:{context['campaign_id']}"
    problems = check_creator(creator, campaign, at)
    if problems:
        codes = "|".join(sorted({p.code for p in problems}))
        digest = hashlib.sha256(codes.encode()).hexdigest()[:16]
        plan = Plan(
            BLOCKED,
            f"creatoriq_blocked:{who}:{digest}",
            "rep",
            {"problems": [p.as_dict() for p in problems]},
        )
        return CreatorDecision((plan,), context, reps)
    accepted = _time(creator.get("accepted_at"))
    if accepted is None:
        return CreatorDecision((), context, reps)  # not accepted: no sync to wait for yet
    plan = Plan(
        MISSING,
        f"creatoriq_missing:{who}",
        "rep",
        {"accepted_at": accepted, "wait_hours": wait_seconds // 3600},
        remind_at=ahead(at + wait_seconds, 0, now),
        guard={"creator": email_digest(context["creator_email"])},
    )
    return CreatorDecision((plan,), context, reps)
